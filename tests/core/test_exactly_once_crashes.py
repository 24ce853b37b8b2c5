"""No tool runs for a decision history does not hold: a worker SIGKILLed in a storm, the server SIGKILLed in a burst."""

from __future__ import annotations

import asyncio
import json
import signal
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from temporalio.client import WorkflowExecutionStatus

from hitl import HitlError, RequirementAlreadyResolvedError, RunOutput, RunStatus, TemporalUnavailableError, tool
from hitl._core import client as _client
from hitl.dev import stack
from hitl.settings import Settings
from hitl.worker import create_worker
from tests import crash_agents
from tests.core.test_durability import env, workers  # noqa: F401 - fixtures (tool_log is in conftest)
from tests.storm import storm, wait_for_record

STARTS = "pay_out start"


class HoldingModel:
    """A proxy to the scripted model that holds every request carrying a tool's result (the model asked again
    once a decision let the run go on: after the tool ran, or told of a rejection) until ``stop()``. A worker
    using it keeps the work that follows a decision in flight, so a kill is sure to land on it."""

    def __init__(self, upstream: str) -> None:
        self.held = 0
        self._release = threading.Event()
        owner, root = self, upstream.rstrip("/").removesuffix("/v1")

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers["content-length"]))
                if any(m.get("role") == "tool" for m in json.loads(body).get("messages", [])):
                    owner.held += 1
                    owner._release.wait(120)
                    self.close_connection = True  # its worker is dead by now: nobody to answer
                    return
                request = urllib.request.Request(root + self.path, data=body, method="POST", headers={
                    k: v for k, v in self.headers.items() if k.lower() in ("content-type", "authorization")})
                try:
                    with urllib.request.urlopen(request, timeout=30) as answer:
                        status, data, kind = answer.status, answer.read(), answer.headers.get("content-type", "")
                except urllib.error.HTTPError as exc:
                    status, data, kind = exc.code, exc.read(), exc.headers.get("content-type", "")
                self.send_response(status)
                self.send_header("content-type", kind)
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._http.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self._http.server_address[1]}/v1"
        threading.Thread(target=self._http.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self._release.set()
        self._http.shutdown()
        self._http.server_close()


async def acted_on(tool_log: Path, amount: int, model: HoldingModel, within: float = 60) -> str:
    """Wait until the run acts on the storm's decision: its tool started (confirmed), or the model asked again
    with the decision's outcome (rejected). Which; fails if neither came."""
    for _ in range(int(within * 20)):
        if f"{STARTS} {amount}" in tool_log.read_text().splitlines():
            return "the tool"
        if model.held:
            return "the model call after the decision"
        await asyncio.sleep(0.05)
    raise AssertionError(f"no decision of the storm was acted on within {within} s: a kill would land on nothing")


async def test_worker_sigkilled_during_a_storm_runs_no_tool_for_an_unrecorded_decision(
        workers, tool_log, database_url, client, model_server):  # noqa: F811
    """SIGKILL the worker while 20 callers decide, once the run acts on the decision (its tool running, or the model
    asked after a rejection); a new worker finishes: one decision, the tool at most once, iff confirmed."""
    agent = crash_agents.vault_agent
    for trial in range(2):
        amount = trial + 7
        model = HoldingModel(model_server.base_url)
        first = workers(OPENAI_BASE_URL=model.base_url, HITL_PAY_SECONDS="3")  # the tool runs 3 s
        try:
            paused = await agent.arun(f"pay {amount}")
            await wait_for_record(agent.db, f"{paused.run_id}/{paused.requirements[0].id}")
            running = asyncio.ensure_future(storm(agent, agent.db, client, paused, 20, seed=trial + 77))
            in_flight = await acted_on(tool_log, amount, model)
            first.send_signal(signal.SIGKILL)
            first.wait()
        finally:
            model.stop()
        # The kill landed on in-flight work: the run was acting on a decision and had not finished (nor could it
        # since: its only worker is dead); a tool it had started had not ended.
        status = (await client.get_workflow_handle(paused.run_id).describe()).status
        assert status == WorkflowExecutionStatus.RUNNING, (in_flight, status)
        if in_flight == "the tool":
            assert f"pay_out end {amount}" not in tool_log.read_text().splitlines()
        second = workers()
        s = await asyncio.wait_for(running, 120)
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
        # The next trial's run must reach only its own first worker, the one it kills (this one took the last
        # trial's run before: the kill then hit a worker with nothing in flight).
        second.kill()
        second.wait()


ran: list[str] = []
holding: set[str] = set()
"""Invoices whose settling waits for ``released`` once started: a tool still running when the server dies."""
released = threading.Event()


@tool(requires_confirmation=True)
def settle(invoice: int) -> str:
    """Settle an invoice."""
    ran.append(str(invoice))
    if str(invoice) in holding:
        released.wait(30)
    return f"settled {invoice}"


async def test_server_sigkilled_during_a_burst_of_decisions_runs_no_tool_whose_decision_was_lost(
        tmp_path: Path, model_server, script, make_agent):
    """Nine decisions sent at once, the server SIGKILLed once one of them is running its tool (three made before):
    after its restart, a tool has run iff its confirmation is in history (at least once: it is idempotent, and a
    completion lost with the server is retried)."""
    ran.clear()
    holding.clear()
    released.clear()
    db = tmp_path / "burst.db"
    proc, port = stack.start_temporal(db)
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
            holding.update(str(i) for i in range(3, 12))
            burst = [asyncio.ensure_future(agent.acontinue_run(p.run_id, p.requirements)) for p in paused[3:]]
            for _ in range(600):  # until a decision of the burst is acted on: its tool runs (and waits)
                if holding & set(ran):
                    break
                await asyncio.sleep(0.05)
            in_flight = holding & set(ran)
            assert in_flight, "no decision of the burst reached its tool in 30 s: the kill would land on nothing"
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            unanswered = sum(not b.done() for b in burst)
            released.set()
            # In flight when the server died: a confirmation in history (its tool can only start once it is) whose
            # tool was still running, so its caller, waiting for the run to go on, was still unanswered.
            assert unanswered >= 1, (in_flight, unanswered)
            outcomes = await asyncio.gather(*burst, return_exceptions=True)
            for o in outcomes:  # answered before the kill, or told Temporal was lost: never a raw RPC error
                assert isinstance(o, (RunOutput, TemporalUnavailableError)), repr(o)
            proc, _ = stack.start_temporal(db, port)
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
        released.set()
        stack.stop(proc)
