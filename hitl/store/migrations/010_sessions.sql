-- Agno's sessions: the runs of a session (for add_history_to_context) and its state (session_state).
-- Written by the caller's process (hitl/_sessions.py): a run's input when it starts, its answer when a
-- caller sees it complete; the state by the tools that change it (run_context.session_state).
CREATE TABLE IF NOT EXISTS {session_runs} (
    run_id      text PRIMARY KEY,
    session_id  text NOT NULL,
    agent_name  text NOT NULL,
    input       text NOT NULL,
    content     text,                          -- NULL until the run is seen complete
    created_at  timestamptz NOT NULL DEFAULT now(),
    completed_at timestamptz
);
CREATE INDEX IF NOT EXISTS {session_runs_session} ON {session_runs} (session_id, agent_name, created_at);

CREATE TABLE IF NOT EXISTS {sessions} (
    session_id  text NOT NULL,
    agent_name  text NOT NULL,
    state       jsonb NOT NULL DEFAULT jsonb_build_object(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (session_id, agent_name)
);
