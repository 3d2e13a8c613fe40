"""OpenAI chat completions from the sandbox, parsed by the openai SDK's own types."""

from __future__ import annotations

import json

import openai
import pytest
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from bot.sandbox.models import Call, ModelFault, ModelSandbox, Say, Scenario
from tests.sandbox.models.sdk import SCHEMA, openai_client, post, sse_events, sse_json

FORMAT = {
    "type": "json_schema",
    "json_schema": {"name": "anything", "strict": True, "schema": SCHEMA},
}
TOOLS = [{"type": "function", "function": {"name": "exec_command", "parameters": {}}}]


async def test_a_plain_completion_is_a_chat_completion(models: ModelSandbox) -> None:
    """The SDK (validating strictly) and ChatCompletion accept it; the content is JSON for the
    schema: here the scripted refusal, as nothing is scripted."""
    async with openai_client(models) as client:
        completion = await client.chat.completions.create(
            model="gpt-test",
            messages=[{"role": "user", "content": "hello"}],
            response_format=FORMAT,  # type: ignore[arg-type]
        )
    assert isinstance(completion, ChatCompletion)
    raw = post(
        models, "/v1/chat/completions", {"model": "m", "messages": [], "response_format": FORMAT}
    )
    assert ChatCompletion.model_validate(raw.json()).object == "chat.completion"
    assert completion.model == "scripted-gpt-test"
    content = completion.choices[0].message.content
    assert content is not None
    assert json.loads(content) == {
        "resolved": False,
        "reason": "Scripted model scripted-gpt-test: there is no script for a anything request; "
        "nothing was done.",
    }
    assert completion.usage is not None and completion.usage.prompt_tokens == 1


async def test_a_streamed_completion_is_chat_completion_chunks(models: ModelSandbox) -> None:
    """Every SSE data line is a ChatCompletionChunk; the stream ends with [DONE] and usage."""
    response = post(
        models,
        "/v1/chat/completions",
        {
            "model": "m",
            "stream": True,
            "stream_options": {"include_usage": True},
            "messages": [{"role": "user", "content": "hi"}],
        },
    )
    assert response.headers["content-type"].startswith("text/event-stream")
    assert sse_events(response.text)[-1] == (None, "[DONE]")
    chunks = [ChatCompletionChunk.model_validate(data) for data in sse_json(response.text)]
    assert chunks[-1].usage is not None and chunks[-1].choices == []
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.startswith("Scripted model scripted-m: there is no script")
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"


async def test_the_sdk_reads_the_stream(models: ModelSandbox) -> None:
    """The SDK's own stream iterator joins the chunks into the scripted text."""
    models.scenario = Scenario(turns=[Say("SEARCH/REPLACE block here")])
    async with openai_client(models) as client:
        stream = await client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "fix it"}], stream=True
        )
        text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert text == "SEARCH/REPLACE block here"


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
async def test_tool_turns_follow_the_tool_results_so_far(
    models: ModelSandbox, stream: bool
) -> None:
    """With tools, the n-th scripted turn answers a request holding n tool results."""
    models.scenario = Scenario(turns=[Call("exec_command", {"cmd": "ls"}), Say("done")])
    messages: list[dict[str, object]] = [{"role": "user", "content": "go"}]
    first = post(
        models,
        "/v1/chat/completions",
        {"model": "m", "messages": messages, "tools": TOOLS, "stream": stream},
    )
    if stream:
        chunks = [ChatCompletionChunk.model_validate(d) for d in sse_json(first.text)]
        calls = [tc for c in chunks if c.choices for tc in c.choices[0].delta.tool_calls or []]
        assert calls[0].function is not None and calls[0].function.name == "exec_command"
        arguments = "".join(tc.function.arguments or "" for tc in calls if tc.function)
        call_id = calls[0].id
    else:
        message = ChatCompletion.model_validate(first.json()).choices[0]
        assert message.finish_reason == "tool_calls"
        (call,) = message.message.tool_calls or []
        assert call.type == "function" and call.function.name == "exec_command"
        arguments, call_id = call.function.arguments, call.id
    assert json.loads(arguments) == {"cmd": "ls"}
    messages += [
        {
            "role": "assistant",
            "tool_calls": [
                {
                    "id": call_id,
                    "type": "function",
                    "function": {"name": "exec_command", "arguments": arguments},
                }
            ],
        },
        {"role": "tool", "tool_call_id": call_id, "content": "app.py"},
    ]
    second = post(
        models, "/v1/chat/completions", {"model": "m", "messages": messages, "tools": TOOLS}
    )
    assert ChatCompletion.model_validate(second.json()).choices[0].message.content == "done"
    assert [r.tool_results for r in models.requests] == [0, 1]


async def test_errors_are_openai_error_bodies(models: ModelSandbox) -> None:
    """An injected 429 reaches the SDK as RateLimitError with retry-after and the error body."""
    models.set_faults(ModelFault("rate_limited", retry_after_s=3))
    async with openai_client(models) as client:
        with pytest.raises(openai.RateLimitError) as caught:
            await client.chat.completions.create(model="m", messages=[])
    assert caught.value.response.headers["retry-after"] == "3"
    assert caught.value.code == "rate_limit_exceeded"
    assert "injected fault rate_limited" in caught.value.message


async def test_a_truncated_stream_never_finishes(models: ModelSandbox) -> None:
    """The truncated fault stops the stream halfway: no finish_reason, no [DONE]."""
    models.set_faults(ModelFault("truncated"))
    response = post(
        models,
        "/v1/chat/completions",
        {"model": "m", "stream": True, "messages": [{"role": "user", "content": "x"}]},
    )
    events = sse_events(response.text)
    assert (None, "[DONE]") not in events
    chunks = [ChatCompletionChunk.model_validate(d) for d in sse_json(response.text)]
    assert all(c.choices[0].finish_reason is None for c in chunks)
