"""Per-installation write throttle: GitHub's secondary rate limits, kept on our side.

Content-creating requests are limited to 80 a minute and 500 an hour per installation, with
at least a second between them recommended; a refused request comes back 403/429 with
`retry-after` (or `x-ratelimit-reset`). Every client of one installation in this process
shares one `WriteThrottle`, through the `ThrottledTransport` its httpx client sends with.
"""

import asyncio
import functools
import re
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

import httpx

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]

WRITE_METHODS = frozenset({"POST", "PATCH", "PUT", "DELETE"})
# POSTs that create no content: installation tokens, GraphQL queries (mutations are writes).
_TOKEN_PATH = re.compile(r"/app/installations/\d+/access_tokens$")
_GRAPHQL_PATH = re.compile(r"/graphql$")
_MUTATION = re.compile(rb'"\s*mutation\b')
# GitHub's advice when a secondary limit names no time: wait at least a minute.
DEFAULT_PAUSE_S = 60.0
# GitHub counts a write when it arrives, we when we send it: a request sent later can arrive
# sooner than an earlier one. The windows are a little longer than GitHub's to absorb that.
WINDOW_MARGIN_S = 2.0
MINUTE_S = 60.0 + WINDOW_MARGIN_S
HOUR_S = 3600.0 + WINDOW_MARGIN_S


def is_write(request: httpx.Request) -> bool:
    """Whether `request` counts against GitHub's content-creation limits."""
    if request.method not in WRITE_METHODS:
        return False
    path = request.url.path
    if request.method == "POST" and _TOKEN_PATH.search(path):
        return False
    if request.method == "POST" and _GRAPHQL_PATH.search(path):
        return bool(_MUTATION.search(request.content))
    return True


@dataclass(frozen=True)
class ThrottleStats:
    writes: int
    waits: int
    waited_s: float
    pauses: int


class WriteThrottle:
    """Spaces one installation's writes: `min_interval_s` apart, at most `per_minute` in any
    60 s and `per_hour` in any 3600 s (sliding windows), none while GitHub asked us to pause.

    `clock` and `sleep` are injectable so tests run without waiting.
    """

    def __init__(
        self,
        min_interval_s: float = 1.0,
        per_minute: int = 80,
        per_hour: int = 500,
        *,
        max_wait_s: float = 120.0,
        clock: Clock = time.monotonic,
        wall_clock: Clock = time.time,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if per_minute < 1 or per_hour < 1:
            raise ValueError("per_minute and per_hour must be at least 1")
        self.min_interval_s = min_interval_s
        self.per_minute = per_minute
        self.per_hour = per_hour
        self.max_wait_s = max_wait_s
        self.clock = clock
        self.wall_clock = wall_clock
        self._sleep = sleep
        self._lock = asyncio.Lock()
        self._sent: deque[float] = deque()  # send times within the last hour, oldest first
        self._paused_until = float("-inf")
        self._writes = 0
        self._waits = 0
        self._waited_s = 0.0
        self._pauses = 0

    def stats(self) -> ThrottleStats:
        return ThrottleStats(self._writes, self._waits, self._waited_s, self._pauses)

    def _next_slot(self, now: float) -> float:
        while self._sent and self._sent[0] <= now - HOUR_S:
            self._sent.popleft()
        slot = max(now, self._paused_until)
        if self._sent:
            slot = max(slot, self._sent[-1] + self.min_interval_s)
        if len(self._sent) >= self.per_hour:
            slot = max(slot, self._sent[-self.per_hour] + HOUR_S)
        recent = sum(1 for t in self._sent if t > now - MINUTE_S)
        if recent >= self.per_minute:
            slot = max(slot, self._sent[-self.per_minute] + MINUTE_S)
        return slot

    async def acquire(self) -> None:
        """Wait for this write's turn and count it as sent. Writes go in arrival order."""
        async with self._lock:
            while True:
                now = self.clock()
                slot = self._next_slot(now)
                if slot <= now:
                    break
                # A pause may arrive while we sleep: look again afterwards.
                self._waits += 1
                self._waited_s += slot - now
                await self._sleep(slot - now)
            self._sent.append(now)
            self._writes += 1

    def pause(self, seconds: float) -> None:
        """Hold every write for `seconds` (at most `max_wait_s`): GitHub refused one."""
        seconds = min(max(seconds, 0.0), self.max_wait_s)
        self._paused_until = max(self._paused_until, self.clock() + seconds)
        self._pauses += 1

    def refusal_wait(self, response: httpx.Response) -> float | None:
        """Seconds GitHub asks us to wait when `response` is a rate-limit refusal, else None.

        The body must have been read (it is only needed for a 403 that names no time).
        """
        if response.status_code not in (403, 429):
            return None
        headers = response.headers
        retry_after = headers.get("retry-after")
        if retry_after is not None:
            try:
                return max(float(retry_after), 0.0)
            except ValueError:
                return DEFAULT_PAUSE_S
        if headers.get("x-ratelimit-remaining") == "0" and "x-ratelimit-reset" in headers:
            try:
                return max(float(headers["x-ratelimit-reset"]) - self.wall_clock(), 0.0)
            except ValueError:
                return DEFAULT_PAUSE_S
        if response.status_code == 429 or b"rate limit" in response.content.lower():
            return DEFAULT_PAUSE_S
        return None  # a 403 about permissions


class ThrottledTransport(httpx.AsyncBaseTransport):
    """Sends writes when `throttle` allows; a write refused by a rate limit is retried once
    after GitHub's wait (GitHub performed nothing it refused). Reads pass straight through."""

    def __init__(self, inner: httpx.AsyncBaseTransport, throttle: WriteThrottle) -> None:
        self.inner = inner
        self.throttle = throttle

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        write = is_write(request)
        if write:
            await self.throttle.acquire()
        response, wait = await self._send(request)
        if wait is None:
            return response
        # Any refusal, a read's too, holds the installation's writes.
        self.throttle.pause(wait)
        if not write or wait > self.throttle.max_wait_s:
            return response
        await self.throttle.acquire()
        response, wait = await self._send(request)
        if wait is not None:
            self.throttle.pause(wait)
        return response

    async def _send(self, request: httpx.Request) -> tuple[httpx.Response, float | None]:
        response = await self.inner.handle_async_request(request)
        if response.status_code not in (403, 429):
            return response, None
        try:
            body = await response.aread()
        finally:
            await response.aclose()
        # The stream is spent: hand on a response that carries the body read.
        copy = httpx.Response(
            response.status_code,
            headers=response.headers,
            content=body,
            request=request,
            extensions=response.extensions,
        )
        return copy, self.throttle.refusal_wait(copy)

    async def aclose(self) -> None:
        await self.inner.aclose()


class ThrottleSettings(Protocol):
    @property
    def write_interval_s(self) -> float: ...

    @property
    def writes_per_minute(self) -> int: ...

    @property
    def writes_per_hour(self) -> int: ...


class Throttles:
    """One `WriteThrottle` per installation id, shared by every client of the process."""

    def __init__(
        self,
        min_interval_s: float = 1.0,
        per_minute: int = 80,
        per_hour: int = 500,
        *,
        max_wait_s: float = 120.0,
        clock: Clock = time.monotonic,
        wall_clock: Clock = time.time,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._make: Callable[[], WriteThrottle] = functools.partial(
            WriteThrottle,
            min_interval_s,
            per_minute,
            per_hour,
            max_wait_s=max_wait_s,
            clock=clock,
            wall_clock=wall_clock,
            sleep=sleep,
        )
        self._throttles: dict[int, WriteThrottle] = {}

    @classmethod
    def from_settings(cls, settings: ThrottleSettings) -> "Throttles":
        return cls(
            min_interval_s=settings.write_interval_s,
            per_minute=settings.writes_per_minute,
            per_hour=settings.writes_per_hour,
        )

    def for_installation(self, installation_id: int) -> WriteThrottle:
        throttle = self._throttles.get(installation_id)
        if throttle is None:
            throttle = self._throttles[installation_id] = self._make()
        return throttle

    def transport(
        self, installation_id: int, inner: httpx.AsyncBaseTransport | None = None
    ) -> ThrottledTransport:
        """A transport for one client of the installation (`inner` defaults to plain HTTP)."""
        return ThrottledTransport(
            inner or httpx.AsyncHTTPTransport(), self.for_installation(installation_id)
        )

    def stats(self) -> dict[int, ThrottleStats]:
        return {iid: throttle.stats() for iid, throttle in self._throttles.items()}
