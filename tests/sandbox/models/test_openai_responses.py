"""OpenAI Responses from the sandbox, parsed by the openai SDK's own types (Codex's wire)."""

from __future__ import annotations

import json
from typing import Any

from openai.types.responses import Response, ResponseStreamEvent

from bot.sandbox.models import Call, ModelSandbox, Say, Scenario
from tests.sandbox.models.sdk import SCHEMA, openai_client, parse_events, post, sse_events

TOOLS = [{"type": "function", "name": "exec_command", "parameters": {"type": "object"}}]
TURNS = [Call("exec_command", {"cmd": "apply_patch <<'EOF'\n...\nEOF"}), Say("Patched.")]


def responses(models: ModelSandbox, items: list[dict[str, Any]], **extra: Any) -> list[Any]:
    response = post(
        models,
        "/v1/responses",
        {"model": "codex-test", "input": items, "tools": TOOLS, "stream": True, **extra},
    )
    events = sse_events(response.text)
    parsed = parse_events(ResponseStreamEvent, [json.loads(data) for _, data in events])
    assert [name for name, _ in events] == [event.type for event in parsed]
    assert [event.sequence_number for event in parsed] == list(range(len(parsed)))
    return parsed


def test_a_function_call_streams_as_response_events(models: ModelSandbox) -> None:
    """created, output_item.added, arguments deltas and done, output_item.done, completed."""
    models.scenario = Scenario(turns=list(TURNS))
    events = responses(models, [{"role": "user", "content": "fix it"}])
    kinds = [event.type for event in events]
    assert kinds[:3] == ["response.created", "response.in_progress", "response.output_item.added"]
    assert kinds[-2:] == ["response.output_item.done", "response.completed"]
    assert "response.function_call_arguments.done" in kinds
    done = events[-2].item
    assert done.type == "function_call" and done.name == "exec_command"
    assert json.loads(done.arguments)["cmd"].startswith("apply_patch")
    completed = events[-1].response
    assert completed.status == "completed" and completed.usage.input_tokens > 0


def test_the_next_turn_follows_the_function_call_outputs(models: ModelSandbox) -> None:
    """A request holding one function_call_output gets the second turn: a message."""
    models.scenario = Scenario(turns=list(TURNS))
    items = [
        {"role": "user", "content": [{"type": "input_text", "text": "fix it"}]},
        {"type": "function_call", "call_id": "c1", "name": "exec_command", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": "Success"},
    ]
    events = responses(models, items)
    message = events[-2].item
    assert message.type == "message" and message.content[0].text == "Patched."
    assert "response.output_text.delta" in [e.type for e in events]
    assert models.requests[-1].tool_results == 1


async def test_the_sdk_reads_plain_and_streamed_responses(models: ModelSandbox) -> None:
    """The SDK (validating strictly) takes a structured plain Response and a stream."""
    text_format = {"format": {"type": "json_schema", "name": "x", "schema": SCHEMA, "strict": True}}
    async with openai_client(models) as client:
        plain = await client.responses.create(model="m", input="hi", text=text_format)  # type: ignore[arg-type]
        stream = await client.responses.create(model="m", input="hi", stream=True)
        kinds = [event.type async for event in stream]
    assert isinstance(plain, Response) and plain.model == "scripted-m"
    assert json.loads(plain.output_text)["resolved"] is False
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
