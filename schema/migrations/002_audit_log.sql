-- The transparency log over audit entries: indexes assigned by the sequencer (gapless, in one
-- transaction per batch), Merkle tiles, and signed checkpoints. All append-only.

-- Entries waiting for an index, in arrival order. This queue, alone, is deleted from.
CREATE TABLE audit_pending (
    seq      bigserial PRIMARY KEY, -- queue order only; the log index is assigned by the sequencer
    entry_id text NOT NULL UNIQUE REFERENCES audit_entries (id)
);
INSERT INTO audit_pending (entry_id) SELECT id FROM audit_entries ORDER BY created_at, id;

CREATE TABLE audit_log (
    idx       bigint PRIMARY KEY CHECK (idx >= 0),
    entry_id  text NOT NULL UNIQUE REFERENCES audit_entries (id),
    leaf_hash bytea NOT NULL
);

-- Tiles of height 8 (c2sp.org/tlog-tiles). A partial tile is stored at each width it reached;
-- the widest is current.
CREATE TABLE audit_tiles (
    level integer NOT NULL,
    n     bigint NOT NULL,
    width integer NOT NULL CHECK (width BETWEEN 1 AND 256),
    data  bytea NOT NULL,
    PRIMARY KEY (level, n, width)
);

CREATE TABLE audit_checkpoints (
    size       bigint PRIMARY KEY,
    root       bytea NOT NULL,
    note       text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp() -- when signed, not when the batch began
);

CREATE TRIGGER audit_log_no_update BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_entries_refuse_change();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_entries_refuse_change();
CREATE TRIGGER audit_tiles_no_update BEFORE UPDATE OR DELETE ON audit_tiles
    FOR EACH ROW EXECUTE FUNCTION audit_entries_refuse_change();
CREATE TRIGGER audit_tiles_no_truncate BEFORE TRUNCATE ON audit_tiles
    FOR EACH STATEMENT EXECUTE FUNCTION audit_entries_refuse_change();
CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE OR DELETE ON audit_checkpoints
    FOR EACH ROW EXECUTE FUNCTION audit_entries_refuse_change();
CREATE TRIGGER audit_checkpoints_no_truncate BEFORE TRUNCATE ON audit_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION audit_entries_refuse_change();
ALTER TABLE audit_log ENABLE ALWAYS TRIGGER audit_log_no_update;
ALTER TABLE audit_log ENABLE ALWAYS TRIGGER audit_log_no_truncate;
ALTER TABLE audit_tiles ENABLE ALWAYS TRIGGER audit_tiles_no_update;
ALTER TABLE audit_tiles ENABLE ALWAYS TRIGGER audit_tiles_no_truncate;
ALTER TABLE audit_checkpoints ENABLE ALWAYS TRIGGER audit_checkpoints_no_update;
ALTER TABLE audit_checkpoints ENABLE ALWAYS TRIGGER audit_checkpoints_no_truncate;
REVOKE UPDATE, DELETE, TRUNCATE ON audit_log, audit_tiles, audit_checkpoints FROM PUBLIC;
