"""Anthropic Messages from the sandbox, parsed by the anthropic SDK's own types."""

from __future__ import annotations

import json

import anthropic
import httpx
import pytest
from anthropic.types import ErrorResponse, Message, RawMessageStreamEvent

from bot.sandbox.models import Call, ModelFault, ModelSandbox, Say, Scenario
from tests.sandbox.models.sdk import SCHEMA, anthropic_client, parse_events, post, sse_events

EDIT_TOOL = {"name": "Edit", "description": "edit a file", "input_schema": {"type": "object"}}
ANSWER_TOOL = {"name": "verify_fix", "description": "answer", "input_schema": SCHEMA}


def test_head_slash_answers_200(models: ModelSandbox) -> None:
    """Claude Code checks `HEAD /` before its first request."""
    assert httpx.head(models.url + "/").status_code == 200


async def test_a_forced_tool_is_answered_with_a_tool_use_block(models: ModelSandbox) -> None:
    """The reply is a Message whose tool_use input is the schema's object."""
    async with anthropic_client(models) as client:
        message = await client.messages.create(
            model="claude-test",
            max_tokens=100,
            messages=[{"role": "user", "content": "is it fixed?"}],
            tools=[ANSWER_TOOL],  # type: ignore[list-item]
            tool_choice={"type": "tool", "name": "verify_fix"},
        )
    assert isinstance(message, Message) and message.stop_reason == "tool_use"
    (block,) = message.content
    assert block.type == "tool_use" and block.name == "verify_fix"
    assert block.input["resolved"] is False and "no script" in str(block.input["reason"])
    assert message.model == "scripted-claude-test" and message.usage.input_tokens > 0
    raw = post(models, "/v1/messages", {"model": "m", "max_tokens": 5, "messages": []})
    assert Message.model_validate(raw.json()).content[0].type == "text"


@pytest.mark.parametrize("forced", [True, False], ids=["forced-tool", "agent-turn"])
async def test_a_stream_is_raw_message_stream_events(models: ModelSandbox, forced: bool) -> None:
    """Every event validates as RawMessageStreamEvent, in the order Claude Code expects."""
    models.scenario = Scenario(
        turns=[
            Call(
                "Edit",
                {
                    "file_path": "/w/a.py",
                    "old_string": "a",
                    "new_string": "b",
                    "replace_all": False,
                },
            )
        ]
    )
    body = {
        "model": "m",
        "max_tokens": 100,
        "stream": True,
        "messages": [{"role": "user", "content": "go"}],
        "tools": [ANSWER_TOOL if forced else EDIT_TOOL],
    }
    if forced:
        body["tool_choice"] = {"type": "tool", "name": "verify_fix"}
    response = post(models, "/v1/messages?beta=true", body)
    events = sse_events(response.text)
    parsed = parse_events(RawMessageStreamEvent, [json.loads(data) for _, data in events])
    assert [name for name, _ in events] == [event.type for event in parsed]
    assert [e.type for e in parsed] == [
        "message_start",
        "content_block_start",
        *["content_block_delta"] * 3,
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    start = parsed[1]
    assert start.type == "content_block_start" and start.content_block.type == "tool_use"
    assert start.content_block.input == {}
    partial = "".join(
        e.delta.partial_json
        for e in parsed
        if e.type == "content_block_delta" and e.delta.type == "input_json_delta"
    )
    expected = (
        {"resolved", "reason"}
        if forced
        else {"file_path", "old_string", "new_string", "replace_all"}
    )
    assert set(json.loads(partial)) == expected
    delta = parsed[-2]
    assert delta.type == "message_delta" and delta.delta.stop_reason == "tool_use"


async def test_the_sdk_stream_helper_rebuilds_the_message(models: ModelSandbox) -> None:
    """The SDK's messages.stream accumulates the events into the final Message."""
    models.scenario = Scenario(turns=[Call("Edit", {"file_path": "/w/a.py"}), Say("All done.")])
    async with anthropic_client(models) as client:
        async with client.messages.stream(
            model="m",
            max_tokens=100,
            messages=[{"role": "user", "content": "go"}],
            tools=[EDIT_TOOL],  # type: ignore[list-item]
        ) as stream:
            first = await stream.get_final_message()
        (block,) = first.content
        assert block.type == "tool_use" and block.input == {"file_path": "/w/a.py"}
        second = await client.messages.create(
            model="m",
            max_tokens=100,
            tools=[EDIT_TOOL],  # type: ignore[list-item]
            messages=[
                {"role": "user", "content": "go"},
                {"role": "assistant", "content": [block.model_dump()]},  # type: ignore[list-item]
                {
                    "role": "user",
                    "content": [{"type": "tool_result", "tool_use_id": block.id, "content": "ok"}],
                },
            ],
        )
    assert second.content[0].type == "text" and second.content[0].text == "All done."
    assert [r.tool_results for r in models.requests] == [0, 1]


async def test_errors_are_anthropic_error_bodies(models: ModelSandbox) -> None:
    """A 401 is an ErrorResponse of type authentication_error, raised by the SDK as such."""
    models.set_faults(ModelFault("unauthorized"))
    raw = post(models, "/v1/messages", {"model": "m", "max_tokens": 5, "messages": []})
    assert raw.status_code == 401
    assert ErrorResponse.model_validate(raw.json()).error.type == "authentication_error"
    async with anthropic_client(models) as client:
        with pytest.raises(anthropic.AuthenticationError) as caught:
            await client.messages.create(model="m", max_tokens=5, messages=[])
    assert "injected fault unauthorized" in str(caught.value.api_message)


async def test_a_truncated_stream_has_no_message_stop(models: ModelSandbox) -> None:
    """Halfway through the events the stream ends: no message_delta, no message_stop."""
    models.set_faults(ModelFault("truncated"))
    body = {
        "model": "m",
        "max_tokens": 5,
        "stream": True,
        "messages": [{"role": "user", "content": "x"}],
    }
    names = [name for name, _ in sse_events(post(models, "/v1/messages", body).text)]
    assert names[0] == "message_start"
    assert "message_stop" not in names and "message_delta" not in names
