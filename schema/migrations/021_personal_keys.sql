-- Personal keys: the passkeys and SSH keys with which people sign their own decisions. A key
-- is proposed by its holder, with a proof that they hold it, and is in force once an
-- administrator other than the holder approves it. The holder may revoke it; another's key is
-- revoked by two administrators (a lost key). The log records each step with the key itself:
-- the table is what the service looks keys up in, the log what they are checked against.
CREATE TABLE personal_keys (
    id                 text PRIMARY KEY,
    user_id            text NOT NULL REFERENCES users (id),
    kind               text NOT NULL CHECK (kind IN ('webauthn', 'ssh')),
    public_key         text NOT NULL,
    credential_id      text,
    rp_id              text,
    origin             text,
    label              text NOT NULL DEFAULT '',
    proof              jsonb NOT NULL,
    proposed_at        timestamptz NOT NULL DEFAULT now(),
    approved_by        text REFERENCES users (id),
    approved_at        timestamptz,
    revoke_proposed_by text REFERENCES users (id),
    revoke_reason      text,
    revoked_at         timestamptz,
    revoked_by         text REFERENCES users (id),
    sign_count         bigint NOT NULL DEFAULT 0,
    CHECK (approved_by IS NULL OR approved_by <> user_id),
    CHECK (revoked_by IS NULL OR revoked_by = user_id OR revoked_by <> revoke_proposed_by)
);
CREATE UNIQUE INDEX personal_keys_credential ON personal_keys (credential_id) WHERE credential_id IS NOT NULL;
CREATE INDEX personal_keys_user ON personal_keys (user_id);

-- A policy may require personal signatures: "sign role op" ("*" for every role).
ALTER TABLE authz_rules DROP CONSTRAINT authz_rules_effect_check;
ALTER TABLE authz_rules ADD CONSTRAINT authz_rules_effect_check CHECK (effect IN ('allow', 'deny', 'sign'));

-- Each signature is used once: a signed decision sent again is refused, as the verifier
-- refuses a signature recorded twice.
CREATE TABLE used_signatures (
    hash    bytea PRIMARY KEY,
    key_id  text NOT NULL,
    used_at timestamptz NOT NULL DEFAULT now()
);
