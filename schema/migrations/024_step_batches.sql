-- Batches of execution steps the service stores before it sends them to the measure's
-- workflow: the workflow's history carries a summary, not up to 10,000 steps, and the
-- activity that records the batch reads the steps here by the row's ID, checks they hash to
-- the digest the workflow judged, and removes the row in the transaction that writes them to
-- execution_steps. Each request stores its own row: two identical batches sent at once are
-- two batches, not one row the first to be recorded takes away from the other. The steps are kept as the JSON the service wrote
-- (bytea: nothing to parse on the way in or out; the digest is what is trusted).
CREATE TABLE step_batches (
    id         text PRIMARY KEY,
    measure_id text NOT NULL,
    digest     text NOT NULL,
    actor_id   text NOT NULL,
    steps      bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX step_batches_created ON step_batches (created_at);

-- Only the activity writes execution_steps, for a measure it has locked, by an executor the
-- service authenticated, with witnesses the service found among the users. Checked again
-- row by row, the three foreign keys cost about 90 ms of every batch of 10,000 steps, a fifth
-- of logging a botnet's 700,000.
ALTER TABLE execution_steps DROP CONSTRAINT execution_steps_measure_id_fkey,
    DROP CONSTRAINT execution_steps_executor_id_fkey,
    DROP CONSTRAINT execution_steps_witness_id_fkey;
