"""A table owner who lifts the triggers cannot change the trail unseen: `hitl audit verify` finds it.

The tests' PostgreSQL user owns the tables, as an application's database owner would: it disables
every trigger (append-only guards, counts, foreign keys) and edits rows and events at will, but
does not hold the workers' audit key.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import sys
import uuid

import psycopg
import pytest
from typer.testing import CliRunner

from hitl import PostgresDb
from hitl._wire import digest
from hitl.cli import app
from hitl.errors import ConfigurationError
from hitl.store.audit import AuditKeys, event_hash, seal
from tests.store.test_audit import settled, transfer

SECRET = base64.b64encode(os.urandom(32)).decode()
KEYS = f"audit-1:{SECRET}"


@pytest.fixture
async def db(database_url):
    """Fresh tables whose mirror keys every hash and seal (what HITL_AUDIT_KEYS gives a worker)."""
    database = PostgresDb(database_url, approvals_table=f"approvals_{uuid.uuid4().hex[:8]}", audit_keys=KEYS)
    database.migrate()
    yield database
    await database.aclose()
    database.close()


async def decided(make_agent, script, running_worker, db) -> tuple[str, str]:
    """One run, two transfers: (the approval alice confirmed, the one bob rejected), both mirrored."""
    model = script({"turns": [{"tool_calls": [{"name": "transfer", "arguments": {"amount": 5000, "to_account": "savings"}},
                                              {"name": "transfer", "arguments": {"amount": 7, "to_account": "bob"}}]},
                              {"content": "{results}"}]})
    agent = make_agent(model, [transfer], db=db)
    async with running_worker():
        run = await agent.arun("two transfers")
        confirm, reject = run.active_requirements
        confirm.confirm(resolved_by="alice")
        reject.reject(reason="no", resolved_by="bob")
        await agent.acontinue_run(run.run_id, run.requirements)
        await settled(db, run.run_id, 2)
        for _ in range(100):
            if db.get_pending_approval_count() == 0:
                break
            await asyncio.sleep(0.05)
    return f"{run.run_id}/{confirm.id}", f"{run.run_id}/{reject.id}"


def verify(db: PostgresDb, *args: str, keys: str = KEYS) -> tuple[int, list[dict]]:
    """`hitl audit verify --json` against the real tables: (exit code, problems)."""
    result = CliRunner().invoke(app, ["audit", "verify", "--approvals-table", db.approvals_table, "--json", *args],
                                env={"HITL_AUDIT_KEYS": keys, "HITL_DECISION_KEYS": ""})
    assert result.exit_code in (0, 1) and result.stdout, (result.output, result.exception)
    return result.exit_code, json.loads(result.stdout)


def checkpoint(db: PostgresDb, *options: str, code: int = 0) -> dict:
    result = CliRunner().invoke(app, ["audit", "checkpoint", "--approvals-table", db.approvals_table, *options],
                                env={"HITL_AUDIT_KEYS": KEYS})
    assert result.exit_code == code, result.output
    return json.loads(result.stdout) if code == 0 else {"output": result.output}


def owner(db: PostgresDb, *statements: str, params: tuple = ()) -> None:
    """What the tables' owner can do: disable every trigger, run ``statements`` ({t}: the approvals table), enable them."""
    t = db.approvals_table
    tables = [t, f"{t}_events", f"{t}_checkpoints", f"{t}_checkpoint_heads"]
    with psycopg.connect(db.db_url, autocommit=True) as conn, conn.transaction():
        for table in tables:
            conn.execute(f"ALTER TABLE {table} DISABLE TRIGGER ALL")
        for statement in statements:
            conn.execute(statement.replace("{t}", t), params)
        for table in tables:
            conn.execute(f"ALTER TABLE {table} ENABLE TRIGGER ALL")


def reported(problems: list[dict], approval_id: str | None) -> dict[str, str]:
    """The problems of one approval: kind -> reasons."""
    found: dict[str, str] = {}
    for p in problems:
        if p["approval_id"] == approval_id:
            found[p["kind"]] = "; ".join(filter(None, [found.get(p["kind"]), p["reason"]]))
    return found


def recompute_plain_chain(db: PostgresDb, approval_id: str, start: int, *, keep_key_id: bool) -> None:
    """Recompute every hash from event ``start`` on with plain sha256, as someone without the key would."""
    with psycopg.connect(db.db_url, autocommit=True) as conn:
        rows = conn.execute(f"SELECT seq, kind, payload, at, prev_hash, hash, key_id FROM {db.approvals_table}_events"
                            " WHERE approval_id = %s ORDER BY seq", (approval_id,)).fetchall()
    prev = next((r[5] for r in rows if r[0] == start - 1), "")
    for seq, kind, payload, at, _, _, key_id in rows:
        if seq < start:
            continue
        digest = event_hash(prev, approval_id, seq, kind, payload, at)
        owner(db, "UPDATE {t}_events SET prev_hash = %s, hash = %s, key_id = %s WHERE approval_id = %s AND seq = %s",
              params=(prev, digest, key_id if keep_key_id else None, approval_id, seq))
        prev = digest


def reseal_without_key(db: PostgresDb, approval_id: str) -> None:
    """Seal the row again over its columns and head with plain sha256, as the mirror does without a key."""
    with psycopg.connect(db.db_url, row_factory=psycopg.rows.dict_row) as conn:
        row = conn.execute(f"SELECT * FROM {db.approvals_table} WHERE id = %s", (approval_id,)).fetchone()
        head = conn.execute(f"SELECT hash FROM {db.approvals_table}_events WHERE approval_id = %s AND seq = %s",
                            (approval_id, row["version"])).fetchone()["hash"]
    owner(db, "UPDATE {t} SET seal = %s, seal_key = NULL WHERE id = %s", params=(seal(row, head), approval_id))


async def test_an_untouched_trail_verifies_clean_and_the_key_is_kept_out_of_it(
        make_agent, script, running_worker, db, client):
    """The real CLI finds nothing on an untouched keyed trail, before and after a checkpoint; the key is nowhere
    in the trail or the run's history, and without it the verifier says what it could not check."""
    confirmed, _ = await decided(make_agent, script, running_worker, db)
    env = {"DATABASE_URL": db.db_url, "PATH": "/usr/bin:/bin", "HITL_AUDIT_KEYS": KEYS}
    cli = [sys.executable, "-m", "hitl.cli", "audit"]
    ok = subprocess.run([*cli, "verify", "--approvals-table", db.approvals_table], capture_output=True, text=True, env=env)
    assert ok.returncode == 0 and "the trail is intact" in ok.stdout and "4 events (4 keyed)" in ok.stdout, ok.stdout + ok.stderr
    made = subprocess.run([*cli, "checkpoint", "--approvals-table", db.approvals_table], capture_output=True, text=True,
                          env=env)
    assert made.returncode == 0, made.stderr
    statement = json.loads(made.stdout)
    assert statement["n"] == 1 and statement["statement"]["approvals"] == 2 and statement["key_id"] == "audit-1"
    assert verify(db) == (0, []) and checkpoint(db)["statement"]["changed"] == 0
    with psycopg.connect(db.db_url) as conn:
        for table in ("", "_events", "_checkpoints", "_checkpoint_heads"):
            dump = conn.execute(f"SELECT string_agg(t::text, '') FROM {db.approvals_table}{table} t").fetchone()[0]
            assert SECRET not in dump and SECRET[:20] not in dump
    history = await client.get_workflow_handle(confirmed.split("/")[0]).fetch_history()
    assert SECRET.encode() not in history.to_json().encode()
    code, problems = verify(db, keys="")
    assert code == 1 and [p["kind"] for p in problems] == ["key"] and "audit-1" in problems[0]["reason"]


@pytest.mark.parametrize("change, says", [
    ("UPDATE {t} SET status = 'rejected' WHERE id = %s", "status is 'rejected'"),
    ("UPDATE {t} SET resolved_by = 'mallory' WHERE id = %s", "resolved_by is 'mallory'"),
    ("UPDATE {t} SET context = jsonb_set(context, '{arguments,to_account}', '\"mallory\"') WHERE id = %s",
     "arguments_digest is not the digest"),
    ("UPDATE {t} SET context = jsonb_set(context, '{arguments,to_account}', '\"mallory\"'),"
     " arguments_digest = %s WHERE id = %s", None),
])
async def test_a_changed_row_is_found(make_agent, script, running_worker, db, change, says):
    """A row's status, decider or arguments changed behind the mirror breaks its seal; what the events
    determine is named too (a digest recomputed to match the new arguments still breaks the seal)."""
    confirmed, rejected = await decided(make_agent, script, running_worker, db)
    params = (confirmed,) if change.count("%s") == 1 else (digest({"amount": 5000, "to_account": "mallory"}), confirmed)
    owner(db, change, params=params)
    code, problems = verify(db)
    found = reported(problems, confirmed)
    assert code == 1 and "changed behind the mirror" in found["seal"], problems
    assert says is None or says in found["row"], problems
    assert reported(problems, rejected) == {}


@pytest.mark.parametrize("rewrite", ["keeps its key id", "drops its key id", "whole chain and seal without a key"])
async def test_a_rewritten_event_is_found_though_its_plain_chain_was_recomputed(
        make_agent, script, running_worker, db, rewrite):
    """An event rewritten (the decider made mallory, on the event and the row) and every hash after it
    recomputed with plain sha256 is found: a keyed hash cannot be recomputed without the key, and an
    unkeyed one is not taken where the trail is keyed."""
    confirmed, _ = await decided(make_agent, script, running_worker, db)
    start = 1 if rewrite.startswith("whole") else 2
    owner(db, "UPDATE {t}_events SET payload = jsonb_set(payload, '{resolved_by}', '\"mallory\"')"
              " WHERE approval_id = %s AND seq = 2", "UPDATE {t} SET resolved_by = 'mallory' WHERE id = %s",
          params=(confirmed,))
    recompute_plain_chain(db, confirmed, start, keep_key_id=rewrite == "keeps its key id")
    if start == 1:
        reseal_without_key(db, confirmed)
    code, problems = verify(db)
    found = reported(problems, confirmed)
    assert code == 1 and found, problems
    if rewrite == "keeps its key id":
        assert "hash does not match the event's content" in found["chain"]
    elif rewrite == "drops its key id":
        assert "not keyed, though an earlier event's is" in found["chain"] and "seal" in found
    else:
        assert "not keyed, and no keyed checkpoint covers them" in found["key"]
        # The next scheduled checkpoint does not vouch for the rewrite: it refuses, and the rewrite stays found.
        assert "does not verify" in checkpoint(db, code=1)["output"]
        assert verify(db)[0] == 1
    assert verify(db, "--allow-unkeyed")[0] == (0 if start == 1 else 1)  # what --allow-unkeyed gives up


@pytest.mark.parametrize("roll_back_row", [False, True])
async def test_an_approvals_last_event_deleted_is_found(make_agent, script, running_worker, db, roll_back_row):
    """Deleting the decision (the last event) is found, whether or not the row is moved back to pending to match."""
    confirmed, _ = await decided(make_agent, script, running_worker, db)
    statements = ["DELETE FROM {t}_events WHERE approval_id = %s AND seq = 2"]
    if roll_back_row:
        statements.append("UPDATE {t} SET status = 'pending', resolved_by = NULL, resolved_at = NULL,"
                          " resolution = NULL, version = 1 WHERE id = %s")
    for statement in statements:
        owner(db, statement, params=(confirmed,))
    code, problems = verify(db)
    found = reported(problems, confirmed)
    assert code == 1, problems
    if roll_back_row:
        assert "changed behind the mirror" in found["seal"]
    else:
        assert "history ends at event 1" in found["history"] and "status is 'approved'" in found["row"]


async def test_all_of_an_approvals_events_deleted_is_found(make_agent, script, running_worker, db):
    """A row left without any event is reported."""
    confirmed, rejected = await decided(make_agent, script, running_worker, db)
    owner(db, "DELETE FROM {t}_events WHERE approval_id = %s", params=(rejected,))
    code, problems = verify(db)
    assert code == 1 and "no event is left" in reported(problems, rejected)["history"], problems
    assert reported(problems, confirmed) == {}


async def test_an_approval_deleted_with_its_events_is_found_by_a_checkpoint(make_agent, script, running_worker, db):
    """Row and events deleted: a checkpoint that covered the approval names it; one written after the last
    checkpoint and deleted whole leaves no trace (the documented limit)."""
    confirmed, rejected = await decided(make_agent, script, running_worker, db)
    checkpoint(db)
    owner(db, "DELETE FROM {t}_events WHERE approval_id = %s", "DELETE FROM {t} WHERE id = %s", params=(confirmed,))
    code, problems = verify(db)
    assert code == 1 and "it is gone" in reported(problems, confirmed)["checkpoint"], problems
    assert reported(problems, rejected) == {}
    owner(db, "DELETE FROM {t}_checkpoint_heads WHERE approval_id = %s", params=(confirmed,))
    code, problems = verify(db)  # the checkpoint's record of it deleted as well
    assert code == 1 and "not the ones it stated" in reported(problems, None)["checkpoint"], problems


async def test_a_checkpoint_deleted_or_rolled_back_is_found(make_agent, script, running_worker, db, tmp_path):
    """A checkpoint from the middle deleted breaks the next one's link; the newest deleted is found against
    its statement kept elsewhere (--anchor)."""
    await decided(make_agent, script, running_worker, db)
    kept = tmp_path / "checkpoints.jsonl"
    kept.write_text("\n".join(json.dumps(checkpoint(db)) for _ in range(3)) + "\n")
    assert verify(db, "--anchor", str(kept)) == (0, [])
    owner(db, "DELETE FROM {t}_checkpoints WHERE n = 3")
    code, problems = verify(db, "--anchor", str(kept))
    assert code == 1 and "checkpoint 3, kept elsewhere, is gone" in reported(problems, None)["checkpoint"], problems
    owner(db, "DELETE FROM {t}_checkpoints WHERE n = 1")
    code, problems = verify(db)
    assert code == 1 and "does not follow the checkpoint before it" in reported(problems, None)["checkpoint"], problems


async def test_a_trail_from_before_the_key_is_covered_by_a_keyed_checkpoint(make_agent, script, running_worker, database_url):
    """Events and rows written without a key are reported once a key is given, until a keyed checkpoint covers
    them; a change after that is found."""
    plain = PostgresDb(database_url, approvals_table=f"approvals_{uuid.uuid4().hex[:8]}")  # no HITL_AUDIT_KEYS here
    plain.migrate()
    try:
        confirmed, _ = await decided(make_agent, script, running_worker, plain)
        assert verify(plain, keys="") == (0, [])
        code, problems = verify(plain)
        assert code == 1 and "no keyed checkpoint covers" in reported(problems, confirmed)["key"], problems
        assert "does not verify" in checkpoint(plain, code=1)["output"]  # a scheduled checkpoint adopts nothing
        checkpoint(plain, "--adopt-unkeyed")
        assert verify(plain) == (0, [])
        owner(plain, "UPDATE {t} SET context = jsonb_set(context, '{note}', '\"x\"') WHERE id = %s", params=(confirmed,))
        code, problems = verify(plain)
        assert code == 1 and "changed behind the mirror" in reported(problems, confirmed)["seal"], problems
        reseal_without_key(plain, confirmed)  # the unkeyed seal recomputed: the checkpoint still knows the row
        code, problems = verify(plain)
        assert code == 1 and "the row is not as it recorded" in reported(problems, confirmed)["checkpoint"], problems
    finally:
        await plain.aclose()
        plain.close()


def test_audit_keys_are_checked_and_never_quoted():
    """A malformed key is refused naming its position, never its text; the repr names key ids only."""
    for text in ("audit-1:c2hvcnQ=", "nocolon", f"bad id!:{SECRET}", f"a:{SECRET},a:{SECRET}"):
        with pytest.raises(ConfigurationError) as caught:
            AuditKeys.parse(text)
        assert "c2hvcnQ" not in str(caught.value) and SECRET not in str(caught.value)
    keys = AuditKeys.parse(f"new:{SECRET}, old:{base64.b64encode(b'o' * 32).decode()}")
    assert keys.current == "new" and SECRET not in repr(keys) and "new" in repr(keys)
