"""Helpers for checking the model sandbox with the vendors' own SDKs and types."""

from __future__ import annotations

import json
from typing import Annotated, Any, get_args, get_origin

import anthropic
import httpx
import openai
from pydantic import BaseModel

from bot.sandbox.models import ModelSandbox
from tests.modelsandbox import API_KEY

SCHEMA = {
    "type": "object",
    "properties": {"resolved": {"type": "boolean"}, "reason": {"type": "string"}},
    "required": ["resolved", "reason"],
    "additionalProperties": False,
}


def openai_client(sandbox: ModelSandbox) -> openai.AsyncOpenAI:
    """An SDK client that validates every response against its own types."""
    return openai.AsyncOpenAI(
        api_key=API_KEY,
        base_url=sandbox.openai_base_url,
        max_retries=0,
        timeout=10,
        _strict_response_validation=True,
    )


def anthropic_client(sandbox: ModelSandbox) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(
        api_key=API_KEY,
        base_url=sandbox.anthropic_base_url,
        max_retries=0,
        timeout=10,
        _strict_response_validation=True,
    )


def post(sandbox: ModelSandbox, path: str, body: dict[str, Any], **headers: str) -> httpx.Response:
    """A raw request, as a CLI would send it."""
    auth = {"authorization": f"Bearer {API_KEY}", "x-goog-api-key": API_KEY}
    return httpx.post(sandbox.url + path, json=body, headers=auth | headers, timeout=10)


def sse_events(text: str) -> list[tuple[str | None, str]]:
    """(event name, data) for each server-sent event in `text`."""
    events = []
    for block in text.split("\n\n"):
        if not block.strip():
            continue
        name, data = None, []
        for line in block.splitlines():
            if line.startswith("event: "):
                name = line[len("event: ") :]
            elif line.startswith("data: "):
                data.append(line[len("data: ") :])
        events.append((name, "\n".join(data)))
    return events


def sse_json(text: str) -> list[Any]:
    return [json.loads(data) for _, data in sse_events(text) if data != "[DONE]"]


def event_types(union: Any) -> dict[str, type[BaseModel]]:
    """An SDK's stream-event union (`Annotated[Union[...], discriminator]`) by `type` value."""
    members = get_args(union)[0] if get_origin(union) is Annotated else union
    by_type = {}
    for member in get_args(members):
        (literal,) = get_args(member.model_fields["type"].annotation)
        by_type[literal] = member
    return by_type


def parse_events(union: Any, events: list[Any]) -> list[Any]:
    """Each event validated by the SDK class its `type` names (so errors name one class)."""
    by_type = event_types(union)
    return [by_type[event["type"]].model_validate(event) for event in events]
