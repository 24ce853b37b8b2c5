-- An Idempotency-Key's claim is a lease: the request that holds it renews claimed_at while it runs,
-- and a retry may take over a claim left unrenewed past the lease (its request died with its service).
-- claim names the holder, so a request that lost its lease never stores or deletes the new holder's row.
ALTER TABLE {idempotency} ADD COLUMN IF NOT EXISTS claim text;
ALTER TABLE {idempotency} ADD COLUMN IF NOT EXISTS claimed_at timestamptz NOT NULL DEFAULT now();
