"""The reference's single-agent scenarios, end to end on real servers."""

from __future__ import annotations

import asyncio

from hitl import OpenAIResponses, RunStatus, tool
from hitl.approval import approval


@tool(requires_confirmation=True)
def send_email(to: str, subject: str, body: str = "") -> str:
    """Send an email.

    Args:
        to: Recipient address.
        subject: Subject line.
        body: Message text.
    """
    return f"email to {to} sent: {subject}"


@tool(requires_user_input=True, user_input_fields=["time"])
def book_appointment(date: str, time: str) -> str:
    """Book an appointment.

    Args:
        date: The day, e.g. 2026-12-01.
        time: The time slot, e.g. 10:00.
    """
    return f"booked {date} at {time}"


@tool(external_execution=True)
def deploy_to_production(service: str) -> str:
    """Deploy service to production (done by the CI/CD pipeline)."""
    raise AssertionError("an external-execution tool's body must never run")


@tool
def lookup(query: str) -> str:
    """Look something up."""
    return f"found {query}"


async def test_confirm_runs_the_tool_and_the_model_sees_its_result(make_agent, script, running_worker):
    """A confirmation pauses the run; confirming runs the tool and the run completes."""
    model = script({"turns": [{"tool_calls": [{"name": "send_email", "arguments": {"to": "a@x.org", "subject": "Hi"}}]},
                              {"content": "Done: {results}"}]})
    agent = make_agent(model, [send_email])
    async with running_worker():
        response = await agent.arun("Send an email to a@x.org")
        assert response.status == RunStatus.paused and response.is_paused
        [req] = response.active_requirements
        assert req.needs_confirmation and not req.needs_user_input and not req.needs_external_execution
        assert req.tool_execution.tool_name == "send_email"
        assert req.tool_execution.arguments == {"to": "a@x.org", "subject": "Hi", "body": ""}
        req.confirm()
        assert req.is_resolved() and response.active_requirements == []
        response = await agent.acontinue_run(run_id=response.run_id, requirements=response.requirements)
    assert response.status == RunStatus.completed
    assert response.content == "Done: email to a@x.org sent: Hi"


async def test_confirm_with_corrected_arguments_keeps_both_versions(make_agent, script, running_worker, model_server):
    """confirm(arguments=...) runs the tool with the approver's arguments; the model's are kept."""
    model = script({"turns": [{"tool_calls": [{"name": "send_email", "arguments": {"to": "wrong@x.org", "subject": "Hi"}}]},
                              {"content": "Done: {results}"}]})
    agent = make_agent(model, [send_email])
    async with running_worker():
        response = await agent.arun("mail")
        response.active_requirements[0].confirm(arguments={"to": "right@x.org", "subject": "Hi"})
        done = await agent.acontinue_run(response.run_id, response.requirements)
        assert done.content == "Done: email to right@x.org sent: Hi"
        req = done.requirements[0]
        assert req.tool_execution.arguments["to"] == "right@x.org"
        assert req.tool_execution.original_arguments == {"to": "wrong@x.org", "subject": "Hi", "body": ""}


async def test_user_input_fills_hidden_fields_and_keeps_the_models(make_agent, script, running_worker, model_server):
    """Fields in user_input_fields are hidden from the model and asked of a person."""
    model = script({"turns": [{"tool_calls": [{"name": "book_appointment", "arguments": {"date": "2026-12-01"}}]},
                              {"content": "{results}"}]})
    agent = make_agent(model, [book_appointment])
    async with running_worker():
        response = await agent.arun("Book an appointment for tomorrow")
        [req] = response.active_requirements
        assert req.needs_user_input
        schema = {f.name: f for f in req.user_input_schema}
        assert schema["date"].value == "2026-12-01" and schema["time"].value is None
        assert schema["time"].field_type is str and "time slot" in schema["time"].description
        req.provide_input("10:00")
        response = await agent.acontinue_run(response.run_id, response.requirements)
    assert response.content == "booked 2026-12-01 at 10:00"
    sent_tools = model_server.requests_for(model)[0]["tools"]
    assert list(sent_tools[0]["function"]["parameters"]["properties"]) == ["date"]


async def test_external_execution_takes_the_result_and_never_runs_the_body(make_agent, script, running_worker):
    """An external tool waits for provide_result; its body is never run by the agent."""
    model = script({"turns": [{"tool_calls": [{"name": "deploy_to_production", "arguments": {"service": "api"}}]},
                              {"content": "Deployed: {results}"}]})
    agent = make_agent(model, [deploy_to_production])
    async with running_worker():
        response = await agent.arun("Deploy the API service")
        [req] = response.active_requirements
        assert req.needs_external_execution and req.tool_execution.arguments == {"service": "api"}
        req.set_external_execution_result({"status": "ok", "version": 7})
        response = await agent.acontinue_run(response.run_id, response.requirements)
    assert response.content == 'Deployed: {"status": "ok", "version": 7}'


async def test_sequential_approvals_pause_twice(make_agent, script, running_worker):
    """One run pauses once per step; each continue_run returns at the next pause."""

    @approval
    @tool(requires_confirmation=True)
    def step_1_create_draft(content: str) -> str:
        """Create draft document."""
        return "draft-1"

    @approval
    @tool(requires_confirmation=True)
    def step_2_publish(draft_id: str) -> str:
        """Publish approved draft."""
        return f"published {draft_id}"

    model = script({"turns": [
        {"tool_calls": [{"name": "step_1_create_draft", "arguments": {"content": "AI"}}]},
        {"tool_calls": [{"name": "step_2_publish", "arguments": {"draft_id": "{results}"}}]},
        {"content": "All done: {results}"},
    ]})
    agent = make_agent(model, [step_1_create_draft, step_2_publish])
    async with running_worker():
        response = await agent.arun("Create and publish a blog post about AI")
        assert response.pauses == 1
        assert [r.tool_execution.tool_name for r in response.active_requirements] == ["step_1_create_draft"]
        for req in response.active_requirements:
            req.confirm()
        response = await agent.acontinue_run(response.run_id, response.requirements)
        assert response.is_paused and response.pauses == 2
        assert [r.tool_execution.arguments for r in response.active_requirements] == [{"draft_id": "draft-1"}]
        for req in response.active_requirements:
            req.confirm()
        response = await agent.acontinue_run(response.run_id, response.requirements)
    assert response.content == "All done: published draft-1"


async def test_batch_approval_holds_several_calls_and_runs_free_tools_at_once(make_agent, script, running_worker):
    """One turn with several calls: the free tool runs, the others wait together, in one pause."""
    model = script({"turns": [
        {"tool_calls": [
            {"name": "send_email", "arguments": {"to": "a@x.org", "subject": "1"}},
            {"name": "lookup", "arguments": {"query": "orders"}},
            {"name": "send_email", "arguments": {"to": "b@x.org", "subject": "2"}},
            {"name": "book_appointment", "arguments": {"date": "2026-12-02"}},
        ]},
        {"content": "{results}"},
    ]})
    agent = make_agent(model, [send_email, lookup, book_appointment])
    async with running_worker():
        response = await agent.arun("Process all pending orders")
        confirmations = [r for r in response.active_requirements if r.needs_confirmation]
        inputs = [r for r in response.active_requirements if r.needs_user_input]
        assert len(confirmations) == 2 and len(inputs) == 1
        for req in confirmations:
            req.confirm()
        inputs[0].provide_user_input({"time": "09:30"})
        response = await agent.acontinue_run(response.run_id, response.requirements)
    assert response.content == (
        "email to a@x.org sent: 1 | found orders | email to b@x.org sent: 2 | booked 2026-12-02 at 09:30"
    )


async def test_conditional_approval_when_the_model_decides(make_agent, script, running_worker):
    """The model asks for confirmation only for large transfers (per its instructions)."""

    @tool
    def transfer_small(amount: float, to_account: str) -> str:
        """Transfer a small amount."""
        return f"sent {amount:g} to {to_account}"

    @tool(requires_confirmation=True)
    def transfer_money(amount: float, to_account: str) -> str:
        """Transfer money between accounts."""
        return f"sent {amount:g} to {to_account}"

    model = script(
        {"match": r"\$(\d{4,})", "turns": [
            {"tool_calls": [{"name": "transfer_money", "arguments": {"amount": "{num:1}", "to_account": "savings"}}]},
            {"content": "{results}"}]},
        {"match": r"\$(\d+)", "turns": [
            {"tool_calls": [{"name": "transfer_small", "arguments": {"amount": "{num:1}", "to_account": "savings"}}]},
            {"content": "{results}"}]},
    )
    agent = make_agent(model, [transfer_small, transfer_money], instructions="Confirm transfers over $1000.")
    async with running_worker():
        small = await agent.arun("Transfer $50 to savings")
        assert small.status == RunStatus.completed and small.content == "sent 50 to savings"
        large = await agent.arun("Transfer $5000 to savings")
        assert large.is_paused
        [req] = large.active_requirements
        assert req.tool_execution.arguments["amount"] == 5000
        req.confirm()
        large = await agent.acontinue_run(large.run_id, large.requirements)
    assert large.content == "sent 5000 to savings"


async def test_conditional_approval_by_rule_holds_whatever_the_model_does(make_agent, script, running_worker):
    """requires_confirmation=<predicate> pauses large transfers even when the model just calls the tool."""

    @tool(requires_confirmation=lambda args: args["amount"] > 1000)
    def transfer(amount: float, to_account: str) -> str:
        """Transfer money."""
        return f"sent {amount:g}"

    model = script({"match": r"\$(\d+)", "turns": [
        {"tool_calls": [{"name": "transfer", "arguments": {"amount": "{num:1}", "to_account": "savings"}}]},
        {"content": "{results}"}]})
    agent = make_agent(model, [transfer])
    async with running_worker():
        assert (await agent.arun("Transfer $50")).content == "sent 50"
        large = await agent.arun("Transfer $5000")
        assert large.is_paused and large.active_requirements[0].tool_execution.arguments["amount"] == 5000


async def test_rejection_reason_reaches_the_model_and_the_tool_never_runs(make_agent, script, running_worker, model_server):
    """A rejected call is not executed; the model reads that it was rejected and why, and goes on."""
    ran: list[str] = []

    @tool(requires_confirmation=True)
    def delete_logs(older_than_days: int) -> str:
        """Delete old logs."""
        ran.append("deleted")
        return "deleted"

    model = script({"turns": [{"tool_calls": [{"name": "delete_logs", "arguments": {"older_than_days": 30}}]},
                              {"content": "Understood: {results}"}]})
    agent = make_agent(model, [delete_logs])
    async with running_worker():
        response = await agent.arun("Delete all old logs")
        response.active_requirements[0].reject(reason="User declined", resolved_by="alice")
        response = await agent.acontinue_run(response.run_id, response.requirements)
    assert ran == []
    assert response.content == "Understood: The call to delete_logs was rejected by alice. Reason: User declined"
    last_request = model_server.requests_for(model)[-1]
    assert "User declined" in last_request["messages"][-1]["content"]
    assert response.requirements[0].resolution == "rejected" and response.requirements[0].resolved_by == "alice"


async def test_agno_reject_note_spelling_works(make_agent, script, running_worker):
    """reject(note=...) is Agno's spelling of reject(reason=...)."""
    model = script({"turns": [{"tool_calls": [{"name": "send_email", "arguments": {"to": "a@x.org", "subject": "x"}}]},
                              {"content": "{results}"}]})
    agent = make_agent(model, [send_email])
    async with running_worker():
        response = await agent.arun("mail")
        response.active_requirements[0].reject(note="not now")
        response = await agent.acontinue_run(response.run_id, response.requirements)
    assert response.content.endswith("Reason: not now")


async def test_async_api_with_async_tools_on_the_responses_api(make_agent, script, running_worker):
    """arun/acontinue_run with an async tool, through the Responses API."""

    @approval
    @tool(requires_confirmation=True)
    async def async_operation(data: str) -> str:
        """Perform async operation."""
        await asyncio.sleep(0.01)
        return f"processed {data}"

    model = script({"turns": [{"tool_calls": [{"name": "async_operation", "arguments": {"data": "this"}}]},
                              {"content": "{results}"}]})
    agent = make_agent(model, [async_operation], api=OpenAIResponses)
    async with running_worker():
        response = await agent.arun("Process this data")
        for req in response.active_requirements:
            if req.needs_confirmation:
                req.confirm()
        response = await agent.acontinue_run(run_id=response.run_id, requirements=response.requirements)
    assert response.status == RunStatus.completed and response.content == "processed this"


async def test_sync_api_works_from_plain_code(make_agent, script, running_worker):
    """run/continue_run/get_run (sync) drive a run the same way."""
    model = script({"turns": [{"tool_calls": [{"name": "send_email", "arguments": {"to": "a@x.org", "subject": "x"}}]},
                              {"content": "{results}"}]})
    agent = make_agent(model, [send_email])
    async with running_worker():
        response = await asyncio.to_thread(agent.run, "mail")
        for req in response.active_requirements:
            req.confirm()
        response = await asyncio.to_thread(agent.continue_run, response.run_id, response.requirements)
        loaded = await asyncio.to_thread(agent.get_run, response.run_id)
    assert response.content == "email to a@x.org sent: x"
    assert loaded.status == RunStatus.completed and loaded.content == response.content
