"""Several worker processes on one task queue: runs spread, decisions apply once, a dead worker's runs move."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import psycopg.sql
import pytest

from hitl import HitlError, PostgresDb, RunOutput, RunStatus
from hitl.agent import Agent
from tests import multi_agents
from tests.conftest import ROOT
from tests.storm import storm

RUNS = 24


@pytest.fixture
def audit(database_url: str) -> PostgresDb:
    """The approvals table the workers' agents mirror to, migrated."""
    db = PostgresDb(database_url, approvals_table=multi_agents.TABLE)
    db.migrate()
    return db


@pytest.fixture
def start_workers(temporal_server: dict[str, Any], model_server: Any, tool_log: Path, audit: PostgresDb,
                  tmp_path: Path) -> Iterator[Any]:
    """``start_workers(n)``: n ``worker.py --agents tests.multi_agents`` processes, returned once all poll."""
    for name, script in multi_agents.SCRIPTS.items():
        model_server.add_script(name, script)
    env = {**os.environ, "TEMPORAL_ADDRESS": temporal_server["address"], "OPENAI_BASE_URL": model_server.base_url,
           "HITL_TEST_LOG": str(tool_log), "PYTHONPATH": str(ROOT)}
    started: list[tuple[subprocess.Popen[bytes], Path]] = []

    def start(n: int) -> list[subprocess.Popen[bytes]]:
        new = []
        for _ in range(n):
            log = tmp_path / f"worker-{len(started)}.log"
            with open(log, "ab") as out:
                proc = subprocess.Popen([sys.executable, "worker.py", "--agents", "tests.multi_agents"],
                                        cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
            started.append((proc, log))
            new.append((proc, log))
        deadline = time.monotonic() + 60
        for proc, log in new:
            while b"worker ready" not in log.read_bytes():
                if proc.poll() is not None:
                    raise RuntimeError(f"worker exited with {proc.returncode}: {log.read_text()[-2000:]}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"worker did not start: {log.read_text()[-2000:]}")
                time.sleep(0.05)
        return [proc for proc, _ in new]

    yield start
    for proc, _ in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def tool_lines(log: Path) -> list[tuple[str, str, int]]:
    """(tool, order, pid) for every call a worker ran."""
    return [(t, o, int(p)) for t, o, p in (line.split() for line in log.read_text().splitlines())]


async def pause_many(agent: Agent, prefix: str, n: int = RUNS) -> list[RunOutput]:
    paused = await asyncio.gather(*(agent.arun(f"order {prefix}-{i}") for i in range(n)))
    assert all(p.is_paused for p in paused), [p.status for p in paused if not p.is_paused]
    return list(paused)


async def settle(agent: Agent, run_id: str, timeout: float = 90) -> RunOutput:
    """Wait for the run to end, rejecting any confirmation a dead worker left uncertain."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = await agent.aget_run(run_id)
        if run.status.is_final:
            return run
        uncertain = [r for r in run.active_requirements if r.uncertain_outcome]
        if uncertain:
            for r in uncertain:
                r.reject(reason="checked the ledger", resolved_by="ops")
            try:
                await agent.acontinue_run(run.run_id, run.requirements)
            except HitlError:
                pass  # decided meanwhile; read it again
        await asyncio.sleep(0.2)
    raise AssertionError(f"run {run_id} did not end: {await agent.aget_run(run_id)}")


def decided_events(db: PostgresDb, run_ids: list[str]) -> Counter[str]:
    """How many confirmed/rejected events the audit holds for each run's approvals."""
    events, approvals = psycopg.sql.Identifier(f"{db.approvals_table}_events"), psycopg.sql.Identifier(db.approvals_table)
    query = psycopg.sql.SQL(
        "SELECT a.run_id FROM {e} e JOIN {a} a ON a.id = e.approval_id"
        " WHERE a.run_id = ANY(%s) AND e.kind IN ('confirmed', 'rejected')").format(e=events, a=approvals)
    with psycopg.connect(db.db_url, autocommit=True) as conn:
        rows = conn.execute(query, (run_ids,)).fetchall()
    return Counter(r[0] for r in rows)


async def audit_settled(db: PostgresDb, run_ids: list[str], per_run: int = 1) -> Counter[str]:
    for _ in range(200):
        counts = decided_events(db, run_ids)
        if all(counts[r] >= per_run for r in run_ids):
            return counts
        await asyncio.sleep(0.1)
    return counts


@pytest.mark.parametrize("workers", [2, 3])
async def test_runs_are_spread_over_the_worker_processes(start_workers, tool_log, workers):
    """24 runs paused and confirmed with 2 (3) workers: more than one process ran tools, each call once."""
    procs = start_workers(workers)
    paused = await pause_many(multi_agents.ship_agent, f"spread{workers}")
    for p in paused:
        p.active_requirements[0].confirm(resolved_by="alice")
    done = await asyncio.gather(*(multi_agents.ship_agent.acontinue_run(p.run_id, p.requirements) for p in paused))
    assert all(d.status == RunStatus.completed for d in done)
    lines = tool_lines(tool_log)
    assert sorted(o for _, o, _ in lines) == sorted(f"spread{workers}-{i}" for i in range(RUNS))
    pids = {pid for _, _, pid in lines}
    assert pids <= {p.pid for p in procs} and len(pids) > 1, Counter(pid for _, _, pid in lines)


async def test_each_decision_applies_once_whichever_worker_holds_the_run(start_workers, tool_log, audit, client):
    """Storms of mixed decisions on 12 runs held by 3 workers: one decision each, the tool run iff confirmed."""
    start_workers(3)
    agent = multi_agents.ship_agent
    paused = await pause_many(agent, "once", 12)
    storms = await asyncio.gather(*(storm(agent, agent.db, client, p, 6, seed=i) for i, p in enumerate(paused)))
    done = await asyncio.gather(*(settle(agent, p.run_id) for p in paused))
    shipped = Counter(o for _, o, _ in tool_lines(tool_log))
    for i, (s, d) in enumerate(zip(storms, done, strict=True)):
        assert d.status == RunStatus.completed and d.pauses == 1, d
        [req] = d.requirements
        assert req.resolution in ("confirmed", "rejected") and req.resolved_by in {c.name for c in s.callers}
        assert shipped[f"once-{i}"] == (1 if req.resolution == "confirmed" else 0), (req.resolution, shipped)
    run_ids = [p.run_id for p in paused]
    assert await audit_settled(audit, run_ids) == Counter({r: 1 for r in run_ids})


async def task_identities(client: Any, run_id: str) -> list[str]:
    """The identity (``pid@host``) of the worker that completed each of the run's workflow tasks."""
    history = await client.get_workflow_handle(run_id).fetch_history()
    return [e.workflow_task_completed_event_attributes.identity for e in history.events
            if e.HasField("workflow_task_completed_event_attributes")]


async def test_a_worker_killed_mid_storm_leaves_its_runs_to_the_others(start_workers, tool_log, audit, client):
    """SIGKILL one of 3 workers while 24 refunds are confirmed: all complete, no refund twice, none unrecorded."""
    procs = start_workers(3)
    agent = multi_agents.refund_agent
    paused = await pause_many(agent, "kill")

    async def confirm(p: RunOutput) -> None:
        p.active_requirements[0].confirm(resolved_by="alice")
        try:
            await agent.acontinue_run(p.run_id, p.requirements)
        except HitlError:
            pass  # its worker died under the update: settle() reads what the run recorded

    sending = [asyncio.ensure_future(confirm(p)) for p in paused]
    for _ in range(4000):  # a worker that has run a tool holds runs: kill it while decisions still arrive
        ran = tool_lines(tool_log)
        if ran:
            break
        await asyncio.sleep(0.01)
    assert ran, "no tool ran: no worker took a decision"
    victim = next(p for p in procs if p.pid == ran[0][2])
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    await asyncio.gather(*sending)
    done = await asyncio.gather(*(settle(agent, p.run_id, timeout=120) for p in paused))
    assert all(d.status == RunStatus.completed for d in done)
    refunds = Counter(o for _, o, _ in tool_lines(tool_log))
    assert max(refunds.values()) == 1, refunds
    for i, d in enumerate(done):
        if d.pauses == 1:  # alice's confirmation, applied once: the refund ran exactly once
            assert [(r.resolution, r.resolved_by) for r in d.requirements] == [("confirmed", "alice")], d
            assert refunds[f"kill-{i}"] == 1, (i, d)
        else:  # the refund's worker died under it: asked again (uncertain outcome), never re-run unseen
            assert d.pauses == 2 and any(r.uncertain_outcome for r in d.requirements), d
    survivors = tuple(f"{p.pid}@" for p in procs if p is not victim)
    identities = await asyncio.gather(*(task_identities(client, p.run_id) for p in paused))
    held = [ids for ids in identities if any(i.startswith(f"{victim.pid}@") for i in ids)]
    moved = [ids for ids in held if ids[-1].startswith(survivors)]  # finished elsewhere after the kill
    assert moved, identities
    run_ids = [p.run_id for p in paused]
    decided = await audit_settled(audit, run_ids)
    assert all(decided[r] >= 1 for r in run_ids), decided
