"""Fault switches for the model sandbox: the ways model services and models misbehave.

Each `ModelFault` names a kind, the routes it applies to (a glob over route names such as
`openai.chat` or `anthropic.*`), a probability and optionally how many times it fires. The
draws come from a seeded random source, so a run is repeatable.
"""

from __future__ import annotations

import fnmatch
import random
import threading
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

FaultKind = Literal[
    "unauthorized",  # 401
    "forbidden",  # 403
    "bad_request",  # 400
    "rate_limited",  # 429 with retry-after
    "server_error",  # 500
    "timeout",  # answer only after `delay_s` (longer than the client waits)
    "malformed_json",  # the JSON reply cut in half
    "schema_violation",  # valid JSON that breaks the requested schema
    "truncated",  # a stream that stops early; a plain body cut short of its length
    "edit_workflow",  # a reply that edits .github/workflows/ (as if a PR told it to)
    "exfiltrate",  # a reply that tries to write the prompt out of the worktree
]
STATUS: dict[str, int] = {
    "unauthorized": 401,
    "forbidden": 403,
    "bad_request": 400,
    "rate_limited": 429,
    "server_error": 500,
}
CONTENT = frozenset({"malformed_json", "schema_violation"})
INJECTIONS = frozenset({"edit_workflow", "exfiltrate"})


@dataclass
class ModelFault:
    kind: FaultKind
    route: str = "*"
    rate: float = 1.0
    times: int | None = None  # None: every time it is drawn
    retry_after_s: float = 1.0
    delay_s: float = 30.0

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ModelFault:
        return cls(**data)


@dataclass
class _Armed:
    fault: ModelFault
    left: int | None = field(default=None)


class ModelFaults:
    """The armed faults, the seeded draws, and counts of what was injected."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._armed: list[_Armed] = []
        self._random = random.Random(0)  # noqa: S311 - repeatable faults, not secrets
        self.injected: Counter[str] = Counter()

    def configure(self, faults: list[ModelFault], *, seed: int = 0) -> None:
        """Replace the armed faults (an empty list switches them all off)."""
        with self._lock:
            self._armed = [_Armed(fault, fault.times) for fault in faults]
            self._random = random.Random(seed)  # noqa: S311
            self.injected.clear()

    def draw(self, route: str, applicable: frozenset[str]) -> ModelFault | None:
        """The fault this request gets, if any: the first armed one that matches and fires."""
        with self._lock:
            for armed in self._armed:
                fault = armed.fault
                if fault.kind not in applicable or not fnmatch.fnmatchcase(route, fault.route):
                    continue
                if armed.left is not None and armed.left <= 0:
                    continue
                if fault.rate < 1.0 and self._random.random() >= fault.rate:
                    continue
                if armed.left is not None:
                    armed.left -= 1
                self.injected[fault.kind] += 1
                return fault
            return None

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "armed": [asdict(armed.fault) | {"left": armed.left} for armed in self._armed],
                "injected": dict(self.injected),
            }
