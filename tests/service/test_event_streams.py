"""Open event streams answer to their credential: revoked or expired, the stream ends; a few per principal."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from hitl.security.oidc import OidcSettings
from hitl.service import events
from tests.conftest import RunningService

RECHECK = 0.5


@pytest.fixture(autouse=True)
def quick_recheck(monkeypatch):
    """The service checks an open stream's credential every RECHECK seconds here (5 s as shipped)."""
    monkeypatch.setattr(events, "RECHECK_SECONDS", RECHECK)


async def read_until_closed(response, timeout: float) -> list[tuple[str, str]]:
    """(event, data) of every event until the service closes the stream; fails if it stays open."""
    seen: list[tuple[str, str]] = []
    kind = "message"

    async def read() -> None:
        nonlocal kind
        async for line in response.aiter_lines():
            if line.startswith("event:"):
                kind = line.partition(":")[2].strip()
            elif line.startswith("data:"):
                seen.append((kind, line.partition(":")[2].strip()))
                kind = "message"

    await asyncio.wait_for(read(), timeout)
    return seen


async def test_revoking_a_token_ends_the_stream_it_has_open(service):
    """The stream sends signed-out within seconds of the revocation and closes; a new one gets 401."""
    token = service.token("alice")
    token_id = token.split("_")[1]
    async with service.client(token) as alice, alice.stream("GET", "/approvals/events") as response:
        assert response.status_code == 200
        await asyncio.sleep(RECHECK * 2)  # still open while the token holds
        revoked_at = time.monotonic()
        service.tokens.revoke(token_id)
        seen = await read_until_closed(response, timeout=RECHECK * 6)
        assert time.monotonic() - revoked_at < RECHECK * 6
        assert seen and seen[-1][0] == "signed-out" and "revoked" in seen[-1][1], seen
    async with service.client(token) as alice:
        assert (await alice.get("/approvals/events")).status_code == 401


async def test_an_oidc_tokens_stream_ends_when_the_token_expires(db, temporal_server, tmp_path):
    """A JWT good for two more seconds (no leeway): its stream ends once it has expired."""
    idp = Ed25519PrivateKey.generate()
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [{**json.loads(jwt.algorithms.OKPAlgorithm.to_jwk(idp.public_key())), "kid": "k1"}]}))
    service = RunningService(db, oidc=OidcSettings(jwks=str(jwks), issuer="https://idp", audience="hitl", leeway_seconds=0))
    expires = datetime.now(UTC) + timedelta(seconds=2)
    token = jwt.encode({"iss": "https://idp", "aud": "hitl", "sub": "erin", "scope": "approvals:read", "exp": expires},
                       idp, algorithm="EdDSA", headers={"kid": "k1"})
    try:
        async with service.client(token) as erin, erin.stream("GET", "/approvals/events") as response:
            assert response.status_code == 200
            seen = await read_until_closed(response, timeout=8)
            assert datetime.now(UTC).timestamp() >= int(expires.timestamp())  # exp is whole seconds
            assert seen and seen[-1][0] == "signed-out" and "expired" in seen[-1][1].lower(), seen
    finally:
        service.stop()


async def test_a_principal_holds_a_few_streams_at_most(db, temporal_server):
    """Past max_streams_per_principal, another stream gets 429; closing one frees its place; others are not affected."""
    service = RunningService(db, max_streams_per_principal=2)
    try:
        alice, bob = service.token("alice"), service.token("bob")
        async with service.client(alice) as a1, service.client(alice) as a2, service.client(alice) as a3, \
                service.client(bob) as b1:
            async with a1.stream("GET", "/approvals/events") as one, a2.stream("GET", "/approvals/events") as two:
                assert one.status_code == two.status_code == 200
                r = await a3.get("/approvals/events")
                assert r.status_code == 429 and "alice" in r.text and r.headers.get("retry-after"), r.text
                async with b1.stream("GET", "/approvals/events") as bobs:
                    assert bobs.status_code == 200
            for _ in range(100):  # the service notices the closed streams
                async with a3.stream("GET", "/approvals/events") as again:
                    if again.status_code == 200:
                        break
                await asyncio.sleep(0.05)
            else:
                raise AssertionError("a closed stream's place was never freed")
    finally:
        service.stop()
