-- API tokens expire and can be revoked (logout); each has a public ID so its holder can list
-- and revoke it. Tokens issued before this migration get an ID and expire 12 hours after issue.
ALTER TABLE api_tokens ADD COLUMN id text;
ALTER TABLE api_tokens ADD COLUMN expires_at timestamptz;
ALTER TABLE api_tokens ADD COLUMN revoked_at timestamptz;
UPDATE api_tokens SET id = 't-' || substr(encode(token_hash, 'hex'), 1, 20), expires_at = created_at + interval '12 hours';
ALTER TABLE api_tokens ALTER COLUMN id SET NOT NULL;
ALTER TABLE api_tokens ALTER COLUMN expires_at SET NOT NULL;
ALTER TABLE api_tokens ADD CONSTRAINT api_tokens_id_key UNIQUE (id);
CREATE INDEX api_tokens_user ON api_tokens (user_id);

-- Failed logins, per account name and per client address, for throttling; each is also an
-- audit entry. Rows older than the throttling window can be deleted at will.
CREATE TABLE login_failures (
    username text NOT NULL,
    address  text NOT NULL,
    at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX login_failures_username ON login_failures (username, at);
CREATE INDEX login_failures_address ON login_failures (address, at);
