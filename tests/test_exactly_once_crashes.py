"""No tool runs for a decision history does not hold: a worker SIGKILLed in a storm, the server SIGKILLed in a burst."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

from hitl import (
    HitlError,
    RequirementAlreadyResolvedError,
    RunOutput,
    RunStatus,
    TemporalUnavailableError,
    _client,
    devstack,
    tool,
)
from hitl.config import Settings
from hitl.worker import create_worker
from tests import crash_agents
from tests.storm import storm, wait_for_record
from tests.test_durability import env, workers  # noqa: F401 - fixtures (tool_log is in conftest)

STARTS = "pay_out start"


async def test_worker_sigkilled_during_a_storm_runs_no_tool_for_an_unrecorded_decision(
        workers, tool_log, database_url, client):  # noqa: F811
    """SIGKILL the worker while 20 callers decide; a new worker finishes: one decision, the tool at most once, iff confirmed."""
    agent = crash_agents.vault_agent
    for trial in range(2):
        first = workers()
        paused = await agent.arun(f"pay {trial + 7}")
        await wait_for_record(agent.db, f"{paused.run_id}/{paused.requirements[0].id}")
        running = asyncio.ensure_future(storm(agent, agent.db, client, paused, 20, seed=trial + 77))
        await asyncio.sleep(0.05 * (trial + 1))
        first.send_signal(signal.SIGKILL)
        first.wait()
        workers()
        s = await asyncio.wait_for(running, 120)
        amount = trial + 7
        for _ in range(1200):  # until it ends, or pauses again: its tool's worker died with it (uncertain outcome)
            now = await agent.aget_run(paused.run_id)
            if now.status.is_final or (now.is_paused and now.pauses > 1):
                break
            await asyncio.sleep(0.1)
        if now.pauses == 1:
            decided, winner = now.requirements[0].resolution, now.requirements[0].resolved_by
        else:
            [again] = now.active_requirements
            assert again.uncertain_outcome, now
            lines = [line for line in tool_log.read_text().splitlines() if line.endswith(f" {amount}")]
            assert lines in ([], [f"{STARTS} {amount}"], [f"{STARTS} {amount}", f"pay_out end {amount}"]), lines
            again.reject(reason="checked: leave it", resolved_by="ops")
            await agent.acontinue_run(now.run_id, now.requirements)
            # The first pause's decision, as the run recorded it ("confirmed by caller-...").
            how = await client.get_workflow_handle(paused.run_id).query("resolution_of", paused.requirements[0].id)
            decided, _, winner = how.partition(" by ")
        done = RunOutput.model_validate(await asyncio.wait_for(client.get_workflow_handle(paused.run_id).result(), 120))
        assert done.status == RunStatus.completed, done
        lines = [line for line in tool_log.read_text().splitlines() if line.endswith(f" {amount}")]
        assert decided in ("confirmed", "rejected")
        if done.pauses == 1:
            expected = [f"{STARTS} {amount}", f"pay_out end {amount}"] if decided == "confirmed" else []
            assert lines == expected, (decided, lines)
        else:  # the confirmed tool's worker died: it ran at most once, and was never run again unseen
            assert decided == "confirmed" and lines.count(f"{STARTS} {amount}") <= 1, lines
        for c in s.callers:
            if c.via == "update_approval" and c.name != winner:
                # Agno's answer to one who decided second (None), or, when Temporal did not answer with the
                # worker killed, an error that says the decision may have been applied: never a record.
                assert c.result is None and (c.error is None or isinstance(c.error, HitlError)), (
                    c.name, c.result, repr(c.error))
            elif c.via != "signal" and c.name != winner:
                assert isinstance(c.error, HitlError), (c.name, c.via, repr(c.error))


ran: list[str] = []


@tool(requires_confirmation=True)
def settle(invoice: int) -> str:
    """Settle an invoice."""
    ran.append(str(invoice))
    return f"settled {invoice}"


async def test_server_sigkilled_during_a_burst_of_decisions_runs_no_tool_whose_decision_was_lost(
        tmp_path: Path, model_server, script, make_agent):
    """Nine decisions in flight when the server dies (three made before): after its restart, a tool has run iff its
    confirmation is in history (at least once: it is idempotent, and a completion lost with the server is retried)."""
    ran.clear()
    db = tmp_path / "burst.db"
    proc, port = devstack.start_temporal(db)
    address = f"127.0.0.1:{port}"
    model = script({"match": r"settle (\d+)", "turns": [{"tool_calls": [{"name": "settle", "arguments": {"invoice": "{num:1}"}}]},
                                                         {"content": "{results}"}]})
    agent = make_agent(model, [settle], temporal_address=address)
    try:
        client = await _client.connect(Settings.from_env(temporal_address=address))
        async with create_worker(client, agent.task_queue):
            paused = await asyncio.gather(*(agent.arun(f"settle {i}") for i in range(12)))
            for i, p in enumerate(paused):
                r = p.active_requirements[0]
                r.confirm(resolved_by="ops") if i % 2 == 0 else r.reject(reason="no", resolved_by="ops")
            for p in paused[:3]:  # decided and done before the burst: in history for sure
                await agent.acontinue_run(p.run_id, p.requirements)
            burst = [asyncio.ensure_future(agent.acontinue_run(p.run_id, p.requirements)) for p in paused[3:]]
            await asyncio.sleep(0.03)
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            outcomes = await asyncio.gather(*burst, return_exceptions=True)
            for o in outcomes:  # answered before the kill, or told Temporal was lost: never a raw RPC error
                assert isinstance(o, (RunOutput, TemporalUnavailableError)), repr(o)
            proc, _ = devstack.start_temporal(db, port)
            for i, p in enumerate(paused):
                for _ in range(300):  # until it has finished, or is still paused on an undecided requirement
                    now = await agent.aget_run(p.run_id)
                    if now.status.is_final or (now.is_paused and now.requirements[0].resolution is None):
                        break
                    await asyncio.sleep(0.1)
                decided = now.requirements[0].resolution
                if decided is None:  # the decision never reached history: nothing ran, and it can be decided anew
                    assert str(i) not in ran, (i, ran)
                    now.requirements[0].reject(reason="decided again", resolved_by="ops")
                    final = await agent.acontinue_run(now.run_id, now.requirements)
                    assert final.status == RunStatus.completed and str(i) not in ran
                    continue
                final = RunOutput.model_validate(await asyncio.wait_for(client.get_workflow_handle(p.run_id).result(), 60))
                if decided == "confirmed":
                    # settle is idempotent (the default): at least once. A worker whose completion of the
                    # tool could not reach the server while it was down gives up on it, and the tool runs
                    # again after its heartbeat timeout (README: what is guaranteed).
                    assert ran.count(str(i)) >= 1, (i, decided, ran)
                else:
                    assert str(i) not in ran, (i, decided, ran)
                assert final.requirements[0].resolution == decided
                if decided == "confirmed":  # sending the confirmation again runs nothing again
                    again = RunOutput.model_validate(p.model_dump())
                    again.requirements[0].confirm(resolved_by="ops")
                    before = ran.count(str(i))
                    try:
                        await agent.acontinue_run(again.run_id, again.requirements)
                        raise AssertionError("a second confirmation was accepted")
                    except RequirementAlreadyResolvedError:
                        pass
                    assert ran.count(str(i)) == before
    finally:
        devstack.stop(proc)
