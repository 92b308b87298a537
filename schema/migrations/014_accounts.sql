-- Accounts for production: organisations and users are created and retired, like roles, by
-- one administrator's proposal and another's approval. A new local account has no password
-- until its holder enrols with a one-time code; an account bound to single sign-on may never
-- have one.
ALTER TABLE role_changes DROP CONSTRAINT role_changes_kind_check;
ALTER TABLE role_changes ADD CONSTRAINT role_changes_kind_check
    CHECK (kind IN ('grant_role', 'revoke_role', 'designate', 'revoke_designation', 'create_org', 'create_user', 'retire_user'));
ALTER TABLE role_changes ALTER COLUMN user_id DROP NOT NULL;
-- What create_org and create_user create, as proposed.
ALTER TABLE role_changes ADD COLUMN account jsonb;

ALTER TABLE organisations ADD COLUMN created_at timestamptz NOT NULL DEFAULT now();

ALTER TABLE users ADD COLUMN retired_at timestamptz;
ALTER TABLE users ADD COLUMN enrolment_hash bytea;
ALTER TABLE users ADD COLUMN enrolment_expires_at timestamptz;
-- Single sign-on: the identity provider's subject, bound at the first login.
ALTER TABLE users ADD COLUMN oidc_issuer text;
ALTER TABLE users ADD COLUMN oidc_subject text;
CREATE UNIQUE INDEX users_oidc ON users (oidc_issuer, oidc_subject) WHERE oidc_subject IS NOT NULL;
