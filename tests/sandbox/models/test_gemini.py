"""Gemini generateContent and streamGenerateContent from the sandbox (the Gemini CLI's wire).

No Gemini SDK is installed here, so the shapes are checked field by field against the
documented response: candidates[].content.parts[], finishReason, usageMetadata.
"""

from __future__ import annotations

import json
from typing import Any

from bot.sandbox.models import Call, ModelFault, ModelSandbox, Say, Scenario
from tests.sandbox.models.sdk import post, sse_events

TOOLS = [{"functionDeclarations": [{"name": "replace", "parameters": {"type": "object"}}]}]
REPLACE = {
    "file_path": "/w/a.py",
    "old_string": "a",
    "new_string": "b",
    "instruction": "fix",
    "allow_multiple": False,
}


def check_chunk(chunk: dict[str, Any]) -> list[dict[str, Any]]:
    (candidate,) = chunk["candidates"]
    assert candidate["content"]["role"] == "model" and candidate["index"] == 0
    usage = chunk["usageMetadata"]
    assert usage["totalTokenCount"] == usage["promptTokenCount"] + usage["candidatesTokenCount"]
    assert chunk["modelVersion"].startswith("scripted-")
    parts: list[dict[str, Any]] = candidate["content"]["parts"]
    return parts


def test_a_streamed_function_call_and_its_follow_up(models: ModelSandbox) -> None:
    """alt=sse: one data line per chunk, STOP on the last; the next turn follows the
    functionResponse parts."""
    models.scenario = Scenario(turns=[Call("replace", REPLACE), Say("Done.")])
    contents: list[dict[str, Any]] = [{"role": "user", "parts": [{"text": "fix"}]}]
    path = "/v1beta/models/gemini-test:streamGenerateContent?alt=sse"
    first = post(models, path, {"contents": contents, "tools": TOOLS})
    events = sse_events(first.text)
    assert all(name is None for name, _ in events)
    chunks = [json.loads(data) for _, data in events]
    parts = [part for chunk in chunks for part in check_chunk(chunk)]
    assert parts == [{"functionCall": {"name": "replace", "args": REPLACE}}]
    assert chunks[-1]["candidates"][0]["finishReason"] == "STOP"
    contents += [
        {"role": "model", "parts": parts},
        {
            "role": "user",
            "parts": [{"functionResponse": {"name": "replace", "response": {"output": "ok"}}}],
        },
    ]
    second = post(models, path, {"contents": contents, "tools": TOOLS})
    text = "".join(
        p["text"] for _, d in sse_events(second.text) for p in check_chunk(json.loads(d))
    )
    assert text == "Done."
    assert [r.tool_results for r in models.requests] == [0, 1]
    assert models.requests[0].model == "gemini-test"


def test_generate_content_answers_one_whole_chunk(models: ModelSandbox) -> None:
    """:generateContent returns one response object with the text in one part."""
    models.scenario = Scenario(turns=[Say("A longer scripted reply, streamed in pieces.")])
    response = post(
        models,
        "/v1beta/models/g:generateContent",
        {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]},
    )
    assert check_chunk(response.json()) == [
        {"text": "A longer scripted reply, streamed in pieces."}
    ]


def test_errors_are_google_error_bodies(models: ModelSandbox) -> None:
    """A 401 carries code, message and status UNAUTHENTICATED."""
    models.set_faults(ModelFault("unauthorized", route="gemini.*"))
    response = post(models, "/v1beta/models/g:generateContent", {"contents": []})
    assert response.status_code == 401
    assert response.json()["error"]["status"] == "UNAUTHENTICATED"
    assert response.json()["error"]["code"] == 401
