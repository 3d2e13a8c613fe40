"""What every wire format provides, and the two shapes a rendered reply takes."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from bot.sandbox.models.asks import Answer, Ask, Usage


@dataclass(frozen=True)
class Plain:
    """A whole JSON body."""

    body: Any


@dataclass(frozen=True)
class Stream:
    """Server-sent events, each already encoded (`event: ...\\ndata: ...\\n\\n`)."""

    events: list[str]


@dataclass(frozen=True)
class Reply:
    """Everything a renderer needs besides the ask and the answer."""

    model: str
    usage: Usage
    serial: int  # makes ids unique within one sandbox
    created: int


class Wire(Protocol):
    route: str

    def parse(self, body: Mapping[str, Any], target: str, query: Mapping[str, str]) -> Ask:
        """The ask in `body`; `target` is the model part of the path where the URL has one."""
        ...

    def api_key(self, headers: Mapping[str, str], query: Mapping[str, str]) -> str | None: ...

    def render(self, ask: Ask, answer: Answer, reply: Reply) -> Plain | Stream: ...

    def error(self, status: int, message: str) -> Any:
        """The service's error body for `status`."""
        ...


def sse(data: Any, event: str | None = None) -> str:
    """One server-sent event; `data` is JSON-encoded unless it is already a string."""
    text = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {text}\n\n"


def bearer(headers: Mapping[str, str]) -> str | None:
    value = headers.get("authorization", "")
    return value[len("Bearer ") :] if value.startswith("Bearer ") else None


def arguments_object(arguments: str) -> dict[str, Any] | None:
    """A tool call's arguments as an object, or None when they are not a JSON object."""
    try:
        value = json.loads(arguments)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
