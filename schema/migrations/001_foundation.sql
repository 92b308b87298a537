-- The foundation: organisations and people, cases and measure requests with their versions,
-- evidence, the lifecycle's records, and the append-only audit entries.

CREATE TABLE organisations (
    id   text PRIMARY KEY,
    name text NOT NULL,
    kind text NOT NULL CHECK (kind IN ('agency', 'commission'))
);

CREATE TABLE users (
    id            text PRIMARY KEY,
    username      text NOT NULL UNIQUE,
    display_name  text NOT NULL,
    org_id        text NOT NULL REFERENCES organisations (id),
    password_hash text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE role_grants (
    user_id    text NOT NULL REFERENCES users (id),
    role       text NOT NULL,
    granted_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, role)
);

CREATE TABLE api_tokens (
    token_hash bytea PRIMARY KEY,
    user_id    text NOT NULL REFERENCES users (id),
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE executor_designations (
    id          text PRIMARY KEY,
    user_id     text NOT NULL REFERENCES users (id),
    scope       text NOT NULL CHECK (scope IN ('npa', 'prefectural')),
    valid_from  timestamptz NOT NULL,
    valid_until timestamptz NOT NULL,
    revoked_at  timestamptz,
    CHECK (valid_until > valid_from)
);

CREATE TABLE cases (
    id          text PRIMARY KEY,
    org_id      text NOT NULL REFERENCES organisations (id),
    title       text NOT NULL,
    summary     text NOT NULL,
    attribution jsonb NOT NULL DEFAULT '{}',
    harm        jsonb NOT NULL DEFAULT '{}',
    created_by  text NOT NULL REFERENCES users (id),
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- One row per measure request: the projection of its workflow, written only by activities
-- (and, for draft content, by the API while the stage is DRAFT).
CREATE TABLE measures (
    id           text PRIMARY KEY,
    case_id      text NOT NULL REFERENCES cases (id),
    stage        text NOT NULL,
    version      integer NOT NULL,
    digest       text NOT NULL DEFAULT '',
    requester_id text NOT NULL REFERENCES users (id),
    plan         jsonb NOT NULL,
    facts        jsonb NOT NULL DEFAULT '{}',
    approval     jsonb,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX measures_case ON measures (case_id);

-- A version is sealed at submission (or an emergency declaration): its digest binds targets,
-- operations, evidence hashes and reviews, and every approval names it.
CREATE TABLE measure_versions (
    measure_id text NOT NULL REFERENCES measures (id),
    version    integer NOT NULL,
    digest     text NOT NULL,
    body       jsonb NOT NULL,
    sealed_by  text NOT NULL REFERENCES users (id),
    sealed_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (measure_id, version)
);

CREATE TABLE targets (
    measure_id       text NOT NULL REFERENCES measures (id),
    version          integer NOT NULL,
    seq              integer NOT NULL,
    kind             text NOT NULL,
    value            text NOT NULL,
    port             integer,
    location         text NOT NULL,
    country          text NOT NULL DEFAULT '',
    role             text NOT NULL DEFAULT '',
    ownership        text NOT NULL DEFAULT 'unknown',
    hosting_provider text NOT NULL DEFAULT '',
    registrar        text NOT NULL DEFAULT '',
    PRIMARY KEY (measure_id, version, seq)
);
CREATE INDEX targets_value ON targets (measure_id, version, value);

CREATE TABLE evidence_blobs (
    sha256     text PRIMARY KEY,
    size       bigint NOT NULL,
    content    bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE evidence (
    id          text PRIMARY KEY,
    measure_id  text NOT NULL REFERENCES measures (id),
    version     integer NOT NULL,
    sha256      text NOT NULL REFERENCES evidence_blobs (sha256),
    filename    text NOT NULL,
    kind        text NOT NULL,
    provenance  text NOT NULL,
    legal_basis text NOT NULL DEFAULT '',
    acquirer    text NOT NULL DEFAULT '',
    tool        text NOT NULL DEFAULT '',
    acquired_at timestamptz,
    tlp         text NOT NULL DEFAULT 'amber',
    added_by    text NOT NULL REFERENCES users (id),
    added_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX evidence_measure ON evidence (measure_id, version);

CREATE TABLE custody_events (
    id          text PRIMARY KEY,
    evidence_id text NOT NULL REFERENCES evidence (id),
    event       text NOT NULL CHECK (event IN ('collected', 'sealed', 'transferred', 'accessed', 'exported')),
    actor_id    text NOT NULL,
    at          timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE reviews (
    measure_id  text NOT NULL REFERENCES measures (id),
    version     integer NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('legal', 'command', 'post_hoc', 'report_verification')),
    reviewer_id text NOT NULL REFERENCES users (id),
    decision    text NOT NULL,
    reason      text NOT NULL DEFAULT '',
    at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (measure_id, version, kind, reviewer_id)
);

CREATE TABLE gates (
    measure_id  text NOT NULL REFERENCES measures (id),
    version     integer NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('foreign_ministry', 'pm_order')),
    reference   text NOT NULL,
    recorded_by text NOT NULL REFERENCES users (id),
    at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (measure_id, version, kind)
);

CREATE TABLE conflict_declarations (
    measure_id text NOT NULL REFERENCES measures (id),
    version    integer NOT NULL,
    member_id  text NOT NULL REFERENCES users (id),
    conflicted boolean NOT NULL,
    reason     text NOT NULL DEFAULT '',
    at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (measure_id, version, member_id)
);

CREATE TABLE votes (
    measure_id text NOT NULL REFERENCES measures (id),
    version    integer NOT NULL,
    digest     text NOT NULL,
    member_id  text NOT NULL REFERENCES users (id),
    vote       text NOT NULL CHECK (vote IN ('approve', 'reject', 'return')),
    reason     text NOT NULL DEFAULT '',
    conditions jsonb NOT NULL DEFAULT '[]',
    at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (measure_id, version, member_id)
);

CREATE TABLE decisions (
    measure_id   text NOT NULL REFERENCES measures (id),
    version      integer NOT NULL,
    digest       text NOT NULL,
    outcome      text NOT NULL CHECK (outcome IN ('approved', 'rejected', 'returned')),
    conditions   jsonb NOT NULL DEFAULT '[]',
    window_start timestamptz,
    window_end   timestamptz,
    tally        jsonb NOT NULL,
    at           timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (measure_id, version)
);

CREATE TABLE orders (
    measure_id text PRIMARY KEY REFERENCES measures (id),
    addressee  text NOT NULL,
    content    text NOT NULL,
    deadline   timestamptz NOT NULL,
    issued_by  text NOT NULL REFERENCES users (id),
    outcome    text,
    proof      text NOT NULL DEFAULT '',
    at         timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE execution_steps (
    measure_id  text NOT NULL REFERENCES measures (id),
    seq         integer NOT NULL,
    executor_id text NOT NULL REFERENCES users (id),
    witness_id  text NOT NULL REFERENCES users (id),
    target      text NOT NULL,
    technique   text NOT NULL,
    action      text NOT NULL,
    result      text NOT NULL,
    at          timestamptz NOT NULL,
    PRIMARY KEY (measure_id, seq)
);

CREATE TABLE reports (
    measure_id  text NOT NULL REFERENCES measures (id),
    kind        text NOT NULL CHECK (kind IN ('post_execution', 'commission_notification')),
    author_id   text NOT NULL REFERENCES users (id),
    body        text NOT NULL,
    verified_by text REFERENCES users (id),
    at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (measure_id, kind)
);

CREATE TABLE notifications (
    measure_id  text NOT NULL REFERENCES measures (id),
    seq         integer NOT NULL,
    addressee   text NOT NULL,
    status      text NOT NULL CHECK (status IN ('sent', 'deferred')),
    reason      text NOT NULL DEFAULT '',
    recorded_by text NOT NULL REFERENCES users (id),
    at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (measure_id, seq)
);

-- Audit entries: one per state change, refused attempt or evidence access, inserted in the
-- same transaction as what it describes. key makes a retried activity a no-op.
-- record is the RFC 8785 canonical JSON that the transparency log hashes.
CREATE TABLE audit_entries (
    id         text PRIMARY KEY,
    key        text NOT NULL UNIQUE,
    measure_id text,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    record     bytea NOT NULL CHECK (length(record) <= 65535)
);
CREATE INDEX audit_entries_measure ON audit_entries (measure_id, created_at);

CREATE FUNCTION audit_entries_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit entries are append-only: % refused', TG_OP;
END;
$$;
CREATE TRIGGER audit_entries_no_update BEFORE UPDATE OR DELETE ON audit_entries
    FOR EACH ROW EXECUTE FUNCTION audit_entries_refuse_change();
CREATE TRIGGER audit_entries_no_truncate BEFORE TRUNCATE ON audit_entries
    FOR EACH STATEMENT EXECUTE FUNCTION audit_entries_refuse_change();
ALTER TABLE audit_entries ENABLE ALWAYS TRIGGER audit_entries_no_update;
ALTER TABLE audit_entries ENABLE ALWAYS TRIGGER audit_entries_no_truncate;
REVOKE UPDATE, DELETE, TRUNCATE ON audit_entries FROM PUBLIC;
