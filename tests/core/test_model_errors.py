"""Model calls retry on rate limits and server errors, and fail the run on request errors."""

from __future__ import annotations

from hitl import OpenAIResponses, RunStatus, tool


@tool
def echo(text: str) -> str:
    """Echo the text."""
    return text


async def test_rate_limit_and_server_errors_are_retried(make_agent, script, running_worker, model_server):
    """429 (with Retry-After) then 503: the run still completes."""
    model = script({"turns": [{"content": "fine", "fail": {"status": 429, "times": 1, "retry_after": 0}}]})
    flaky = script({"turns": [{"content": "also fine", "fail": {"status": 503, "times": 2}}]})
    async with running_worker():
        first = await make_agent(model, [echo]).arun("hi")
        second = await make_agent(flaky, [echo], api=OpenAIResponses).arun("hi")
    assert first.status == RunStatus.completed and first.content == "fine"
    assert second.status == RunStatus.completed and second.content == "also fine"
    assert len(model_server.requests_for(model)) == 2 and len(model_server.requests_for(flaky)) == 3


async def test_request_error_fails_the_run_with_the_models_message(make_agent, script, running_worker, model_server):
    """A 400 is not retried: the run ends in error carrying the server's message."""
    model = script({"turns": [{"content": "never", "fail": {"status": 400, "times": 5, "message": "context too long"}}]})
    agent = make_agent(model, [echo])
    async with running_worker():
        response = await agent.arun("hi")
        loaded = await agent.aget_run(response.run_id)
    assert response.status == RunStatus.error and "context too long" in (response.error or "")
    assert loaded.status == RunStatus.error and "context too long" in (loaded.error or "")
    assert len(model_server.requests_for(model)) == 1


async def test_unknown_model_is_a_request_error(make_agent, running_worker):
    """A 404 for an unknown model fails the run at once, saying which model."""
    agent = make_agent("no-such-script", [echo])
    async with running_worker():
        response = await agent.arun("hi")
    assert response.status == RunStatus.error and "no-such-script" in (response.error or "")


async def test_invalid_tool_arguments_go_back_to_the_model(make_agent, script, running_worker):
    """Arguments that fail the tool's schema are not run; the model reads what was wrong."""
    model = script({"turns": [{"tool_calls": [{"name": "echo", "arguments": {"txt": 1}}]}, {"content": "{results}"}]})
    async with running_worker():
        response = await make_agent(model, [echo]).arun("hi")
    assert response.status == RunStatus.completed
    assert "text: Field required" in response.content and "txt" in response.content


async def test_api_key_reaches_the_model_server_but_never_history(make_agent, script, running_worker, model_server, client):
    """api_key= is sent as the bearer token and appears nowhere in the run's Temporal history."""
    import json

    from hitl import OpenAIChat

    secret = "sk-test-very-secret-0042"
    model = script({"turns": [{"content": "ok"}]})
    agent = make_agent(model, [echo], api=lambda id, base_url: OpenAIChat(id=id, base_url=base_url, api_key=secret))
    async with running_worker():
        response = await agent.arun("hi")
    assert response.content == "ok"
    assert f"Bearer {secret}" in model_server.authorizations
    history = await client.get_workflow_handle(response.run_id).fetch_history()
    assert secret not in json.dumps(history.to_json_dict())
    assert secret not in repr(agent.model)
