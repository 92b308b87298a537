-- Companion data: a list too long for its audit record (a record is at most 64 KiB) is stored
-- here, content-addressed, and the record commits to it by its SHA-256 under
-- details.companions. Append-only, like the entries that point to it.
CREATE TABLE audit_companions (
    sha256     text PRIMARY KEY,
    content    bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TRIGGER audit_companions_no_update BEFORE UPDATE OR DELETE ON audit_companions
    FOR EACH ROW EXECUTE FUNCTION audit_entries_refuse_change();
CREATE TRIGGER audit_companions_no_truncate BEFORE TRUNCATE ON audit_companions
    FOR EACH STATEMENT EXECUTE FUNCTION audit_entries_refuse_change();
ALTER TABLE audit_companions ENABLE ALWAYS TRIGGER audit_companions_no_update;
ALTER TABLE audit_companions ENABLE ALWAYS TRIGGER audit_companions_no_truncate;
REVOKE UPDATE, DELETE, TRUNCATE ON audit_companions FROM PUBLIC;

-- Idempotency keys of actions: a key names one request (measure, operation and body); reusing
-- it for another is refused rather than silently answered with the first outcome.
CREATE TABLE idempotency_keys (
    actor_id     text NOT NULL,
    key          text NOT NULL,
    measure_id   text NOT NULL,
    op           text NOT NULL,
    request_hash text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (actor_id, key)
);

-- The installation this database belongs to: `takedownd dev` writes the same ID into its data
-- directory, and refuses to pair a data directory with another installation's database.
CREATE TABLE installation (
    id         text PRIMARY KEY,
    created_at timestamptz NOT NULL DEFAULT now(),
    singleton  boolean NOT NULL DEFAULT true UNIQUE CHECK (singleton)
);
