-- Exact counts without counting a million rows. Every change of an approval's counted dimensions
-- (status, tool, agent, approval type, pause type, UTC day) adds delta rows in the same
-- transaction, by trigger: +1 for the row's new key, -1 for its old one. Deltas are insert-only,
-- so concurrent mirror writes never wait on a shared counter row; compaction folds them into
-- {counts}, one row per key. A count is sum(n) over both tables, in one snapshot.
-- A retried mirror write changes no row (the upsert's version guard), so it fires no trigger.
CREATE TABLE IF NOT EXISTS {counts} (
    status           text NOT NULL,
    tool_name        text,
    agent_name       text NOT NULL,
    approval_type    text NOT NULL,
    requirement_kind text NOT NULL,
    day              date NOT NULL,                -- (created_at AT TIME ZONE 'UTC')::date
    n                bigint NOT NULL
);
-- NULLS NOT DISTINCT (PostgreSQL 15+): one row for the approvals without a tool name.
CREATE UNIQUE INDEX IF NOT EXISTS {counts_key} ON {counts}
    (status, tool_name, agent_name, approval_type, requirement_kind, day) NULLS NOT DISTINCT;

CREATE TABLE IF NOT EXISTS {count_deltas} (
    status           text NOT NULL,
    tool_name        text,
    agent_name       text NOT NULL,
    approval_type    text NOT NULL,
    requirement_kind text NOT NULL,
    day              date NOT NULL,
    n                integer NOT NULL              -- +1 or -1
);

CREATE OR REPLACE FUNCTION {count_change}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO {count_deltas} VALUES (NEW.status, NEW.tool_name, NEW.agent_name, NEW.approval_type,
            NEW.requirement_kind, (NEW.created_at AT TIME ZONE 'UTC')::date, 1);
    ELSIF TG_OP = 'UPDATE' THEN
        INSERT INTO {count_deltas} VALUES (OLD.status, OLD.tool_name, OLD.agent_name, OLD.approval_type,
            OLD.requirement_kind, (OLD.created_at AT TIME ZONE 'UTC')::date, -1),
            (NEW.status, NEW.tool_name, NEW.agent_name, NEW.approval_type,
            NEW.requirement_kind, (NEW.created_at AT TIME ZONE 'UTC')::date, 1);
    ELSE
        INSERT INTO {count_deltas} VALUES (OLD.status, OLD.tool_name, OLD.agent_name, OLD.approval_type,
            OLD.requirement_kind, (OLD.created_at AT TIME ZONE 'UTC')::date, -1);
    END IF;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION {count_truncate}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    TRUNCATE {counts}, {count_deltas};
    RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS {counts_insert_delete} ON {approvals};
CREATE TRIGGER {counts_insert_delete} AFTER INSERT OR DELETE ON {approvals}
    FOR EACH ROW EXECUTE FUNCTION {count_change}();
-- Only an update that moves the row to another key: a decision changes status; edits of the
-- arguments, a quorum's confirmations, a reassignment change none.
DROP TRIGGER IF EXISTS {counts_update} ON {approvals};
CREATE TRIGGER {counts_update} AFTER UPDATE ON {approvals} FOR EACH ROW
    WHEN (OLD.status IS DISTINCT FROM NEW.status OR OLD.tool_name IS DISTINCT FROM NEW.tool_name
          OR OLD.agent_name IS DISTINCT FROM NEW.agent_name OR OLD.approval_type IS DISTINCT FROM NEW.approval_type
          OR OLD.requirement_kind IS DISTINCT FROM NEW.requirement_kind OR OLD.created_at IS DISTINCT FROM NEW.created_at)
    EXECUTE FUNCTION {count_change}();
DROP TRIGGER IF EXISTS {counts_truncated} ON {approvals};
CREATE TRIGGER {counts_truncated} AFTER TRUNCATE ON {approvals}
    FOR EACH STATEMENT EXECUTE FUNCTION {count_truncate}();

-- Backfill an existing trail. CREATE TRIGGER above holds a lock that waits for writers in flight
-- and keeps new ones out until this migration commits: no row is counted twice or missed.
INSERT INTO {counts} (status, tool_name, agent_name, approval_type, requirement_kind, day, n)
SELECT status, tool_name, agent_name, approval_type, requirement_kind, (created_at AT TIME ZONE 'UTC')::date, count(*)
FROM {approvals}
GROUP BY 1, 2, 3, 4, 5, 6;

-- The other documented filters, for the page beside the count: a rare pause or approval type, or
-- one session, would otherwise walk the whole created_at index to fill a page.
CREATE INDEX IF NOT EXISTS {approvals_session} ON {approvals} (session_id, created_at DESC) WHERE session_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS {approvals_kind} ON {approvals} (requirement_kind, created_at DESC);
CREATE INDEX IF NOT EXISTS {approvals_type} ON {approvals} (approval_type, created_at DESC);
