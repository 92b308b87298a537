-- Readiness: a sequencer that takes the lead sets checking before it re-checks the log and asks
-- the witnesses, and clears it once both have answered. Nothing is accepted while it stands:
-- a restored or forked database is halted before anyone acts on it.
ALTER TABLE audit_signing ADD COLUMN checking boolean NOT NULL DEFAULT false;

-- The newest background comparison of the tables with the signed log (reconcile), for
-- /metrics: when it ran, how many rows differed and how many measures it could not compare yet.
CREATE TABLE reconcile_status (
    one          boolean PRIMARY KEY DEFAULT true CHECK (one),
    checked_at   timestamptz,
    differences  integer NOT NULL DEFAULT 0,
    not_compared integer NOT NULL DEFAULT 0
);
INSERT INTO reconcile_status DEFAULT VALUES;
