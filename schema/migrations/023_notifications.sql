-- What each person chooses to be told, and where: an e-mail address, a webhook (signed with
-- its own secret, per Standard Webhooks), and the kinds of notice.
CREATE TABLE notification_prefs (
    user_id        text PRIMARY KEY REFERENCES users (id),
    email          text NOT NULL DEFAULT '',
    webhook_url    text NOT NULL DEFAULT '',
    webhook_secret text NOT NULL DEFAULT '',
    kinds          text[] NOT NULL DEFAULT '{}',
    updated_at     timestamptz NOT NULL DEFAULT now()
);

-- The notifications planned and their delivery: one row per person, channel and thing told,
-- its key naming that thing, so each is planned once; sent_at is set in the transaction that
-- held the row while it was sent, beside its audit record.
CREATE TABLE notices (
    id         text PRIMARY KEY,
    key        text NOT NULL UNIQUE,
    user_id    text NOT NULL REFERENCES users (id),
    channel    text NOT NULL CHECK (channel IN ('email', 'webhook')),
    address    text NOT NULL,
    kind       text NOT NULL,
    measure_id text NOT NULL,
    stage      text NOT NULL,
    ops        text[] NOT NULL DEFAULT '{}',
    deadline   timestamptz,
    due        text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now(),
    next_try   timestamptz NOT NULL DEFAULT now(),
    attempts   integer NOT NULL DEFAULT 0,
    last_error text NOT NULL DEFAULT '',
    sent_at    timestamptz,
    -- set instead of sent_at when the person's choices no longer ask for it
    withdrawn_at timestamptz
);
CREATE INDEX notices_due ON notices (next_try, id) WHERE sent_at IS NULL AND withdrawn_at IS NULL;
CREATE INDEX notices_user ON notices (user_id, created_at);
