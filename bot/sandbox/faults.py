"""Fault switches: make the sandbox misbehave the ways GitHub does, deterministically."""

from __future__ import annotations

import random
import re
import threading
from collections import Counter, deque
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal, get_args

SECONDARY_LIMIT_MESSAGE = (
    "You have exceeded a secondary rate limit. Please wait a few minutes before you try "
    "again. If you reach out to GitHub Support for help, please include the request ID."
)
SECONDARY_LIMIT_DOCS = (
    "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits"
)
CREATION_WINDOW_S = 60.0
WRITE_METHODS = frozenset({"POST", "PATCH", "PUT", "DELETE"})

# Before the request is handled (nothing changes): a 502, a 403 secondary limit.
# After it was handled (the change is made, the client does not learn it): a 502 in place of
# the answer ("lost_answer"), the connection closed mid-answer ("reset"), or the answer held
# `slow_s` seconds, past the client's timeout ("slow").
FaultKind = Literal["server_error", "secondary_rate_limit", "lost_answer", "reset", "slow"]
ApiFault = Literal["server_error", "secondary_rate_limit"]
AfterFault = Literal["lost_answer", "reset", "slow"]
WebhookFault = Literal["drop", "duplicate"]


@dataclass
class FaultRule:
    """One fault for the API requests it matches.

    `route` is a regular expression searched in "METHOD /path" (the path without `/api/v3`,
    e.g. "POST /repos/acme/widgets/issues"; empty matches all); `writes` narrows it to
    POST/PATCH/PUT/DELETE. A matching request gets the fault with probability `rate`; once it
    fired, the next `burst` matching requests get it too; `limit` caps how often it fires.
    """

    fault: FaultKind
    rate: float = 1.0
    route: str = ""
    writes: bool = False
    burst: int = 0
    limit: int | None = None

    def __post_init__(self) -> None:
        if self.fault not in get_args(FaultKind):
            raise ValueError(f"unknown fault {self.fault!r}")
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError("rate must be in [0, 1]")
        re.compile(self.route)

    def matches(self, method: str, path: str) -> bool:
        if self.writes and method not in WRITE_METHODS:
            return False
        return not self.route or re.search(self.route, f"{method} {path}") is not None


@dataclass
class FaultSettings:
    """What to break. Rates are fractions in [0, 1]; `seed` makes the choices repeatable, so a
    failing trial is replayed by configuring the same settings and sending the same requests."""

    seed: int = 0
    server_error_rate: float = 0.0  # answer 502, on every route
    secondary_rate_limit_rate: float = 0.0  # answer 403 + retry-after, on every route
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
    # GitHub marks a pull request merged by a push a moment after the push, in the
    # background: with this set, that many seconds after (0: before the push is answered).
    merge_by_push_delay_s: float = 0.0
    # Faults per route, in order after the two rates above; the first that fires wins.
    rules: list[FaultRule] = field(default_factory=list)
    slow_s: float = 30.0  # how long a "slow" answer is held

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FaultSettings:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown fault settings: {', '.join(sorted(unknown))}")
        rules = data.get("rules") or []
        if not isinstance(rules, list) or not all(isinstance(r, dict) for r in rules):
            raise ValueError("rules must be a list of objects")
        return cls(**{**data, "rules": [FaultRule(**rule) for rule in rules]})


@dataclass
class Plan:
    """What to do to one API request: fail it before it is handled, or after."""

    before: ApiFault | None = None
    after: AfterFault | None = None


class Faults:
    """The current fault settings, a seeded random source and counters tests can read."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.settings = FaultSettings()
        self._random = random.Random(0)  # noqa: S311 - repeatable faults, not secrets
        self.requests_served = 0
        self.requests: list[dict[str, Any]] = []  # the bot's requests, in order (see `record`)
        self.injected: Counter[str] = Counter()
        self._creations: dict[str, deque[float]] = {}
        self._bursts: list[int] = []
        self._fired: list[int] = []

    def configure(self, settings: FaultSettings) -> None:
        with self._lock:
            self.settings = settings
            self._random = random.Random(settings.seed)  # noqa: S311
            self._bursts = [0] * len(settings.rules)
            self._fired = [0] * len(settings.rules)

    def _roll(self, rate: float) -> bool:
        return rate > 0 and self._random.random() < rate

    def count_request(self) -> None:
        with self._lock:
            self.requests_served += 1

    def record(
        self, method: str, route: str, status: int, principal: str | None, path: str = ""
    ) -> None:
        """Log one request the bot made (not the driver's): its method, route template
        (e.g. `/repos/{owner}/{repo}/issues`), answer status and who called (`app`,
        `installation`, `user`) and the path asked -- so tests can count requests per finding."""
        with self._lock:
            self.requests.append(
                {
                    "method": method,
                    "route": route,
                    "status": status,
                    "principal": principal,
                    "path": path,
                }
            )

    def requests_since(self, since: int) -> list[dict[str, Any]]:
        with self._lock:
            return self.requests[since:]

    def plan(self, method: str, path: str) -> Plan:
        """The faults for one API request `method path` (and count them)."""
        with self._lock:
            chosen: FaultKind | None = None
            if self._roll(self.settings.server_error_rate):
                chosen = "server_error"
            elif self._roll(self.settings.secondary_rate_limit_rate):
                chosen = "secondary_rate_limit"
            else:
                chosen = self._rule_fault(method, path)
            if chosen is None:
                return Plan()
            self.injected[chosen] += 1
            if chosen == "server_error" or chosen == "secondary_rate_limit":
                return Plan(before=chosen)
            return Plan(after=chosen)

    def _rule_fault(self, method: str, path: str) -> FaultKind | None:
        for index, rule in enumerate(self.settings.rules):
            if not rule.matches(method, path):
                continue
            if rule.limit is not None and self._fired[index] >= rule.limit:
                continue
            if self._bursts[index] > 0:
                self._bursts[index] -= 1
            elif self._roll(rule.rate):
                self._bursts[index] = rule.burst
            else:
                continue
            self._fired[index] += 1
            return rule.fault
        return None

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

    def merge_by_push_delay(self) -> float:
        """How long after a push GitHub marks the pull requests it merged (and count it)."""
        with self._lock:
            delay = self.settings.merge_by_push_delay_s
            if delay > 0:
                self.injected["merge_by_push_delay"] += 1
            return delay

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
