-- Agno's approval record (hitl/db/_queries.py shapes it from the row):
--   team_name:  the team an approval was made for, by name: the team's own approvals and its members' (NULL: an
--               agent's own, or a team the writing worker did not define). Derived by the mirror, outside the seal.
--   updated_at: when the row last moved: the time of its last event, as the run recorded it (outside the seal;
--               the event itself is on the chain). NULL on rows written before this migration.
--   deleted_at: a tombstone. delete_approval hides a decided approval from listings and counts; the row and its
--               events stay on the trail (events are append-only), and include_deleted shows it again.
ALTER TABLE {approvals} ADD COLUMN IF NOT EXISTS team_name text;
ALTER TABLE {approvals} ADD COLUMN IF NOT EXISTS updated_at timestamptz;
ALTER TABLE {approvals} ADD COLUMN IF NOT EXISTS deleted_at timestamptz;
CREATE INDEX IF NOT EXISTS {approvals_team} ON {approvals} (team_name, created_at DESC) WHERE team_name IS NOT NULL;

-- The counts leave a tombstoned row out: its key is taken off when it is hidden, and a hidden row's later moves
-- (a late event) count nothing.
CREATE OR REPLACE FUNCTION {count_change}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.deleted_at IS NULL THEN
        INSERT INTO {count_deltas} VALUES (OLD.status, OLD.tool_name, OLD.agent_name, OLD.approval_type,
            OLD.requirement_kind, (OLD.created_at AT TIME ZONE 'UTC')::date, -1);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') AND NEW.deleted_at IS NULL THEN
        INSERT INTO {count_deltas} VALUES (NEW.status, NEW.tool_name, NEW.agent_name, NEW.approval_type,
            NEW.requirement_kind, (NEW.created_at AT TIME ZONE 'UTC')::date, 1);
    END IF;
    RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS {counts_update} ON {approvals};
CREATE TRIGGER {counts_update} AFTER UPDATE ON {approvals} FOR EACH ROW
    WHEN (OLD.status IS DISTINCT FROM NEW.status OR OLD.tool_name IS DISTINCT FROM NEW.tool_name
          OR OLD.agent_name IS DISTINCT FROM NEW.agent_name OR OLD.approval_type IS DISTINCT FROM NEW.approval_type
          OR OLD.requirement_kind IS DISTINCT FROM NEW.requirement_kind OR OLD.created_at IS DISTINCT FROM NEW.created_at
          OR OLD.deleted_at IS DISTINCT FROM NEW.deleted_at)
    EXECUTE FUNCTION {count_change}();
