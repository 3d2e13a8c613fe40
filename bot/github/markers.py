"""Hidden markers: the JSON the bot writes into its own issues, comments and PRs, so that a
re-run finds and edits what an earlier run made instead of making it again."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

_MARKER_START = re.compile(r"<!--\s*review-loop(?=\s|\{)")


def render_marker(data: Mapping[str, Any]) -> str:
    """A hidden HTML comment carrying `data` as JSON; `<`, `>`, `&` are escaped inside it."""
    payload = json.dumps(dict(data), ensure_ascii=True)
    payload = payload.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return f"<!-- review-loop {payload} -->"


def parse_marker(body: str | None) -> dict[str, Any] | None:
    """The data of the first well-formed marker in `body`, or None.

    Text and other HTML comments around it are ignored, and so are broken markers;
    the bot writes its marker first, so a copy pasted further down cannot take over.
    """
    found = _first_marker(body)
    return None if found is None else found[2]


def _first_marker(body: str | None) -> tuple[int, int, dict[str, Any]] | None:
    """Where the first well-formed marker of `body` starts and ends, and its data."""
    if not body:
        return None
    for start in _MARKER_START.finditer(body):
        end = body.find("-->", start.end())
        if end == -1:
            return None
        try:
            data = json.loads(body[start.end() : end])
        except ValueError:
            continue
        if isinstance(data, dict):
            return start.start(), end + len("-->"), data
    return None


def with_marker(marker: Mapping[str, Any], text: str) -> str:
    """`text` with the hidden marker first, where `parse_marker` looks."""
    return f"{render_marker(marker)}\n{text}"


def replace_marker(body: str, marker: Mapping[str, Any]) -> str:
    """`body` with its first well-formed marker (the one `parse_marker` reads) replaced by
    `marker`; with `marker` put first when it has none."""
    found = _first_marker(body)
    if found is None:
        return with_marker(marker, body)
    start, end, _ = found
    return body[:start] + render_marker(marker) + body[end:]
