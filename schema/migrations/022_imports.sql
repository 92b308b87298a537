-- Targets imported from threat-intelligence files keep where they came from (a STIX object's
-- id, a MISP attribute's UUID); the version digest covers it.
ALTER TABLE targets ADD COLUMN source text NOT NULL DEFAULT '';

-- A file an officer uploads is kept as a pending import until they confirm its preview: the
-- preview is recomputed from these bytes, and the confirmation must name the targets it saw.
CREATE TABLE imports (
    id          text PRIMARY KEY,
    measure_id  text NOT NULL REFERENCES measures (id),
    org_id      text NOT NULL,
    created_by  text NOT NULL REFERENCES users (id),
    format      text NOT NULL CHECK (format IN ('stix', 'misp')),
    file_name   text NOT NULL DEFAULT '',
    sha256      text NOT NULL,
    body        bytea NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    imported_at timestamptz
);
CREATE INDEX imports_measure ON imports (measure_id, created_at);
