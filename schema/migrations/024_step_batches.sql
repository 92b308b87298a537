-- Batches of execution steps the service stores before it sends them to the measure's
-- workflow, found again by their content digest: the workflow's history carries a summary,
-- not up to 10,000 steps, and the activity that records the batch reads the steps here,
-- checks they hash to the digest the workflow judged, and removes the row in the transaction
-- that writes them to execution_steps.
CREATE TABLE step_batches (
    measure_id text NOT NULL,
    digest     text NOT NULL,
    actor_id   text NOT NULL,
    steps      jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (measure_id, digest)
);
