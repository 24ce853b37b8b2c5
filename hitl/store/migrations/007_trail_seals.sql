-- A trail that proves itself (hitl/db/_audit.py, _verify.py). Each event's hash may be keyed: key_id
-- names the audit key of its HMAC-SHA256 (NULL: plain sha256, as every event before this migration).
-- Each approvals row carries a seal over its columns and its chain's head, written with the event
-- that moved it (NULL on rows no event has moved since). Checkpoints pin every approval's last
-- event: a statement keyed like the chain, chained to the checkpoint before it, and the heads that
-- changed since (the rest are the earlier checkpoints'). Both checkpoint tables are append-only.
ALTER TABLE {events} ADD COLUMN IF NOT EXISTS key_id text;
ALTER TABLE {approvals} ADD COLUMN IF NOT EXISTS seal text;
ALTER TABLE {approvals} ADD COLUMN IF NOT EXISTS seal_key text;

CREATE TABLE IF NOT EXISTS {checkpoints} (
    n           bigint PRIMARY KEY,                -- 1, 2, ...
    statement   text NOT NULL,                     -- canonical JSON: n, at, approvals, digest, changed, delta, prev, key_id
    key_id      text,                              -- the audit key of mac; NULL: plain sha256
    mac         text NOT NULL                      -- HMAC-SHA256(key, statement)
);
CREATE TABLE IF NOT EXISTS {checkpoint_heads} (
    checkpoint  bigint NOT NULL,
    approval_id text NOT NULL,
    seq         integer NOT NULL,                  -- the approval's last event when the checkpoint was made
    hash        text NOT NULL,                     -- that event's hash
    row_seal    text NOT NULL,                     -- the row's seal then (a row never sealed: its unkeyed seal)
    PRIMARY KEY (checkpoint, approval_id)
);
CREATE INDEX IF NOT EXISTS {checkpoint_heads_approval} ON {checkpoint_heads} (approval_id, checkpoint DESC);

DROP TRIGGER IF EXISTS {checkpoints_append_only} ON {checkpoints};
CREATE TRIGGER {checkpoints_append_only} BEFORE UPDATE OR DELETE ON {checkpoints}
    FOR EACH ROW EXECUTE FUNCTION hitl_refuse_change();
DROP TRIGGER IF EXISTS {checkpoints_no_truncate} ON {checkpoints};
CREATE TRIGGER {checkpoints_no_truncate} BEFORE TRUNCATE ON {checkpoints}
    FOR EACH STATEMENT EXECUTE FUNCTION hitl_refuse_change();
DROP TRIGGER IF EXISTS {checkpoint_heads_append_only} ON {checkpoint_heads};
CREATE TRIGGER {checkpoint_heads_append_only} BEFORE UPDATE OR DELETE ON {checkpoint_heads}
    FOR EACH ROW EXECUTE FUNCTION hitl_refuse_change();
DROP TRIGGER IF EXISTS {checkpoint_heads_no_truncate} ON {checkpoint_heads};
CREATE TRIGGER {checkpoint_heads_no_truncate} BEFORE TRUNCATE ON {checkpoint_heads}
    FOR EACH STATEMENT EXECUTE FUNCTION hitl_refuse_change();
