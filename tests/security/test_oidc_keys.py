"""OIDC key sets from a URL: fetched without blocking the service, at most once per cooldown, https only."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from hitl.errors import ConfigurationError
from hitl.security.oidc import OidcSettings
from tests.conftest import ROOT, RunningService

ISSUER = "https://idp.example"


class KeyServer:
    """A JWKS on 127.0.0.1 that counts the fetches it answers; it can be told to fail or to hang."""

    def __init__(self, keys: dict[str, Ed25519PrivateKey]) -> None:
        self.keys = dict(keys)
        self.fetches = 0
        self.status = 200
        self.hang = threading.Event()  # set: each fetch waits until `release` is set
        self.release = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.fetches += 1
                if server.hang.is_set():
                    server.release.wait(30)
                body = json.dumps({"keys": [{**json.loads(jwt.algorithms.OKPAlgorithm.to_jwk(k.public_key())), "kid": kid}
                                            for kid, k in server.keys.items()]}).encode()
                self.send_response(server.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._http.daemon_threads = True
        threading.Thread(target=self._http.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self._http.server_address[1]}/jwks"

    def close(self) -> None:
        self.release.set()
        self._http.shutdown()
        self._http.server_close()


IDP = Ed25519PrivateKey.generate()


@pytest.fixture
def keys() -> Iterator[KeyServer]:
    server = KeyServer({"k1": IDP})
    yield server
    server.close()


def oidc_service(db: Any, keys: KeyServer, **settings: Any) -> RunningService:
    return RunningService(db, oidc=OidcSettings(jwks=keys.url, issuer=ISSUER, audience="hitl", **settings))


def token(kid: str = "k1", key: Ed25519PrivateKey = IDP, **claims: Any) -> str:
    base = {"iss": ISSUER, "aud": "hitl", "sub": "svc-ci", "scope": "approvals:read", "exp": time.time() + 300}
    return jwt.encode({**base, **claims}, key, algorithm="EdDSA", headers={"kid": kid})


async def get(service: RunningService, bearer: str) -> Any:
    async with service.client(bearer) as http:
        return await http.get("/approvals")


async def test_random_unknown_kids_fetch_the_key_set_at_most_once_per_cooldown(db, temporal_server, keys):
    """Requests with random key ids, all at once and again and again: one fetch, shared, per cooldown (6 s here, so
    that 61 requests fit in it on a loaded machine)."""
    service = oidc_service(db, keys, refetch_cooldown_seconds=6)
    stranger = Ed25519PrivateKey.generate()
    try:
        answers = await asyncio.gather(get(service, token()),
                                       *(get(service, token(uuid.uuid4().hex, stranger)) for _ in range(40)))
        assert answers[0].status_code == 200, answers[0].text
        assert all(r.status_code == 401 and "no key" in r.json()["detail"] for r in answers[1:])
        assert keys.fetches == 1  # the first request's fetch, shared by all the others
        for _ in range(20):  # within the cooldown: no fetch at all
            assert (await get(service, token(uuid.uuid4().hex, stranger))).status_code == 401
        assert keys.fetches == 1
        await asyncio.sleep(6.2)
        answers = await asyncio.gather(*(get(service, token(uuid.uuid4().hex, stranger)) for _ in range(40)))
        assert {r.status_code for r in answers} == {401} and keys.fetches == 2
        assert (await get(service, token())).status_code == 200 and keys.fetches == 2
    finally:
        service.stop()


async def test_a_key_added_to_the_set_is_found_by_a_refetch(db, temporal_server, keys):
    """The identity provider rotates: a token signed by its new key is taken once the set is fetched again."""
    service = oidc_service(db, keys, refetch_cooldown_seconds=1)
    try:
        assert (await get(service, token())).status_code == 200
        rotated = Ed25519PrivateKey.generate()
        keys.keys["k2"] = rotated
        await asyncio.sleep(1.1)
        r = await get(service, token("k2", rotated))
        assert r.status_code == 200 and keys.fetches == 2, r.text
    finally:
        service.stop()


async def test_a_failing_refetch_leaves_the_cached_keys_serving(db, temporal_server, keys, monkeypatch):
    """The key server starts answering 500: known keys still verify (stale or not), an unknown one hears why."""
    import hitl.security.oidc

    service = oidc_service(db, keys, refetch_cooldown_seconds=1)
    try:
        assert (await get(service, token())).status_code == 200
        keys.status = 500
        monkeypatch.setattr(hitl.security.oidc, "KEYS_LIFESPAN_SECONDS", 0.0)  # every use now asks for a refresh
        await asyncio.sleep(1.1)
        assert (await get(service, token())).status_code == 200  # starts a background refresh, answered from cache
        for _ in range(50):
            if keys.fetches == 2:
                break
            await asyncio.sleep(0.05)
        assert keys.fetches == 2
        assert (await get(service, token())).status_code == 200  # the refresh failed; the key still serves
        await asyncio.sleep(1.1)
        r = await get(service, token("k9"))
        assert r.status_code == 401 and "HTTP 500" in r.json()["detail"], r.text
        assert (await get(service, token())).status_code == 200
    finally:
        service.stop()


async def test_a_hanging_key_server_blocks_no_other_request(db, temporal_server, keys):
    """While a key set fetch hangs, an API token's request answers at once; the OIDC ones give up after the timeout."""
    keys.hang.set()
    service = oidc_service(db, keys, fetch_timeout_seconds=2)
    try:
        started = time.monotonic()
        waiting = [asyncio.create_task(get(service, token())) for _ in range(3)]
        for _ in range(100):
            if keys.fetches:
                break
            await asyncio.sleep(0.02)
        r = await get(service, service.token("alice", "approvals:read"))
        assert r.status_code == 200 and time.monotonic() - started < 1.5, r.text
        answers = await asyncio.gather(*waiting)
        assert time.monotonic() - started < 5
        assert all(a.status_code == 401 and "no answer within 2 s" in a.json()["detail"] for a in answers), answers[0].text
        assert keys.fetches == 1  # the three shared one fetch
    finally:
        service.stop()


@pytest.mark.parametrize("url", ["http://idp.example/jwks", "http://10.0.0.7:8080/jwks", "ftp://idp.example/jwks",
                                 "http://127.0.0.1@idp.example/jwks", "https://"])
def test_a_key_set_url_must_be_https(url):
    """Plain http (but to this machine), another scheme, or no host: refused, naming HITL_OIDC_JWKS."""
    with pytest.raises(ConfigurationError, match="HITL_OIDC_JWKS .*https://"):
        OidcSettings(jwks=url, issuer=ISSUER, audience="hitl")
    with pytest.raises(ConfigurationError, match="HITL_OIDC_JWKS"):
        OidcSettings.from_env({"HITL_OIDC_JWKS": url, "HITL_OIDC_ISSUER": ISSUER, "HITL_OIDC_AUDIENCE": "hitl"})


@pytest.mark.parametrize("source", ["https://idp.example/.well-known/jwks.json", "http://127.0.0.1:9/jwks",
                                    "http://localhost/jwks", "http://[::1]:8080/jwks", "/etc/hitl/idp.jwks"])
def test_https_loopback_http_and_files_are_accepted(source):
    assert OidcSettings(jwks=source, issuer=ISSUER, audience="hitl").jwks == source


def test_hitl_serve_refuses_an_http_key_set_at_start():
    """`hitl serve` with HITL_OIDC_JWKS=http://... exits at once, saying why."""
    env = {**os.environ, "HITL_OIDC_JWKS": "http://idp.example/jwks", "HITL_OIDC_ISSUER": ISSUER,
           "HITL_OIDC_AUDIENCE": "hitl", "DATABASE_URL": "postgresql://nobody@127.0.0.1:9/none"}
    out = subprocess.run([sys.executable, "-m", "hitl.cli", "serve", "--port", "0"], capture_output=True, text=True,
                         timeout=60, env=env, cwd=ROOT)
    assert out.returncode == 1 and "HITL_OIDC_JWKS" in out.stderr and "https://" in out.stderr, out.stdout + out.stderr
