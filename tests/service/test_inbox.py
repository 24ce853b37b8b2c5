"""The inbox in a real browser: Debian's chromium driven by Playwright, against the real service, worker and database."""

from __future__ import annotations

import asyncio
import os
import shutil
from datetime import timedelta
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, expect

from hitl import tool
from hitl.approval import approval
from tests.conftest import ROOT, RunningService
from tests.store.test_audit import settled, sql

UI = "http://127.0.0.1:8233"
WAIT = 20_000  # ms: a run's pause or resume crosses Temporal's transfer queue a few times
RAN: list[dict] = []


@approval(approvers=["alice", "bob"], timeout=timedelta(hours=4))
@tool(requires_confirmation=True)
def pay(amount: int, to: str) -> str:
    """Pay someone.

    Args:
        amount: How much, in euros.
        to: Who.
    """
    RAN.append({"amount": amount, "to": to})
    return f"paid {amount} to {to}"


@tool(requires_user_input=True, user_input_fields=["time", "seats"])
def book(date: str, time: str, seats: int) -> str:
    """Book a table."""
    return f"booked {date} {time} for {seats}"


@tool(external_execution=True)
def deploy(service: str) -> str:
    """Deploy a service (done by the CI pipeline)."""
    raise AssertionError("runs elsewhere")


def calls(script, *turn: tuple[str, dict]):
    """A model that makes these calls in one turn, then answers with the results."""
    return script({"turns": [{"tool_calls": [{"name": n, "arguments": a} for n, a in turn]}, {"content": "done: {results}"}]})



@pytest.fixture
def inbox(db, temporal_server):
    running = RunningService(db, temporal_ui_url=UI)
    yield running
    running.stop()


async def signed_in(browser: Browser, service: RunningService, name: str, *scopes: str, phone: bool = False) -> Page:
    """A fresh browser (its own storage) signed in to the inbox as ``name``."""
    context = await browser.new_context(viewport={"width": 390, "height": 844} if phone else {"width": 1200, "height": 900})
    page = await context.new_page()
    await page.goto(f"{service.url}/inbox")
    await page.get_by_label("API token or OIDC access token").fill(service.token(name, *scopes))
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.locator("#me")).to_have_text(name)
    await expect(page.locator("#live")).to_have_text("● live", timeout=WAIT)
    return page


def card(page: Page, approval_id: str):
    return page.locator(f'article[data-id="{approval_id}"]')


async def shot(page: Page, name: str, tmp_path: Path) -> None:
    """A screenshot; with HITL_SCREENSHOTS=1 also into docs/ for the README."""
    path = tmp_path / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    if os.environ.get("HITL_SCREENSHOTS"):
        (ROOT / "docs").mkdir(exist_ok=True)
        shutil.copy(path, ROOT / "docs" / f"{name}.png")


async def test_signing_in_with_a_bad_token_is_refused_with_a_message(browser, inbox):
    """A token that proves nothing gets the sign-in form again, saying why."""
    page = await (await browser.new_context()).new_page()
    await page.goto(f"{inbox.url}/inbox")
    await page.get_by_label("API token or OIDC access token").fill("hitl_nope_nope")
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.locator("#status")).to_contain_text("Sign-in refused")
    await expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    await page.context.close()


async def test_a_pending_approval_appears_live_and_is_approved_with_edited_arguments(
        browser, inbox, make_agent, script, running_worker, db, tmp_path):
    """alice sees the approval arrive without a reload, edits the amount (the difference shown),
    approves; the tool runs once, as edited."""
    agent = make_agent(calls(script, ("pay", {"amount": 120, "to": "bob"})), [pay], db=db)
    async with running_worker():
        page = await signed_in(browser, inbox, "alice")
        await expect(page.get_by_text("Nothing waits for you.")).to_be_visible()
        await page.evaluate("window.notReloaded = true")
        run = await agent.arun("pay bob")
        approval_id = f"{run.run_id}/{run.requirements[0].id}"
        await expect(card(page, approval_id)).to_contain_text('"amount": 120', timeout=WAIT)
        assert await page.evaluate("window.notReloaded === true")
        await expect(card(page, approval_id)).to_contain_text("due in 3 h")
        await expect(card(page, approval_id)).to_contain_text("alice, bob")

        await card(page, approval_id).get_by_role("link", name="pay").click()
        await expect(page.locator("#approval-status")).to_have_text("pending")
        await expect(page.locator("#run-status")).to_have_text("paused")
        assert await page.locator("#temporal-link").get_attribute("href") == f"{UI}/namespaces/default/workflows/{run.run_id}"
        editor = page.get_by_label("Arguments (edit to approve with corrections)")
        await editor.fill('{"amount": "lots", "to": "bob"}')
        await expect(page.locator(".diff")).to_contain_text("arguments.amount: must be integer")
        await editor.fill('{"amount": 100, "to": "bob"}')
        await expect(page.locator(".diff")).to_contain_text("amount changed: 120 → 100")
        await shot(page, "inbox-approval", tmp_path)
        RAN.clear()
        await page.get_by_role("button", name="Approve with changes").click()
        await expect(page.locator("#outcome")).to_contain_text("Approved as alice: the run is now completed", timeout=WAIT)
        await expect(page.locator("#approval-status")).to_have_text("approved", timeout=WAIT)
        await expect(page.locator("table.history")).to_contain_text("confirmed")
        assert RAN == [{"amount": 100, "to": "bob"}]
        assert (await agent.aget_run(run.run_id)).status.value == "completed"
        await page.context.close()
    record = db.get_approval(approval_id)
    assert record["resolved_by"] == "alice" and record["context"]["arguments"] == {"amount": 100, "to": "bob"}


async def test_a_rejection_from_the_list_carries_its_reason(browser, inbox, make_agent, script, running_worker, db):
    """bob rejects from the list with a reason, by keyboard: the card says so, the run ends, the reason is on the trail."""
    agent = make_agent(calls(script, ("pay", {"amount": 9000, "to": "mallory"})), [pay], db=db)
    async with running_worker():
        run = await agent.arun("pay")
        approval_id = f"{run.run_id}/{run.requirements[0].id}"
        await settled(db, run.run_id, 1)
        page = await signed_in(browser, inbox, "bob")
        await card(page, approval_id).get_by_label("Reason for rejecting pay").fill("not a known supplier")
        RAN.clear()
        await page.keyboard.press("Tab")  # by keyboard alone: the next stop after the reason is its Reject button
        await expect(card(page, approval_id).get_by_role("button", name="Reject")).to_be_focused()
        await page.keyboard.press("Enter")
        await expect(card(page, approval_id)).to_contain_text("Rejected as bob: the run is now completed", timeout=WAIT)
        assert RAN == []
        await page.context.close()
    await settled(db, run.run_id, 1, "rejected")
    assert db.get_approval(approval_id)["resolution"]["reason"] == "not a known supplier"


async def test_a_user_input_form_is_generated_from_the_schema(browser, inbox, make_agent, script, running_worker, db):
    """The form has one typed field per value the tool leaves to a person; submitting it completes the run."""
    agent = make_agent(calls(script, ("book", {"date": "2026-12-24"})), [book], db=db)
    async with running_worker():
        run = await agent.arun("book")
        approval_id = f"{run.run_id}/{run.requirements[0].id}"
        await settled(db, run.run_id, 1)
        page = await signed_in(browser, inbox, "carol")
        await card(page, approval_id).get_by_role("link", name="Fill in…").click()
        assert await page.get_by_label("seats").get_attribute("type") == "number"
        await page.get_by_label("time").fill("19:30")
        await page.get_by_label("seats").fill("4")
        await page.get_by_role("button", name="Submit").click()
        await expect(page.locator("#outcome")).to_contain_text("Input given as carol: the run is now completed", timeout=WAIT)
        assert "booked 2026-12-24 19:30 for 4" in (await agent.aget_run(run.run_id)).content
        await page.context.close()


async def test_an_external_result_is_given_in_the_browser(browser, inbox, make_agent, script, running_worker, db):
    """A tool run elsewhere: the person pastes its result; the run continues with it."""
    agent = make_agent(calls(script, ("deploy", {"service": "api"})), [deploy], db=db)
    async with running_worker():
        run = await agent.arun("deploy")
        approval_id = f"{run.run_id}/{run.requirements[0].id}"
        await settled(db, run.run_id, 1)
        page = await signed_in(browser, inbox, "dave")
        await card(page, approval_id).get_by_role("link", name="Give the result…").click()
        await page.get_by_label("Result of the tool, run elsewhere").fill("deployed api at v42")
        await page.get_by_role("button", name="Submit result").click()
        await expect(page.locator("#outcome")).to_contain_text("Result given as dave", timeout=WAIT)
        assert "deployed api at v42" in (await agent.aget_run(run.run_id)).content
        await page.context.close()


async def test_a_batch_is_decided_together(browser, inbox, make_agent, script, running_worker, db, tmp_path):
    """Two payments in one pause, both selected and approved at once: each tool runs once, the run completes."""
    both = calls(script, ("pay", {"amount": 10, "to": "ann"}), ("pay", {"amount": 20, "to": "ben"}))
    agent = make_agent(both, [pay, book], db=db)
    other = make_agent(calls(script, ("book", {"date": "2026-12-31"})), [pay, book], db=db)
    async with running_worker():
        run = await agent.arun("pay both")
        await other.arun("book")
        ids = [f"{run.run_id}/{r.id}" for r in run.requirements]
        await settled(db, run.run_id, 2)
        page = await signed_in(browser, inbox, "alice")
        await expect(card(page, ids[1])).to_be_visible()
        await page.get_by_role("button", name="All pending").click()
        await expect(page.locator("article.card")).to_have_count(3, timeout=WAIT)
        await expect(page.get_by_role("button", name="Load more")).to_be_hidden()
        unlabelled = await page.evaluate("[...document.querySelectorAll('input, textarea')].filter(n => !n.labels.length).length")
        assert unlabelled == 0
        await shot(page, "inbox", tmp_path)
        for approval_id in ids:
            await card(page, approval_id).get_by_role("checkbox").check()
        await expect(page.locator("#selected-count")).to_have_text("2 selected")
        RAN.clear()
        await page.get_by_role("button", name="Approve selected").click()
        await expect(card(page, ids[0])).to_contain_text("Approved as alice", timeout=WAIT)
        await expect(card(page, ids[1])).to_contain_text("Approved as alice: the run is now completed", timeout=WAIT)
        assert sorted(r["amount"] for r in RAN) == [10, 20]
        await page.context.close()


async def test_a_decision_someone_else_made_first_shows_who(browser, inbox, make_agent, script, running_worker, db):
    """alice's page is stale (no live stream); bob approves first; her click says "Already decided by bob", not an error page."""
    agent = make_agent(calls(script, ("pay", {"amount": 50, "to": "zoe"})), [pay], db=db)
    async with running_worker():
        run = await agent.arun("pay")
        approval_id = f"{run.run_id}/{run.requirements[0].id}"
        await settled(db, run.run_id, 1)
        alice = await signed_in(browser, inbox, "alice")
        await alice.route("**/approvals/events*", lambda route: route.abort())  # her page stops hearing news
        await alice.goto(f"{inbox.url}/inbox/approvals/{approval_id}")
        await expect(alice.get_by_role("button", name="Approve")).to_be_visible()
        bob = await signed_in(browser, inbox, "bob")
        await bob.goto(f"{inbox.url}/inbox/approvals/{approval_id}")
        RAN.clear()
        await bob.get_by_role("button", name="Approve").click()
        await expect(bob.locator("#outcome")).to_contain_text("Approved as bob", timeout=WAIT)
        await alice.get_by_role("button", name="Approve").click()
        await expect(alice.locator("#outcome")).to_contain_text("Already decided by bob", timeout=WAIT)
        await expect(alice.locator("#approval-status")).to_have_text("approved")
        assert RAN == [{"amount": 50, "to": "zoe"}]
        for page in (alice, bob):
            await page.context.close()


async def test_a_decision_by_someone_else_shows_live(browser, inbox, make_agent, script, running_worker, db):
    """With the stream on, alice's open list marks bob's decision as his, without a reload."""
    agent = make_agent(calls(script, ("pay", {"amount": 7, "to": "yan"})), [pay], db=db)
    async with running_worker(), inbox.client(inbox.token("bob")) as bob:
        run = await agent.arun("pay")
        approval_id = f"{run.run_id}/{run.requirements[0].id}"
        await settled(db, run.run_id, 1)
        alice = await signed_in(browser, inbox, "alice")
        await expect(card(alice, approval_id)).to_be_visible()
        r = await bob.post(f"/approvals/{approval_id}/resolve", json={"status": "approved"})
        assert r.status_code == 200, r.text
        await expect(card(alice, approval_id)).to_contain_text("Decided by bob (approved)", timeout=WAIT)
        await alice.context.close()


async def test_a_non_approver_sees_no_decide_buttons_and_a_forged_post_is_refused(
        browser, inbox, make_agent, script, running_worker, db):
    """mallory may read every approval but approve none: no buttons, on a phone too; a POST from her page gets 403, nothing runs."""
    agent = make_agent(calls(script, ("pay", {"amount": 1000, "to": "mallory"})), [pay], db=db)
    async with running_worker():
        run = await agent.arun("pay")
        approval_id = f"{run.run_id}/{run.requirements[0].id}"
        await settled(db, run.run_id, 1)
        page = await signed_in(browser, inbox, "mallory", "approvals:read", "approvals:decide", phone=True)
        await page.get_by_role("button", name="All pending").click()
        await expect(card(page, approval_id)).to_contain_text("You cannot decide this one")
        await expect(card(page, approval_id).get_by_role("button")).to_have_count(0)
        await page.goto(f"{inbox.url}/inbox/approvals/{approval_id}")
        await expect(page.locator("#no-decide")).to_contain_text("You may not decide")
        await expect(page.get_by_role("button", name="Approve")).to_have_count(0)
        assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")  # no sideways scrolling
        RAN.clear()
        status = await page.evaluate("""async (id) => {
            const r = await fetch(`/approvals/${id}/resolve`, {method: "POST", headers: {"Content-Type": "application/json",
                Authorization: `Bearer ${sessionStorage.getItem("hitl.token")}`}, body: JSON.stringify({status: "approved"})});
            return r.status; }""", approval_id)
        assert status == 403 and RAN == []
        assert (await agent.aget_run(run.run_id)).is_paused
        await page.context.close()
        # The run mirrors the refusal into the trail a moment after it refuses, by an activity of this
        # worker: wait for it while the worker runs, then count.
        refused = 0
        for _ in range(400):
            refused = sql(db, "SELECT count(*) FROM {t}_events WHERE approval_id = %s AND kind = 'refused'",
                          approval_id)[0][0]
            if refused:
                break
            await asyncio.sleep(0.05)
        assert refused == 1


async def test_the_pages_forbid_inline_script_and_framing(inbox):
    """Every inbox page and asset has the strict Content-Security-Policy; unknown files are 404."""
    async with inbox.client() as anyone:
        for path in ("/inbox", "/inbox/approvals/x/y", "/inbox/static/main.js", "/inbox/static/inbox.css"):
            r = await anyone.get(path)
            assert r.status_code == 200, path
            assert "script-src 'self'" in r.headers["content-security-policy"] and r.headers["x-frame-options"] == "DENY"
        for path in ("/inbox/static/..%2Fapp.py", "/inbox/static/app.py", "/inbox/static/.hidden.js"):
            assert (await anyone.get(path)).status_code == 404, path
        assert (await anyone.get("/me")).status_code == 401


@approval(approvers=["alice", "erin", "frank"], quorum=2)
@tool(requires_confirmation=True)
def wire(amount: int) -> str:
    """Wire money (two approvers)."""
    RAN.append({"wire": amount})
    return f"wired {amount}"


async def test_an_oidc_user_signs_in_sees_who_confirmed_and_completes_a_quorum(
        browser, make_agent, script, running_worker, db, temporal_server, tmp_path):
    """erin signs in with her identity provider's token; the card says alice confirmed 1 of 2; erin's approval runs the tool."""
    import json as _json
    from datetime import UTC, datetime

    import jwt
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from hitl.security.oidc import OidcSettings

    idp = Ed25519PrivateKey.generate()
    jwks = tmp_path / "jwks.json"
    jwks.write_text(_json.dumps({"keys": [{**_json.loads(jwt.algorithms.OKPAlgorithm.to_jwk(idp.public_key())), "kid": "k1"}]}))
    service = RunningService(db, oidc=OidcSettings(jwks=str(jwks), issuer="https://idp", audience="hitl"))
    erin_token = jwt.encode({"iss": "https://idp", "aud": "hitl", "sub": "erin", "scope": "approvals:decide",
                             "exp": datetime.now(UTC) + timedelta(minutes=10)}, idp, algorithm="EdDSA", headers={"kid": "k1"})
    agent = make_agent(calls(script, ("wire", {"amount": 25000})), [wire], db=db)
    try:
        async with running_worker(), service.client(service.token("alice")) as alice:
            run = await agent.arun("wire")
            approval_id = f"{run.run_id}/{run.requirements[0].id}"
            await settled(db, run.run_id, 1)
            r = await alice.post(f"/approvals/{approval_id}/resolve", json={"status": "approved"})
            assert r.status_code == 200 and r.json()["run"]["status"] == "paused", r.text
            page = await (await browser.new_context()).new_page()
            await page.goto(f"{service.url}/inbox")
            await page.get_by_label("API token or OIDC access token").fill(erin_token)
            await page.keyboard.press("Enter")
            await expect(page.locator("#who")).to_contain_text("Signed in as erin (oidc; approvals:decide)")
            await expect(page.get_by_role("button", name="All pending")).to_have_count(0)  # no approvals:read
            await expect(card(page, approval_id)).to_contain_text("1 of 2 confirmed: alice", timeout=WAIT)
            RAN.clear()
            await card(page, approval_id).get_by_role("button", name="Approve").click()
            await expect(card(page, approval_id)).to_contain_text("Approved as erin: the run is now completed", timeout=WAIT)
            assert RAN == [{"wire": 25000}]
            await page.context.close()
    finally:
        service.stop()


async def test_a_revoked_token_returns_the_page_to_sign_in(browser, inbox):
    """Revoked while signed in: the next load asks to sign in again, saying why."""
    info, token = inbox.tokens.create("alice", ["approvals:decide"])
    page = await (await browser.new_context()).new_page()
    await page.goto(f"{inbox.url}/inbox")
    await page.get_by_label("API token or OIDC access token").fill(token)
    await page.keyboard.press("Enter")
    await expect(page.locator("#live")).to_have_text("● live", timeout=WAIT)  # connected before the revocation
    inbox.tokens.revoke(info.id)
    await page.reload()
    await expect(page.locator("#status")).to_contain_text("Sign-in refused")
    await expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    await page.context.close()


async def test_a_malformed_approval_address_is_refused_with_a_message(browser, inbox):
    """An address with a broken %-escape is no approval id: a page that says so (nothing sent), not a blank page;
    a well-formed id nobody has is "not found"."""
    page = await signed_in(browser, inbox, "alice")
    await page.goto(f"{inbox.url}/inbox/approvals/run-%E0%A4%A/req-1")
    await expect(page.get_by_role("heading", name="Approval not addressable")).to_be_visible()
    await page.goto(f"{inbox.url}/inbox/approvals/run-nobody/req-1")
    await expect(page.get_by_role("heading", name="Approval not found")).to_be_visible()
    await page.context.close()


CHARGED: list[int] = []


@tool(requires_confirmation=True, idempotent=False, timeout=timedelta(seconds=1))
def charge(amount: int) -> str:
    """Charge a card (not safe to run twice)."""
    import time

    CHARGED.append(amount)
    time.sleep(2)  # longer than its timeout: nobody knows whether the charge went through
    return f"charged {amount}"


async def test_an_uncertain_outcome_is_shown_as_a_warning(browser, inbox, make_agent, script, running_worker, db):
    """A non-idempotent tool that timed out asks again; its card warns that the outcome is uncertain."""
    agent = make_agent(calls(script, ("charge", {"amount": 42})), [charge], db=db)
    async with running_worker(), inbox.client(inbox.token("alice")) as alice:
        run = await agent.arun("charge")
        approval_id = f"{run.run_id}/{run.requirements[0].id}"
        await settled(db, run.run_id, 1)
        r = await alice.post(f"/approvals/{approval_id}/resolve", json={"status": "approved"})
        assert r.status_code == 200 and r.json()["run"]["status"] == "paused", r.text
        again = f"{run.run_id}/{r.json()['run']['requirements'][-1]['id']}"
        page = await signed_in(browser, inbox, "alice")
        await expect(card(page, again)).to_contain_text("⚠ The outcome of 'charge' is uncertain", timeout=WAIT)
        assert CHARGED == [42]
        await page.context.close()
