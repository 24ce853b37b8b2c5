-- Approval records and their append-only, hash-chained event history.
-- {approvals} and {events} are the configured table names, quoted as identifiers by the migrator.

CREATE TABLE IF NOT EXISTS {approvals} (
    id                  text PRIMARY KEY,          -- '<run_id>/<requirement_id>': a retried write finds it
    run_id              text NOT NULL,
    requirement_id      text NOT NULL,
    session_id          text,
    user_id             text,                      -- the user the run was started for
    agent_name          text NOT NULL,
    requirement_kind    text NOT NULL CHECK (requirement_kind IN ('confirmation', 'user_input', 'external_execution', 'none')),
    approval_type       text NOT NULL CHECK (approval_type IN ('required', 'audit', 'none')),
    status              text NOT NULL CHECK (status IN ('pending', 'approved', 'rejected', 'expired', 'cancelled')),
    context             jsonb NOT NULL,            -- tool_name, arguments, original_arguments, note
    tool_name           text GENERATED ALWAYS AS (context ->> 'tool_name') STORED,
    arguments_digest    text NOT NULL,             -- sha256 of the canonical arguments approved
    created_at          timestamptz NOT NULL,
    resolved_by         text,
    resolved_at         timestamptz,
    resolution          jsonb,                     -- reason, input given or external result
    version             integer NOT NULL           -- events applied; a late retry never rolls a row back
);
CREATE INDEX IF NOT EXISTS {approvals_status_created} ON {approvals} (status, created_at DESC);
CREATE INDEX IF NOT EXISTS {approvals_created} ON {approvals} (created_at DESC);
CREATE INDEX IF NOT EXISTS {approvals_run} ON {approvals} (run_id);
CREATE INDEX IF NOT EXISTS {approvals_tool} ON {approvals} (tool_name, created_at DESC);
CREATE INDEX IF NOT EXISTS {approvals_user} ON {approvals} (user_id, created_at DESC);
CREATE INDEX IF NOT EXISTS {approvals_agent} ON {approvals} (agent_name, created_at DESC);
CREATE INDEX IF NOT EXISTS {approvals_resolved_by} ON {approvals} (resolved_by, created_at DESC);
CREATE INDEX IF NOT EXISTS {approvals_pending} ON {approvals} (created_at) WHERE status = 'pending';

CREATE TABLE IF NOT EXISTS {events} (
    approval_id text NOT NULL REFERENCES {approvals} (id),
    seq         integer NOT NULL,                  -- 1, 2, ... per approval
    kind        text NOT NULL,                     -- requested, approved, rejected, refused, ...
    payload     jsonb NOT NULL,
    at          timestamptz NOT NULL,
    prev_hash   text NOT NULL,                     -- the previous event's hash ('' for the first)
    hash        text NOT NULL,                     -- sha256(prev_hash | canonical event)
    PRIMARY KEY (approval_id, seq)
);

CREATE OR REPLACE FUNCTION hitl_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the approval event history is append-only: % refused on %', TG_OP, TG_TABLE_NAME;
END $$;
DROP TRIGGER IF EXISTS {events_append_only} ON {events};
CREATE TRIGGER {events_append_only} BEFORE UPDATE OR DELETE ON {events}
    FOR EACH ROW EXECUTE FUNCTION hitl_refuse_change();
DROP TRIGGER IF EXISTS {events_no_truncate} ON {events};
CREATE TRIGGER {events_no_truncate} BEFORE TRUNCATE ON {events}
    FOR EACH STATEMENT EXECUTE FUNCTION hitl_refuse_change();
