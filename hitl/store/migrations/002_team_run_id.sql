-- Teams: a member's approval record names the team run it was made for.
ALTER TABLE {approvals} ADD COLUMN IF NOT EXISTS team_run_id text;
CREATE INDEX IF NOT EXISTS {approvals_team_run} ON {approvals} (team_run_id) WHERE team_run_id IS NOT NULL;
