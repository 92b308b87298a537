-- Browser sessions of the web pages (alexedwards/scs): server-side, so every replica of serve
-- knows them, a restart logs nobody out, and logout ends a session everywhere.
CREATE TABLE web_sessions (
    token  text PRIMARY KEY,
    data   bytea NOT NULL,
    expiry timestamptz NOT NULL
);
CREATE INDEX web_sessions_expiry ON web_sessions (expiry);
