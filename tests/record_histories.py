"""Record the histories the replay test checks: ``python -m tests.record_histories``.

Run it to add new shapes of history (it writes only files that do not exist yet, so histories
recorded by older code stay and keep proving compatibility); never to paper over a replay
failure, which means running workflows would break. ``--as NAME`` records every shape again
under ``NAME_<shape>``: after a workflow change, so histories of the new code are kept too.
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
from datetime import timedelta
from pathlib import Path

from hitl._core import client as _client
from hitl.dev import stack
from hitl.security import signing
from hitl.settings import Settings
from hitl.testing import ScriptedModelServer
from hitl.worker import create_worker
from tests import replay_agents

OUT = Path(__file__).parent / "histories"
IDS = OUT / "workflow_ids.json"


async def record(prefix: str = "") -> None:
    server = ScriptedModelServer(scripts={"replay-script": replay_agents.SCRIPT}).start()
    os.environ["OPENAI_BASE_URL"] = server.base_url
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["DATABASE_URL"] = stack.postgres_url(Path(tmp) / "pg")
        proc, port = stack.start_temporal(Path(tmp) / "t.db")
        try:
            client = await _client.connect(Settings.from_env(temporal_address=f"127.0.0.1:{port}"))
            agent = replay_agents.agent
            agent._overrides["temporal_address"] = f"127.0.0.1:{port}"
            async with create_worker(client, replay_agents.QUEUE):
                runs = {}
                r = await agent.arun("batch please")
                for req in r.active_requirements:
                    if req.needs_confirmation:
                        req.confirm(arguments={"amount": 2, "to": "a"}, resolved_by="alice")
                    elif req.needs_user_input:
                        req.provide_input("10:00")
                    else:
                        req.provide_result({"ok": True})
                await agent.acontinue_run(r.run_id, r.requirements)
                runs["batch_update"] = r.run_id

                r = await agent.arun("steps by signal and update")
                handle = client.get_workflow_handle(r.run_id)
                while r.is_paused:
                    req = r.active_requirements[0]
                    if r.pauses % 2:
                        await handle.signal("confirm", {"requirement_id": req.id})
                        await handle.signal("confirm", {"requirement_id": req.id})
                        for _ in range(100):
                            await asyncio.sleep(0.05)
                            r = await agent.aget_run(r.run_id)
                            if r.status.is_final or (r.is_paused and r.active_requirements):
                                break
                    else:
                        req.reject(reason="no")
                        r = await agent.acontinue_run(r.run_id, r.requirements)
                await handle.result()
                runs["steps_signals_continue_as_new"] = r.run_id

                r = await agent.arun("fail please")
                runs["model_error"] = r.run_id

                audited = replay_agents.audited_agent
                audited._overrides["temporal_address"] = f"127.0.0.1:{port}"
                r = await audited.arun("audited call and payment")
                handle = client.get_workflow_handle(r.run_id)
                await handle.signal("confirm", {"requirement_id": r.requirements[0].id, "resolved_by": "ops"})
                await handle.signal("reject", {"requirement_id": r.requirements[0].id, "resolved_by": "late"})
                await handle.result()
                runs["audited_signals"] = r.run_id

                r = await audited.arun("guarded payment")
                r.active_requirements[0].confirm(resolved_by="mallory")
                try:
                    await audited.acontinue_run(r.run_id, r.requirements)
                except Exception as exc:  # refused: mallory is no approver
                    print("refused as expected:", type(exc).__name__)
                await client.get_workflow_handle(r.run_id).result()  # the 1 s deadline expires it
                runs["policy_refused_then_expired"] = r.run_id

                r = await audited.arun("escalating payment")
                await client.get_workflow_handle(r.run_id).result()  # remind at 1 s, escalate at 2 s, expire at 3 s
                print("notified:", [n.kind for n in replay_agents.NOTIFIED])
                runs["escalation_steps_expired"] = r.run_id
                team = replay_agents.team
                team._overrides["temporal_address"] = f"127.0.0.1:{port}"
                r = await team.arun("team task")
                [req] = r.active_requirements
                req.confirm(resolved_by="alice")
                r = await team.acontinue_run(r.run_id, r.requirements)
                # Earlier shapes of this run: team_member_* (before members reported their answer),
                # team_outcome_* (before their reports went one at a time, in order), team_in_order_*
                # (before the team sent decisions on as team_decision).
                runs["team_decision_confirmed"] = r.run_id
                runs["team_decision_member_run"] = req.member_run_id

                # Strict mode: an unsigned signal and change refused, a signed change and decision taken.
                signer = signing.Signer.generate()
                signing.trust([signer])
                r = await audited.arun("signed payment")
                handle = client.get_workflow_handle(r.run_id)
                rid = r.requirements[0].id
                await handle.signal("confirm", {"requirement_id": rid, "resolved_by": "alice"})
                await handle.signal("change_approval", {"requirement_id": rid, "extend_by_seconds": 60, "changed_by": "alice"})
                audited.signer = signer
                await audited.achange_approval(r.run_id, rid, extend_by=timedelta(seconds=30), changed_by="alice")
                r.active_requirements[0].confirm(resolved_by="alice")
                await audited.acontinue_run(r.run_id, r.requirements)
                audited.signer = None
                signing.trust(None)
                runs["strict_signed"] = r.run_id

                # Refused attempts past the few kept on the trail (hitl-refusals-capped): mallory, no approver,
                # five times by signal (no validator), then alice decides. Code before the cap kept all five.
                r = await audited.arun("signed payment, refused a few times")
                handle = client.get_workflow_handle(r.run_id)
                for _ in range(5):
                    await handle.signal("confirm", {"requirement_id": r.requirements[0].id, "resolved_by": "mallory"})
                await handle.query("get_run")
                r.active_requirements[0].confirm(resolved_by="alice")
                await audited.acontinue_run(r.run_id, r.requirements)
                runs["refusals_capped"] = r.run_id

                r = await agent.arun("batch by signals")
                handle = client.get_workflow_handle(r.run_id)
                for req in r.active_requirements:  # one at a time: each updates the search attributes
                    if req.needs_confirmation:
                        await handle.signal("confirm", {"requirement_id": req.id})
                    elif req.needs_user_input:
                        await handle.signal("provide_input", {"requirement_id": req.id, "value": "11:00"})
                    else:
                        await handle.signal("provide_result", {"requirement_id": req.id, "result": "ok"})
                    await asyncio.sleep(0.3)
                await handle.result()
                runs["batch_signals_one_by_one"] = r.run_id

                # Asked to move to the current version at its pause (hitl-upgrade-on-request): it
                # continues as new there, and the next run takes the decisions.
                r = await agent.arun("batch please")
                first = (await client.get_workflow_handle(r.run_id).describe()).run_id
                await client.get_workflow_handle(r.run_id).signal("upgrade")
                for _ in range(200):
                    if (await client.get_workflow_handle(r.run_id).describe()).run_id != first:
                        break
                    await asyncio.sleep(0.05)
                r = await agent.aget_run(r.run_id)
                for req in r.active_requirements:
                    if req.needs_confirmation:
                        req.confirm(resolved_by="alice")
                    elif req.needs_user_input:
                        req.provide_input("10:00")
                    else:
                        req.provide_result({"ok": True})
                await agent.acontinue_run(r.run_id, r.requirements)
                runs["upgraded_at_pause"] = r.run_id
                for name, run_id in {prefix + k: v for k, v in runs.items()}.items():
                    # Every run of a continue-as-new chain is a history of its own.
                    desc = await client.get_workflow_handle(run_id).describe()
                    run: str | None = desc.raw_description.workflow_execution_info.first_run_id
                    count = 0
                    while run:
                        history = await client.get_workflow_handle(run_id, run_id=run).fetch_history()
                        target = OUT / f"{name}-{count}.json"
                        if not target.exists():
                            target.write_text(json.dumps(history.to_json_dict(), indent=1))
                            ids = json.loads(IDS.read_text()) if IDS.exists() else {}
                            ids[target.name] = run_id  # a team's child ids derive from it
                            IDS.write_text(json.dumps(ids, indent=1, sort_keys=True) + "\n")
                        count += 1
                        last = history.events[-1]
                        run = last.workflow_execution_continued_as_new_event_attributes.new_execution_run_id or None
                    print(name, count, "run(s)")
        finally:
            stack.stop(proc)
            server.stop()


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--as", dest="prefix", default="", help="record every shape again as PREFIX_<shape>")
    args = parser.parse_args()
    asyncio.run(record(f"{args.prefix}_" if args.prefix else ""))
