-- The role policy, versioned: each version is a complete rule set, proposed by one
-- administrator and approved by another; the newest approved version is in force.
CREATE TABLE authz_policy_versions (
    version     integer PRIMARY KEY,
    proposed_by text NOT NULL,
    approved_by text,
    reason      text NOT NULL DEFAULT '',
    proposed_at timestamptz NOT NULL DEFAULT now(),
    approved_at timestamptz,
    CHECK (approved_by IS NULL OR approved_by <> proposed_by OR proposed_by = 'system')
);

CREATE TABLE authz_rules (
    version integer NOT NULL REFERENCES authz_policy_versions (version),
    role    text NOT NULL,
    op      text NOT NULL,
    effect  text NOT NULL CHECK (effect IN ('allow', 'deny')),
    PRIMARY KEY (version, role, op, effect)
);

-- Replicas reload the policy when it or a grant changes.
CREATE FUNCTION authz_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('authz_policy', TG_TABLE_NAME);
    RETURN NULL;
END;
$$;
CREATE TRIGGER authz_policy_versions_notify AFTER INSERT OR UPDATE ON authz_policy_versions
    FOR EACH STATEMENT EXECUTE FUNCTION authz_notify();
CREATE TRIGGER role_grants_notify AFTER INSERT OR UPDATE OR DELETE ON role_grants
    FOR EACH STATEMENT EXECUTE FUNCTION authz_notify();
CREATE TRIGGER executor_designations_notify AFTER INSERT OR UPDATE OR DELETE ON executor_designations
    FOR EACH STATEMENT EXECUTE FUNCTION authz_notify();

-- Rules of a version never change once written.
CREATE TRIGGER authz_rules_no_update BEFORE UPDATE OR DELETE ON authz_rules
    FOR EACH ROW EXECUTE FUNCTION audit_entries_refuse_change();
ALTER TABLE authz_rules ENABLE ALWAYS TRIGGER authz_rules_no_update;
