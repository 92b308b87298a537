-- When the audit log's sequencer finds the database disagreeing with what it signed (an entry
-- edited, deleted, inserted or swapped, tiles or roots rewritten), it stops signing and says
-- what differs here. While a halt stands, /healthz answers 503 and the service refuses every
-- action that would need an audit entry. An operator clears a halt after investigating, by
-- setting cleared_at and cleared_by (the row stays).
CREATE TABLE audit_halts (
    id         bigserial PRIMARY KEY,
    at         timestamptz NOT NULL DEFAULT clock_timestamp(),
    problem    text NOT NULL,
    cleared_at timestamptz,
    cleared_by text
);
CREATE INDEX audit_halts_standing ON audit_halts (id) WHERE cleared_at IS NULL;
