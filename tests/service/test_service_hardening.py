"""`hitl serve` against clients that trickle, and a log that never shows a secret, as real processes and sockets."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time

import httpx
import jwt
import pytest
from playwright.async_api import expect

from hitl.dev import stack
from tests.conftest import ROOT, RunningService


@pytest.fixture
def guarded(db, temporal_server):
    running = RunningService(db, header_timeout_seconds=1, body_timeout_seconds=1)
    yield running
    running.stop()


def closed_within(sock: socket.socket, seconds: float) -> bytes | None:
    """What the server sent before closing, or None if it kept the connection open that long."""
    sock.settimeout(seconds)
    got = b""
    try:
        while chunk := sock.recv(4096):
            got += chunk
    except TimeoutError:
        return None
    return got


async def test_clients_that_trickle_headers_or_a_body_are_answered_408_and_closed(guarded):
    """40 connections sending headers a byte at a time and one trickling its body: all closed within the
    limits; a client that sends its request whole is served meanwhile, and an open event stream stays open."""
    host, port = "127.0.0.1", guarded.port
    slow = []
    for _ in range(40):
        s = socket.create_connection((host, port))
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        slow.append(s)
    body = socket.create_connection((host, port))
    body.sendall(b"POST /runs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{")
    async with guarded.client(guarded.token("alice", "approvals:read")) as http, \
            http.stream("GET", "/approvals/events") as stream:
        assert stream.status_code == 200
        try:
            for _ in range(4):  # keep trickling: each byte would reset an idle timer, not these
                await asyncio.sleep(0.4)
                for s in [*slow, body]:
                    try:
                        s.sendall(b" " if s is body else b"X")
                    except OSError:  # closed by the server already: what this test wants
                        pass
                assert (await http.get("/healthz")).status_code == 200
            answers = [closed_within(s, 3) for s in [*slow, body]]
        finally:
            for s in [*slow, body]:
                s.close()
        assert all(a is not None for a in answers), "a trickling connection was still open"
        assert all(a.startswith(b"HTTP/1.1 408") and b"content-security-policy" in a for a in answers), answers[:2]
        assert b"body" in answers[-1] and b"headers" in answers[0]
        # the stream, whose request was whole long ago, is still open
        await asyncio.sleep(0.5)
        assert not stream.is_closed


def test_secrets_in_urls_never_reach_the_access_log(database_url, temporal_server, tmp_path):
    """Requests carrying an API token, a JWT, a link token and secret-named parameters in paths and queries:
    the access log of a real `hitl serve` shows the requests and none of the secrets."""
    from hitl.db.postgres import PostgresDb
    from hitl.security.tokens import TokenStore

    table = "approvals_logtest"
    db = PostgresDb(database_url, approvals_table=table)
    db.migrate()
    _, token = TokenStore(db).create("alice", ["approvals:read"])
    db.close()
    a_jwt = jwt.encode({"sub": "alice", "secretclaim": "x"}, "k" * 32, algorithm="HS256")
    link = "eyJsaW5rIjoxfQ.c2lnbmF0dXJlLWJ5dGVzLWhlcmU"
    secrets = [token.split("_", 2)[2], a_jwt, link, "s3cr3t-pa55", "sig-value-123", "apikey-value-9"]
    port = stack.free_port()
    log = tmp_path / "serve.log"
    with open(log, "wb") as out:
        server = subprocess.Popen([sys.executable, "-m", "hitl.cli", "serve", "--port", str(port), "--approvals-table", table],
                                  cwd=ROOT, env=os.environ.copy(), stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(f"{url}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        for path in (f"/approvals?token={token}", f"/approvals?access_token={a_jwt}", f"/links/{link}",
                     f"/approvals/{token}/x", "/approvals?x=1&password=s3cr3t-pa55", "/approvals?signature=sig-value-123",
                     "/approvals?api_key=apikey-value-9#frag", f"/approvals?q=Bearer%20{a_jwt}", f"/{a_jwt}"):
            httpx.get(url + path, headers={"Authorization": f"Bearer {token}"})
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    text = log.read_text()
    assert '"GET /approvals?token=[redacted]' in text and '"GET /links/[redacted]' in text, text[-2000:]
    leaked = [s for s in secrets if s in text]
    assert not leaked, (leaked, text[-3000:])


async def test_every_page_and_answer_carries_security_headers(service):
    """The inbox, /docs, link pages and JSON answers: a CSP with no inline script and no framing, and nosniff."""
    async with service.client(service.token("alice")) as http:
        for path in ("/inbox", "/docs", "/docs/static/docs.js", "/links/not-a-token", "/approvals", "/openapi.json",
                     "/healthz", "/nowhere"):
            r = await http.get(path)
            csp = r.headers.get("content-security-policy", "")
            assert "frame-ancestors 'none'" in csp and r.headers.get("x-content-type-options") == "nosniff", (path, r.headers)
            scripts = next((d for d in csp.split(";") if d.strip().startswith("script-src")), "")
            assert "unsafe-inline" not in scripts and "unsafe-eval" not in scripts, (path, csp)
        assert (await http.get("/docs/static/swagger-ui.css.map")).status_code == 404
        assert (await http.get("/redoc")).status_code == 404


async def test_the_api_reference_renders_from_this_service_alone(browser, service):  # noqa: F811
    """/docs in Chromium: Swagger UI lists the routes; every request the page makes goes to this service,
    and the page breaks none of its own Content-Security-Policy."""
    context = await browser.new_context()
    page = await context.new_page()
    hosts, problems = set(), []
    page.on("request", lambda request: hosts.add(request.url.split("/")[2]))
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    await page.goto(f"{service.url}/docs")
    await expect(page.get_by_text("Decide an approval").first).to_be_visible(timeout=20_000)
    await expect(page.get_by_text("Stream approval events").first).to_be_visible()
    assert hosts == {f"127.0.0.1:{service.port}"}, hosts
    assert not [p for p in problems if "Content Security Policy" in p or "Refused" in p], problems
    await context.close()


def test_records_of_child_loggers_and_tracebacks_are_redacted_too():
    """A secret logged by hitl.security.oidc or hitl.db (child loggers, whose records only the handlers see), or quoted in
    a traceback, reaches the output redacted."""
    import io
    import logging

    from hitl.service import redaction

    out = io.StringIO()
    handler = logging.StreamHandler(out)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        redaction.install()
        token = "hitl_0123456789ab_" + "s" * 40
        logging.getLogger("hitl.security.oidc").warning("refused %s", token)
        try:
            raise ValueError(f"bad header Bearer {token}")
        except ValueError:
            logging.getLogger("hitl.db.postgres").exception("failed")
    finally:
        root.removeHandler(handler)
    text = out.getvalue()
    assert "s" * 40 not in text and "hitl_0123456789ab_[redacted]" in text and "Traceback" in text, text
