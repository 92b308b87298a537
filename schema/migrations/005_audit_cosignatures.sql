-- Witness cosignatures (c2sp.org/tlog-cosignature) of the audit log's checkpoints, as the
-- signature lines each witness returned.
CREATE TABLE audit_cosignatures (
    size    bigint NOT NULL REFERENCES audit_checkpoints (size),
    witness text NOT NULL,
    line    text NOT NULL,
    at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (size, witness)
);
CREATE TRIGGER audit_cosignatures_no_update BEFORE UPDATE OR DELETE ON audit_cosignatures
    FOR EACH ROW EXECUTE FUNCTION audit_entries_refuse_change();
CREATE TRIGGER audit_cosignatures_no_truncate BEFORE TRUNCATE ON audit_cosignatures
    FOR EACH STATEMENT EXECUTE FUNCTION audit_entries_refuse_change();
ALTER TABLE audit_cosignatures ENABLE ALWAYS TRIGGER audit_cosignatures_no_update;
ALTER TABLE audit_cosignatures ENABLE ALWAYS TRIGGER audit_cosignatures_no_truncate;
REVOKE UPDATE, DELETE, TRUNCATE ON audit_cosignatures FROM PUBLIC;
