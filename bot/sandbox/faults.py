"""Fault switches: make the sandbox misbehave the ways GitHub does, deterministically."""

from __future__ import annotations

import random
import threading
from collections import Counter, deque
from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

SECONDARY_LIMIT_MESSAGE = (
    "You have exceeded a secondary rate limit. Please wait a few minutes before you try "
    "again. If you reach out to GitHub Support for help, please include the request ID."
)
SECONDARY_LIMIT_DOCS = (
    "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits"
)
CREATION_WINDOW_S = 60.0

ApiFault = Literal["server_error", "secondary_rate_limit"]
WebhookFault = Literal["drop", "duplicate"]


@dataclass
class FaultSettings:
    """What to break. Rates are fractions in [0, 1]; `seed` makes the choices repeatable."""

    seed: int = 0
    server_error_rate: float = 0.0  # answer 502
    secondary_rate_limit_rate: float = 0.0  # answer 403 + retry-after
    latency_s: float = 0.0  # added to every API request
    enforce_creation_limit: bool = False  # 80 content-creating requests per minute
    creation_limit_per_minute: int = 80
    creation_window_s: float = CREATION_WINDOW_S  # GitHub's minute; tests shorten it
    retry_after_s: int = 1
    drop_webhook_rate: float = 0.0
    duplicate_webhook_rate: float = 0.0
    # The next N merges answer 405 "Base branch was modified", as GitHub does when the base
    # moved while it was merging.
    base_modified_merges: int = 0

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FaultSettings:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown fault settings: {', '.join(sorted(unknown))}")
        return cls(**data)


class Faults:
    """The current fault settings, a seeded random source and counters tests can read."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.settings = FaultSettings()
        self._random = random.Random(0)  # noqa: S311 - repeatable faults, not secrets
        self.requests_served = 0
        self.injected: Counter[str] = Counter()
        self._creations: dict[str, deque[float]] = {}

    def configure(self, settings: FaultSettings) -> None:
        with self._lock:
            self.settings = settings
            self._random = random.Random(settings.seed)  # noqa: S311

    def _roll(self, rate: float) -> bool:
        return rate > 0 and self._random.random() < rate

    def count_request(self) -> None:
        with self._lock:
            self.requests_served += 1

    def api_fault(self) -> ApiFault | None:
        """The fault to answer this API request with, if any (and count it)."""
        with self._lock:
            fault: ApiFault | None = None
            if self._roll(self.settings.server_error_rate):
                fault = "server_error"
            elif self._roll(self.settings.secondary_rate_limit_rate):
                fault = "secondary_rate_limit"
            if fault:
                self.injected[fault] += 1
            return fault

    def latency(self) -> float:
        with self._lock:
            if self.settings.latency_s > 0:
                self.injected["latency"] += 1
            return self.settings.latency_s

    def admit_creation(self, who: str, now: float) -> bool:
        """Record a content-creating request; False when it is over the per-minute limit."""
        with self._lock:
            window = self._creations.setdefault(who, deque())
            while window and window[0] <= now - self.settings.creation_window_s:
                window.popleft()
            limited = self.settings.enforce_creation_limit
            if limited and len(window) >= self.settings.creation_limit_per_minute:
                self.injected["creation_limit"] += 1
                return False
            window.append(now)
            return True

    def creations_in_window(self, who: str, now: float) -> int:
        with self._lock:
            since = now - self.settings.creation_window_s
            return sum(1 for t in self._creations.get(who, ()) if t > since)

    def base_modified(self) -> bool:
        """Whether this merge is refused because the base "was modified" (and count it)."""
        with self._lock:
            if self.settings.base_modified_merges <= 0:
                return False
            self.settings.base_modified_merges -= 1
            self.injected["base_modified"] += 1
            return True

    def webhook_fault(self) -> WebhookFault | None:
        with self._lock:
            fault: WebhookFault | None = None
            if self._roll(self.settings.drop_webhook_rate):
                fault = "drop"
            elif self._roll(self.settings.duplicate_webhook_rate):
                fault = "duplicate"
            if fault:
                self.injected[f"webhook_{fault}"] += 1
            return fault

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "settings": asdict(self.settings),
                "requests_served": self.requests_served,
                "injected": dict(self.injected),
                "creations": {who: len(times) for who, times in self._creations.items()},
            }
