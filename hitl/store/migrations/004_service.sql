-- The decision service: API tokens (only a hash of each secret is kept), idempotency keys of
-- POST requests, and a cursor over the event history for the server-sent events stream.
CREATE TABLE IF NOT EXISTS {tokens} (
    id          text PRIMARY KEY,                  -- the public part of the token: hitl_<id>_<secret>
    secret_hash text NOT NULL,                     -- sha256 of the secret part; the secret is never stored
    principal   text NOT NULL,                     -- the identity the token proves
    scopes      text[] NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz,
    revoked_at  timestamptz,
    created_by  text
);

CREATE TABLE IF NOT EXISTS {idempotency} (
    principal    text NOT NULL,
    key          text NOT NULL,
    request_hash text NOT NULL,                    -- sha256 of method, path and body: a key reused for another request is refused
    status_code  integer,                          -- NULL while the first request is in flight
    body         jsonb,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (principal, key)
);
CREATE INDEX IF NOT EXISTS {idempotency_created} ON {idempotency} (created_at);

-- Events are delivered in (tx, id) order, and only once every transaction that could still add
-- an earlier one has ended (tx below the oldest running transaction): a stream never skips an
-- event that committed late.
ALTER TABLE {events} ADD COLUMN IF NOT EXISTS tx xid8 NOT NULL DEFAULT pg_current_xact_id();
ALTER TABLE {events} ADD COLUMN IF NOT EXISTS id bigint GENERATED ALWAYS AS IDENTITY;
CREATE INDEX IF NOT EXISTS {events_cursor} ON {events} (tx, id);
