-- The audit log's signing keys, in the order they came into use. During a rotation two keys
-- sign every checkpoint; auditors add the new verifier key to their policy before the old one
-- is retired.
CREATE TABLE audit_keys (
    vkey       text PRIMARY KEY,
    first_size bigint NOT NULL,
    added_at   timestamptz NOT NULL DEFAULT now()
);
CREATE TRIGGER audit_keys_no_update BEFORE UPDATE OR DELETE ON audit_keys
    FOR EACH ROW EXECUTE FUNCTION audit_entries_refuse_change();
CREATE TRIGGER audit_keys_no_truncate BEFORE TRUNCATE ON audit_keys
    FOR EACH STATEMENT EXECUTE FUNCTION audit_entries_refuse_change();
ALTER TABLE audit_keys ENABLE ALWAYS TRIGGER audit_keys_no_update;
ALTER TABLE audit_keys ENABLE ALWAYS TRIGGER audit_keys_no_truncate;
REVOKE UPDATE, DELETE, TRUNCATE ON audit_keys FROM PUBLIC;
