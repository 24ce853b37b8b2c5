"""Encrypted payloads on the real dev server: history holds ciphertext, the codec server decrypts for the entitled only."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import logging
import os
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RPCError

from hitl import tool
from hitl._core import client as _client
from hitl.dev import stack
from hitl.errors import ConfigurationError
from hitl.security import codec
from hitl.settings import Settings
from hitl.worker import create_worker
from tests.conftest import RunningService

SECRET = "acct-7f3a9-CONFIDENTIAL"  # an argument value that must never be readable in history
USER = "alice.secret@example.com"
ENCRYPTED_B64 = base64.b64encode(codec.ENCODING).decode()


def new_key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


OLD = f"k1:{new_key()}"
NEW = f"k2:{new_key()}"


@pytest.fixture(autouse=True)
def keys() -> Iterator[None]:
    """Encryption on for the test (key k1), before any client is made; the environment's ring after."""
    codec.configure(OLD)
    yield
    codec.configure()


@tool(requires_confirmation=True)
def close_account(account: str) -> str:
    """Close an account."""
    return f"closed {account}"


@tool(requires_confirmation=True, max_attempts=1)
def leaky(account: str) -> str:
    """A tool whose error message carries what it was given."""
    raise RuntimeError(f"backend refused {account}")


def closing_script(script: Any) -> str:
    return script({"turns": [{"tool_calls": [{"name": "close_account", "arguments": {"account": SECRET}}]},
                             {"content": "{results}"}]})


async def plain_history_bytes(address: str, run_id: str) -> tuple[bytes, Any]:
    """The run's history as a client without the codec gets it: raw event bytes, and the events."""
    plain = await Client.connect(address)
    history = await plain.get_workflow_handle(run_id).fetch_history()
    return b"".join(e.SerializeToString() for e in history.events), history


async def paused_run(make_agent: Any, script: Any) -> tuple[Any, Any]:
    agent = make_agent(closing_script(script), [close_account])
    return agent, await agent.arun(f"close {SECRET}", user_id=USER)


async def finish(agent: Any, paused: Any) -> Any:
    for r in paused.active_requirements:
        r.confirm()
    return await agent.acontinue_run(paused)


async def test_history_holds_only_ciphertext(make_agent, script, running_worker, temporal_server):
    """A run completes with encryption on, and its raw history has no argument value, only binary/encrypted payloads."""
    async with running_worker():
        agent, paused = await paused_run(make_agent, script)
        done = await finish(agent, paused)
    assert done.status.value == "completed" and SECRET in (done.content or "")
    raw, history = await plain_history_bytes(temporal_server["address"], done.run_id)
    assert SECRET.encode() not in raw and USER.encode() not in raw
    started = history.events[0].workflow_execution_started_event_attributes.input.payloads
    assert started and all(p.metadata["encoding"] == codec.ENCODING for p in started)
    assert all(p.metadata[codec.KEY_ID_METADATA] == b"k1" for p in started)


async def test_temporal_cli_cannot_read_arguments(make_agent, script, running_worker, temporal_server):
    """`temporal workflow show` prints the run's payloads as ciphertext: no argument value."""
    async with running_worker():
        agent, paused = await paused_run(make_agent, script)
        await finish(agent, paused)
    shown = await asyncio.to_thread(subprocess.run, [
        stack.binary("temporal"), "workflow", "show", "--workflow-id", paused.run_id,
        "--address", temporal_server["address"], "--output", "json"], capture_output=True, text=True, timeout=30, check=True)
    assert ENCRYPTED_B64 in shown.stdout
    assert SECRET not in shown.stdout and USER not in shown.stdout


async def test_failure_messages_are_encrypted(make_agent, script, running_worker, temporal_server):
    """A tool's error text (which names its argument) is not in the raw history; its failure reads "Encoded failure"."""
    model = script({"turns": [{"tool_calls": [{"name": "leaky", "arguments": {"account": SECRET}}]},
                              {"content": "{results}"}]})
    agent = make_agent(model, [leaky])
    async with running_worker():
        paused = await agent.arun("close it")
        done = await finish(agent, paused)
    assert "backend refused" in (done.content or "")  # the model was told, through an encrypted payload
    raw, history = await plain_history_bytes(temporal_server["address"], done.run_id)
    assert b"backend refused" not in raw and SECRET.encode() not in raw
    failures = [e.activity_task_failed_event_attributes.failure for e in history.events
                if e.HasField("activity_task_failed_event_attributes")]
    assert failures and all(f.message == "Encoded failure" and f.HasField("encoded_attributes") for f in failures)


async def test_old_key_still_decrypts_after_rotation(make_agent, script, running_worker, client, task_queue, temporal_server):
    """A run paused under k1 completes on a worker whose ring is (k2, k1); what it writes then is under k2."""
    async with running_worker():
        agent, paused = await paused_run(make_agent, script)
    codec.configure(f"{NEW},{OLD}")
    rotated = await _client.connect(Settings.from_env(temporal_address=temporal_server["address"]))
    assert rotated is not client  # a client of the old ring is not reused
    async with create_worker(rotated, task_queue):
        done = await finish(agent, paused)
    assert done.status.value == "completed" and SECRET in (done.content or "")
    _, history = await plain_history_bytes(temporal_server["address"], done.run_id)
    kids = {p.metadata[codec.KEY_ID_METADATA] for e in history.events
            if e.HasField("workflow_execution_completed_event_attributes")
            for p in e.workflow_execution_completed_event_attributes.result.payloads}
    assert kids == {b"k2"}


async def test_an_undecryptable_payload_decodes_to_a_marker_and_fails_as_a_value_naming_its_key():
    """The codec turns a payload of an unknown key, or one altered, into a marker naming the key id (no exception,
    no key); converted to a value it raises UndecryptablePayloadError naming the key id; decode_strict raises."""
    gone = new_key()
    sealed = await codec.EncryptionCodec(codec.KeyRing.parse(f"gone-7:{gone}")).encode(
        [Payload(metadata={"encoding": b"json/plain"}, data=b'"x"')])
    [good] = await codec.EncryptionCodec(codec.KeyRing.parse(OLD)).encode([Payload(metadata={"encoding": b"json/plain"},
                                                                                   data=b'"y"')])
    altered = Payload()
    altered.CopyFrom(good)
    altered.data = good.data[:-1] + bytes([good.data[-1] ^ 1])
    ring = codec.KeyRing.parse(f"{NEW},{OLD}")
    unknown, tampered, fine = await codec.EncryptionCodec(ring).decode([*sealed, altered, good])
    assert unknown.metadata["encoding"] == codec.UNDECRYPTABLE and unknown.metadata[codec.KEY_ID_METADATA] == b"gone-7"
    assert b"'gone-7'" in unknown.data and b"not in the key ring" in unknown.data and gone.encode() not in unknown.data
    assert tampered.metadata["encoding"] == codec.UNDECRYPTABLE and b"does not authenticate" in tampered.data
    assert fine.metadata["encoding"] == b"json/plain" and fine.data == b'"y"'
    codec.configure(ring)
    with pytest.raises(codec.UndecryptablePayloadError, match="'gone-7'"):
        await codec.data_converter().decode(sealed, [str])
    assert await codec.data_converter().decode([good], [str]) == ["y"]
    with pytest.raises(ConfigurationError, match="'gone-7'"):
        codec.EncryptionCodec(ring).decode_strict(sealed)


def intruder_converter() -> Any:
    """A data converter encrypting under a key no worker has."""
    return dataclasses.replace(pydantic_data_converter,
                               payload_codec=codec.EncryptionCodec(codec.KeyRing.parse(f"intruder-9:{new_key()}")))


def task_failures(history: Any) -> list[Any]:
    return [e for e in history.events if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED]


async def test_a_signal_of_an_unknown_key_is_refused_and_the_run_goes_on(make_agent, script, running_worker, temporal_server,
                                                                          caplog):
    """A `confirm` signal encrypted under a key the worker lacks is refused (logged, applied to nothing); no workflow
    task fails; the valid decision after it completes the run."""
    intruder = await Client.connect(temporal_server["address"], data_converter=intruder_converter())
    async with running_worker():
        agent, paused = await paused_run(make_agent, script)
        rid = paused.active_requirements[0].id
        with caplog.at_level(logging.WARNING, logger="temporalio.workflow"):
            await intruder.get_workflow_handle(paused.run_id).signal("confirm", {"requirement_id": rid, "resolved_by": "mallory"})
            done = await asyncio.wait_for(finish(agent, paused), 60)
    assert done.status.value == "completed" and SECRET in (done.content or "")
    assert done.requirements[0].resolved_by != "mallory"
    refused = [r.getMessage() for r in caplog.records if "decision refused (signal)" in r.getMessage()]
    assert len(refused) == 1 and "binary/undecryptable" in refused[0], refused
    _, history = await plain_history_bytes(temporal_server["address"], done.run_id)
    signals = [e.workflow_execution_signaled_event_attributes for e in history.events
               if e.HasField("workflow_execution_signaled_event_attributes")]
    assert [s.input.payloads[0].metadata[codec.KEY_ID_METADATA] for s in signals] == [b"intruder-9"]
    assert task_failures(history) == []


async def test_search_attributes_carry_no_arguments_or_user_ids(make_agent, script, running_worker, client):
    """A paused encrypted run's search attributes are its status, pending tool names, agent and deadline only."""
    async with running_worker():
        agent, paused = await paused_run(make_agent, script)
        description = await client.get_workflow_handle(paused.run_id).describe()
        await finish(agent, paused)
    values = {pair.key.name: pair.value for pair in description.typed_search_attributes}
    hitl_values = {k: v for k, v in values.items() if k.startswith("Hitl")}
    assert hitl_values == {"HitlStatus": "paused", "HitlPendingTools": ["close_account"], "HitlAgent": agent.name}
    assert SECRET not in repr(values) and USER not in repr(values)


def decode_body(*payloads: Any) -> dict[str, Any]:
    return {"payloads": [json_format.MessageToDict(p) for p in payloads]}


@pytest.fixture
def codec_service(db: Any, temporal_server: dict[str, Any]) -> Iterator[RunningService]:
    """The decision service with the codec server's CORS open to the UI's origin only."""
    running = RunningService(db, codec_cors_origin="http://localhost:8233")
    yield running
    running.stop()


async def test_codec_endpoint_decrypts_for_a_caller_with_the_scope(make_agent, script, running_worker, codec_service):
    """POST /codec/decode with a payloads:decode token returns the run's input in clear."""
    async with running_worker():
        agent, paused = await paused_run(make_agent, script)
        await finish(agent, paused)
    _, history = await plain_history_bytes(os.environ["TEMPORAL_ADDRESS"], paused.run_id)
    sealed = history.events[0].workflow_execution_started_event_attributes.input.payloads[0]
    async with codec_service.client(codec_service.token("ui-viewer", "payloads:decode")) as http:
        answer = await http.post("/codec/decode", json=decode_body(sealed), headers={"X-Namespace": "default"})
    assert answer.status_code == 200, answer.text
    [clear] = answer.json()["payloads"]
    assert base64.b64decode(clear["metadata"]["encoding"]) == b"json/plain"
    assert SECRET in base64.b64decode(clear["data"]).decode()


async def test_the_temporal_cli_reads_arguments_through_the_codec_endpoint_with_a_token(
        make_agent, script, running_worker, codec_service, temporal_server):
    """`temporal workflow show --codec-endpoint .../codec --codec-auth "Bearer <token>"` shows the arguments; no token, no."""
    async with running_worker():
        agent, paused = await paused_run(make_agent, script)
        await finish(agent, paused)
    token = codec_service.token("ui-viewer", "payloads:decode")
    show = [stack.binary("temporal"), "workflow", "show", "--workflow-id", paused.run_id, "--address",
            temporal_server["address"], "--output", "json", "--codec-endpoint", f"{codec_service.url}/codec"]
    shown = await asyncio.to_thread(subprocess.run, [*show, "--codec-auth", f"Bearer {token}"], capture_output=True,
                                    text=True, timeout=60)
    assert shown.returncode == 0, shown.stderr

    def run_input(output: str) -> bytes:
        started = json.loads(output)["events"][0]["workflowExecutionStartedEventAttributes"]
        return base64.b64decode(started["input"]["payloads"][0]["data"])

    assert SECRET.encode() in run_input(shown.stdout)
    refused = await asyncio.to_thread(subprocess.run, show, capture_output=True, text=True, timeout=60)
    assert refused.returncode != 0 and SECRET not in refused.stdout  # the codec server answered 401: nothing decoded


async def test_codec_endpoint_is_no_open_oracle(codec_service):
    """Without credentials /codec/decode answers 401; with a token lacking payloads:decode, 403."""
    [sealed] = await codec.EncryptionCodec(codec.key_ring()).encode([Payload(metadata={"encoding": b"json/plain"},
                                                                             data=SECRET.encode())])
    async with codec_service.client() as anonymous:
        assert (await anonymous.post("/codec/decode", json=decode_body(sealed))).status_code == 401
    async with codec_service.client(codec_service.token("approver", "approvals:read", "approvals:decide")) as http:
        refused = await http.post("/codec/decode", json=decode_body(sealed))
    assert refused.status_code == 403 and SECRET not in refused.text


async def test_codec_endpoint_names_an_unknown_key(codec_service):
    """/codec/decode of a payload under a key the service lacks answers 422 naming the key id."""
    [sealed] = await codec.EncryptionCodec(codec.KeyRing.parse(f"retired-3:{new_key()}")).encode(
        [Payload(metadata={"encoding": b"json/plain"}, data=b'"x"')])
    async with codec_service.client(codec_service.token("ui-viewer", "payloads:decode")) as http:
        answer = await http.post("/codec/decode", json=decode_body(sealed))
    assert answer.status_code == 422 and "retired-3" in answer.json()["detail"]


async def test_codec_cors_answers_only_the_ui_origin(codec_service):
    """A preflight from the configured UI origin is allowed; another origin, or another route, gets no CORS grant."""
    preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization,x-namespace"}
    async with codec_service.client() as http:
        ui = await http.options("/codec/decode", headers={"Origin": "http://localhost:8233", **preflight})
        other = await http.options("/codec/decode", headers={"Origin": "http://evil.example", **preflight})
        elsewhere = await http.options("/approvals", headers={"Origin": "http://localhost:8233", **preflight})
    assert ui.status_code == 200 and ui.headers["access-control-allow-origin"] == "http://localhost:8233"
    assert "authorization" in ui.headers["access-control-allow-headers"].lower()
    assert other.status_code == 400 and "access-control-allow-origin" not in other.headers
    assert "access-control-allow-origin" not in elsewhere.headers


def test_without_keys_the_converter_is_exactly_pydantic():
    """No key ring: every client gets pydantic_data_converter itself (the replay tests' converter)."""
    codec.configure(None)
    assert codec.data_converter() is pydantic_data_converter


def test_bad_keys_are_refused_without_showing_them():
    """A short key, a key that is not base64, a repeated id: refused naming position and id, never a key's bytes.
    The ring's repr has no key."""
    short = base64.b64encode(b"s" * 16).decode()
    with pytest.raises(ConfigurationError, match=r"item 2 of HITL_ENCRYPTION_KEYS \('short'\): the key is 16 bytes") as exc:
        codec.KeyRing.parse(f"{OLD},short:{short}")
    assert short not in str(exc.value)
    with pytest.raises(ConfigurationError, match=r"item 1 of HITL_ENCRYPTION_KEYS \('bad'\): the key is not base64"):
        codec.KeyRing.parse("bad:%%%notbase64")
    with pytest.raises(ConfigurationError, match=r"item 2 of HITL_ENCRYPTION_KEYS \('k1'\): the id is listed twice"):
        codec.KeyRing.parse(f"{OLD},{OLD}")
    ring = codec.KeyRing.parse(NEW)
    assert NEW.split(":")[1] not in repr(ring) and "k2" in repr(ring)


@pytest.mark.parametrize("swapped", [
    lambda key: f"{key}:k3",  # the usual key, padded with "=": an id that is not well formed
    lambda key: f"{key.rstrip('=')}:k3",  # unpadded: the id pattern fits, "k3" is not base64
    lambda key: f"{key.rstrip('=')}:key3",  # unpadded, and "key3" is base64 (3 bytes)
    lambda key: f"{key.rstrip('=')}:{new_key()}",  # the id is a key (unpadded, it fits the pattern), the key a key
])
def test_a_swapped_item_is_refused_by_position_without_any_part_of_its_key(swapped):
    """BASE64KEY:kid (the order swapped) is refused as item N, quoting no part of the key, from the
    environment or from a file."""
    key = new_key()
    while "+" in key or "/" in key:  # keys that fit the id pattern once unpadded too
        key = new_key()
    for ring_of in (lambda text: codec.KeyRing.parse(text),
                    lambda text: codec.KeyRing.from_env({"HITL_ENCRYPTION_KEYS": text})):
        with pytest.raises(ConfigurationError, match="item 2 of HITL_ENCRYPTION_KEYS") as exc:
            ring_of(f"{OLD},{swapped(key)}")
        message = str(exc.value)
        assert all(key[i:i + 8] not in message for i in range(len(key) - 7)), message


def test_keys_are_read_from_a_file(tmp_path):
    """HITL_ENCRYPTION_KEYS_FILE lists the ring, one key a line, the first encrypting."""
    path = tmp_path / "keys"
    path.write_text(f"{NEW}\n{OLD}\n")
    ring = codec.KeyRing.from_env({"HITL_ENCRYPTION_KEYS_FILE": str(path)})
    assert ring is not None and ring.key_ids == ("k2", "k1") and ring.current == "k2"


async def test_a_run_whose_input_this_worker_cannot_decrypt_waits_for_the_key(
        make_agent, script, running_worker, task_queue, temporal_server):
    """Started under k2 while the worker holds only k1: its task fails and is retried (the run is not failed); a
    worker given k2 then runs it to its pause."""
    agent = make_agent(closing_script(script), [close_account])
    async with running_worker():  # its client and worker hold k1 only
        codec.configure(NEW)  # the starter has a newer ring than the worker
        starter = await _client.connect(Settings.from_env(temporal_address=temporal_server["address"]))
        assert starter is not None
        run_id = f"run-{os.urandom(6).hex()}"
        starting = asyncio.ensure_future(agent.arun("close it", run_id=run_id))  # answers at a pause that cannot come yet
        history = None
        for _ in range(200):
            await asyncio.sleep(0.05)
            try:
                _, history = await plain_history_bytes(temporal_server["address"], run_id)
            except RPCError:  # not started yet
                continue
            if any(e.HasField("workflow_task_failed_event_attributes") for e in history.events):
                break
        assert history is not None
        assert any(e.HasField("workflow_task_failed_event_attributes") for e in history.events)
        assert (await starter.get_workflow_handle(run_id).describe()).status.name == "RUNNING"
        waiting = await asyncio.wait_for(starting, 60)  # the start answers: the run waits, its task failing
        assert waiting.status.value == "running" and "task failed" in (waiting.waiting_for_worker or ""), waiting
    codec.configure(f"{NEW},{OLD}")
    rotated = await _client.connect(Settings.from_env(temporal_address=temporal_server["address"]))
    async with create_worker(rotated, task_queue):
        for _ in range(300):
            run = await agent.aget_run(run_id)
            if run.is_paused:
                break
            await asyncio.sleep(0.05)
        assert run.is_paused, run
