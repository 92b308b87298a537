-- Changes to who holds which role or designation: proposed by one administrator, applied
-- only when another approves.
CREATE TABLE role_changes (
    id             text PRIMARY KEY,
    kind           text NOT NULL CHECK (kind IN ('grant_role', 'revoke_role', 'designate', 'revoke_designation')),
    user_id        text NOT NULL REFERENCES users (id),
    role           text,
    scope          text CHECK (scope IN ('npa', 'prefectural')),
    valid_from     timestamptz,
    valid_until    timestamptz,
    designation_id text REFERENCES executor_designations (id),
    reason         text NOT NULL,
    proposed_by    text NOT NULL REFERENCES users (id),
    approved_by    text REFERENCES users (id),
    proposed_at    timestamptz NOT NULL DEFAULT now(),
    approved_at    timestamptz,
    CHECK (approved_by IS NULL OR approved_by <> proposed_by)
);
