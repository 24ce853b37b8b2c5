"""The benchmark's agent with the audit trail on: ``bench.scale --audit`` (PostgreSQL from BENCH_DATABASE_URL)."""

from __future__ import annotations

import os

from bench.agents import approve_refund
from hitl import Agent, OpenAIChat, PostgresDb

QUEUE = "hitl-bench-audited"
TABLE = "bench_scale_approvals"

agent = Agent(OpenAIChat("bench-script"), name="bench-agent-audited", tools=[approve_refund], task_queue=QUEUE,
              db=PostgresDb(os.environ.get("BENCH_DATABASE_URL"), approvals_table=TABLE))
