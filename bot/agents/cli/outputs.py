"""Reading what a coding-agent CLI printed: its JSON document, or its JSON Lines events."""

from __future__ import annotations

import json
from typing import Any

MESSAGE_CHARS = 20_000  # of the agent's final message, kept for the issue / fix PR


def last_json_object(stdout: bytes) -> dict[str, Any] | None:
    """The last line of `stdout` that is a JSON object (a CLI may print other lines first),
    or the whole output as one document; None when there is none."""
    text = stdout.decode(errors="replace").strip()
    try:
        whole = json.loads(text)
    except ValueError:
        whole = None
    if isinstance(whole, dict):
        return whole
    for line in reversed(text.splitlines()):
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    return None


def json_lines(stdout: bytes) -> list[dict[str, Any]]:
    """Every line of `stdout` that is a JSON object, in order; other lines are skipped."""
    events = []
    for line in stdout.decode(errors="replace").splitlines():
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            events.append(value)
    return events


def as_int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def as_float(value: object) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


def tail_text(data: bytes, chars: int = 300) -> str:
    """The end of `data`, one line, for an error message."""
    text = " ".join(data.decode(errors="replace").split())
    return text[-chars:]
