"""Per-installation write throttle: GitHub's secondary rate limits, kept on our side.

Content-creating requests are limited to 80 a minute and 500 an hour per installation, and
mutative requests (POST, PATCH, PUT, DELETE) should be at least a second apart; a refused
request comes back 403/429 with `retry-after` (or `x-ratelimit-reset`). So every write is
spaced, and only content-creating ones count in the minute and hour windows. Every client of
one installation shares one throttle, through the `ThrottledTransport` its httpx client sends
with: a `WriteThrottle` in memory (one process), or a `SharedWriteThrottle` in PostgreSQL
(every process on the database). Writes waiting for their installation's next slot go in
priority order (`write_priority`), then in arrival order.

GitHub: https://docs.github.com/en/rest/using-the-rest-api/rate-limits-for-the-rest-api
("About secondary rate limits": no more than 80 content-generating requests a minute and 500
an hour; "Best practices": at least one second between mutative requests).
"""

import abc
import asyncio
import contextlib
import contextvars
import heapq
import itertools
import re
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

import httpx
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_none

from bot.engine.database import Pool
from bot.meters import THROTTLE_WAIT_SECONDS

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
WRITE_ATTEMPTS = 2  # a write refused by a rate limit is sent once more, after the wait


# What GitHub counts as content creation (its docs name no list): the requests that create
# an object people see -- an issue, a comment, a pull request, a review, a label, a check
# run, a fork -- and a merge, which creates a commit. Edits, closes, label changes on an
# issue and deletions are mutative but create nothing; they are only spaced.
_CREATES = (
    ("POST", re.compile(r"/repos/[^/]+/[^/]+/issues$")),
    ("POST", re.compile(r"/repos/[^/]+/[^/]+/issues/[^/]+/comments$")),
    ("POST", re.compile(r"/repos/[^/]+/[^/]+/pulls$")),
    ("POST", re.compile(r"/repos/[^/]+/[^/]+/pulls/[^/]+/reviews$")),
    ("POST", re.compile(r"/repos/[^/]+/[^/]+/labels$")),
    ("POST", re.compile(r"/repos/[^/]+/[^/]+/check-runs$")),
    ("POST", re.compile(r"/repos/[^/]+/[^/]+/forks$")),
    ("PUT", re.compile(r"/repos/[^/]+/[^/]+/pulls/[^/]+/merge$")),
)


def creates_content_route(method: str, path: str) -> bool:
    """Whether `method path` (a URL path or a route template) creates content on GitHub."""
    path = path.removeprefix("/api/v3")
    return any(method == m and pattern.search(path) for m, pattern in _CREATES)


def is_write(request: httpx.Request) -> bool:
    """Whether `request` is mutative, so spaced from the installation's other writes."""
    if request.method not in WRITE_METHODS:
        return False
    path = request.url.path
    if request.method == "POST" and _TOKEN_PATH.search(path):
        return False
    if request.method == "POST" and _GRAPHQL_PATH.search(path):
        return bool(_MUTATION.search(request.content))
    return True


def creates_content(request: httpx.Request) -> bool:
    """Whether write `request` counts in GitHub's content-creation windows (GraphQL
    mutations are counted: which of them create content is not told apart)."""
    if request.method == "POST" and _GRAPHQL_PATH.search(request.url.path):
        return True
    return creates_content_route(request.method, request.url.path)


class WriteDeferred(Exception):
    """A write whose slot is more than the caller's bound away: the job gives its worker back
    and runs again `wait_s` from now (see `defer_writes_over`). Nothing was sent."""

    def __init__(self, wait_s: float) -> None:
        super().__init__(f"the installation's next write slot is {wait_s:.1f} s away")
        self.wait_s = wait_s


_defer_over: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "defer_writes_over", default=None
)


@contextlib.contextmanager
def defer_writes_over(bound_s: float) -> Iterator[None]:
    """Within this block a write that would wait longer than `bound_s` for its slot raises
    `WriteDeferred` instead of sleeping. Jobs that can run again from the start use it; other
    callers (webhook handlers, the CLI) keep waiting."""
    token = _defer_over.set(bound_s)
    try:
        yield
    finally:
        _defer_over.reset(token)


# Which write of an installation goes first when several wait for its next slot: the highest
# priority, then the earliest. A PR author's first feedback goes ahead of everything else.
FIRST_CHECK = 3  # a PR head's first check run: the audit's findings, annotated
FIRST_FEEDBACK = 2  # the rest of a PR's first reconcile: its issues, its summary comment
RECONCILE = 1  # later reconciles (the default)
BACKGROUND = 0  # fix tasks: their PRs, check runs and merges

_priority: contextvars.ContextVar[int] = contextvars.ContextVar("write_priority", default=RECONCILE)


@contextlib.contextmanager
def write_priority(priority: int) -> Iterator[None]:
    """Writes sent within this block wait for their installation's slot with `priority`."""
    token = _priority.set(priority)
    try:
        yield
    finally:
        _priority.reset(token)


def write_deferred(exc: BaseException | None) -> WriteDeferred | None:
    """The `WriteDeferred` that `exc` is or wraps (githubkit wraps transport errors)."""
    seen = 0
    while exc is not None and seen < 8:
        if isinstance(exc, WriteDeferred):
            return exc
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return None


@dataclass(frozen=True)
class ThrottleStats:
    writes: int
    waits: int
    waited_s: float
    pauses: int
    deferred: int = 0  # writes handed back to the job layer (WriteDeferred)
    deferred_s: float = 0.0  # the waits those writes would have slept


@dataclass(frozen=True)
class WriteLimits:
    """How one installation's writes are spaced: `min_interval_s` apart, at most `per_minute`
    in any `minute_s` and `per_hour` in any `hour_s` (sliding windows; tests shorten them)."""

    min_interval_s: float = 1.0
    per_minute: int = 80
    per_hour: int = 500
    minute_s: float = MINUTE_S
    hour_s: float = HOUR_S

    def __post_init__(self) -> None:
        if self.per_minute < 1 or self.per_hour < 1:
            raise ValueError("per_minute and per_hour must be at least 1")


def next_slot(
    limits: WriteLimits,
    created: Sequence[float],
    now: float,
    paused_until: float,
    *,
    last_sent: float | None,
    creates: bool = True,
) -> float:
    """The earliest time, `now` or later, the next write may be sent.

    `created` holds the send times of the content-creating writes of the last `limits.hour_s`,
    oldest first; `last_sent` the latest write of any kind. Every write keeps the spacing from
    the last; only a write that `creates` content is held by the minute and hour windows.
    """
    slot = max(now, paused_until)
    if last_sent is not None:
        slot = max(slot, last_sent + limits.min_interval_s)
    if not creates:
        return slot
    if len(created) >= limits.per_hour:
        slot = max(slot, created[-limits.per_hour] + limits.hour_s)
    recent = sum(1 for t in created if t > now - limits.minute_s)
    if recent >= limits.per_minute:
        slot = max(slot, created[-limits.per_minute] + limits.minute_s)
    return slot


@dataclass(order=True)
class _Waiter:
    """One write waiting for its installation's slot: the highest priority first (`rank` is
    its negation), then the earliest (`seq`)."""

    rank: int
    seq: int


class Throttle(abc.ABC):
    """What a `ThrottledTransport` asks of one installation's throttle. Writes of this process
    queue by priority, then arrival (`_Waiter`): only the first of the queue claims a slot,
    and one that arrives with a higher priority while the first sleeps takes the slot when
    it comes. `sleep` and the clocks are injectable so tests need not wait."""

    kind: str  # the `throttle` label of its waits: local (this process) or shared

    def __init__(
        self, limits: WriteLimits, *, max_wait_s: float, wall_clock: Clock, sleep: Sleep
    ) -> None:
        self.limits = limits
        self.max_wait_s = max_wait_s
        self.wall_clock = wall_clock
        self.sleep = sleep
        self._claiming = asyncio.Lock()  # one claim at a time (the shared one's is a transaction)
        self._turn = asyncio.Condition()  # signalled when the queue's first changes
        self._queue: list[_Waiter] = []  # a heap: the first is the one to claim
        self._seq = itertools.count()
        self._writes = 0
        self._waits = 0
        self._waited_s = 0.0
        self._pauses = 0
        self._deferred = 0
        self._deferred_s = 0.0

    def stats(self) -> ThrottleStats:
        """This process's writes, waits, pauses and deferrals."""
        return ThrottleStats(
            self._writes,
            self._waits,
            self._waited_s,
            self._pauses,
            self._deferred,
            self._deferred_s,
        )

    @abc.abstractmethod
    async def _claim(self, creates: bool) -> tuple[float, float]:
        """The time now and the next write's slot; the write is counted as sent when the
        slot has come (slot <= now), and in the windows if it `creates` content."""

    @abc.abstractmethod
    async def _hold(self, seconds: float) -> None:
        """Let no write go for `seconds` from now."""

    def waiting(self) -> int:
        """Writes of this process waiting for the installation's next slot."""
        return len(self._queue)

    async def acquire(self, creates: bool = True) -> float:
        """Wait for this write's turn (by `write_priority`, then arrival), count it as sent and
        return its send time. Inside `defer_writes_over(bound)`, a turn whose slot is more than
        `bound` away raises `WriteDeferred`."""
        waited = 0.0
        bound = _defer_over.get()
        me = _Waiter(-_priority.get(), next(self._seq))
        heapq.heappush(self._queue, me)
        try:
            while True:
                async with self._turn:
                    await self._turn.wait_for(lambda: self._queue[0] is me)
                async with self._claiming:
                    now, slot = await self._claim(creates)
                if slot <= now:
                    break
                if bound is not None and slot - now > bound:
                    self._deferred += 1
                    self._deferred_s += slot - now
                    raise WriteDeferred(slot - now)
                # A pause, another process's write or a write of higher priority may come
                # while we sleep: look again.
                self._waits += 1
                self._waited_s += slot - now
                waited += slot - now
                await self.sleep(slot - now)
            self._writes += 1
            THROTTLE_WAIT_SECONDS.labels(self.kind).observe(waited)
            return now
        finally:
            self._queue.remove(me)
            heapq.heapify(self._queue)
            async with self._turn:
                self._turn.notify_all()

    async def pause(self, seconds: float) -> None:
        """Hold every write for `seconds` (at most `max_wait_s`): GitHub refused one."""
        await self._hold(min(max(seconds, 0.0), self.max_wait_s))
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


class WriteThrottle(Throttle):
    """One installation's writes in this process, counted in memory by `clock`."""

    kind = "local"

    def __init__(
        self,
        limits: WriteLimits = WriteLimits(),  # frozen: one default is safe to share
        *,
        max_wait_s: float = 120.0,
        clock: Clock = time.monotonic,
        wall_clock: Clock = time.time,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        super().__init__(limits, max_wait_s=max_wait_s, wall_clock=wall_clock, sleep=sleep)
        self.clock = clock
        # Send times of the content-creating writes within the last hour, oldest first.
        self._created: deque[float] = deque()
        self._last_sent: float | None = None  # of any write
        self._paused_until = float("-inf")

    async def _claim(self, creates: bool) -> tuple[float, float]:
        now = self.clock()
        while self._created and self._created[0] <= now - self.limits.hour_s:
            self._created.popleft()
        slot = next_slot(
            self.limits,
            self._created,
            now,
            self._paused_until,
            last_sent=self._last_sent,
            creates=creates,
        )
        if slot <= now:
            self._last_sent = now
            if creates:
                self._created.append(now)
        return now, slot

    async def _hold(self, seconds: float) -> None:
        self._paused_until = max(self._paused_until, self.clock() + seconds)


class SharedWriteThrottle(Throttle):
    """One installation's writes from every process on the database, counted in PostgreSQL by
    the database's clock (seconds since the epoch), which every machine agrees on.

    A claim is one short transaction holding an advisory lock on the installation: it drops
    send times older than the hour window, reads the rest and the pause, and records the
    write if its slot has come. Otherwise it commits and the caller sleeps, holding no
    connection, until the slot; then it claims again, since another process may have taken
    that slot or paused the installation in the meantime.
    """

    kind = "shared"

    def __init__(
        self,
        pool: Pool,
        installation_id: int,
        limits: WriteLimits,
        *,
        max_wait_s: float = 120.0,
        wall_clock: Clock = time.time,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        super().__init__(limits, max_wait_s=max_wait_s, wall_clock=wall_clock, sleep=sleep)
        self.pool = pool
        self.installation_id = installation_id

    async def _claim(self, creates: bool) -> tuple[float, float]:
        iid = self.installation_id
        async with self.pool.connection() as conn, conn.transaction():
            await conn.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended('review_loop_write_sends', %s))",
                (iid,),
            )
            cur = await conn.execute(
                """WITH clock AS (SELECT extract(epoch FROM clock_timestamp())::float8 AS now),
                        pruned AS (
                          DELETE FROM review_loop_write_sends
                           WHERE installation_id = %(iid)s
                             AND sent_at <= (SELECT now FROM clock) - %(hour_s)s)
                   SELECT now,
                          ARRAY(SELECT sent_at FROM review_loop_write_sends
                                 WHERE installation_id = %(iid)s AND sent_at > now - %(hour_s)s
                                   AND creates
                                 ORDER BY sent_at) AS created,
                          (SELECT max(sent_at) FROM review_loop_write_sends
                            WHERE installation_id = %(iid)s) AS last_sent,
                          coalesce((SELECT paused_until FROM review_loop_write_pauses
                                     WHERE installation_id = %(iid)s), '-infinity') AS paused_until
                     FROM clock""",
                {"iid": iid, "hour_s": self.limits.hour_s},
            )
            row = await cur.fetchone()
            assert row is not None
            now: float = row["now"]
            slot = next_slot(
                self.limits,
                row["created"],
                now,
                row["paused_until"],
                last_sent=row["last_sent"],
                creates=creates,
            )
            if slot <= now:
                await conn.execute(
                    """INSERT INTO review_loop_write_sends (installation_id, sent_at, creates)
                       VALUES (%s, %s, %s)""",
                    (iid, now, creates),
                )
        return now, slot

    async def _hold(self, seconds: float) -> None:
        async with self.pool.connection() as conn:
            await conn.execute(
                """INSERT INTO review_loop_write_pauses AS p (installation_id, paused_until)
                   VALUES (%s, extract(epoch FROM clock_timestamp())::float8 + %s)
                   ON CONFLICT (installation_id) DO UPDATE
                      SET paused_until = greatest(p.paused_until, excluded.paused_until)""",
                (self.installation_id, seconds),
            )


class _Refused(Exception):
    """A write GitHub refused with a rate limit; it may be sent again after the wait."""

    def __init__(self, response: httpx.Response) -> None:
        super().__init__(response.status_code)
        self.response = response


class ThrottledTransport(httpx.AsyncBaseTransport):
    """Sends writes when `throttle` allows; a write refused by a rate limit is retried once
    after GitHub's wait (GitHub performed nothing it refused). Reads pass straight through.

    The retry is a new request built from the body bytes read before the first send: a
    request's stream can be spent by the first attempt (githubkit's HTTP cache streams it).
    """

    def __init__(self, inner: httpx.AsyncBaseTransport, throttle: Throttle) -> None:
        self.inner = inner
        self.throttle = throttle

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        write = is_write(request)
        if not write:
            response, wait = await self._send(request)
            if wait is not None:  # any refusal, a read's too, holds the installation's writes
                await self.throttle.pause(wait)
            return response
        body = await request.aread()
        attempts = AsyncRetrying(
            stop=stop_after_attempt(WRITE_ATTEMPTS),
            retry=retry_if_exception_type(_Refused),
            wait=wait_none(),  # the throttle's pause is the wait
            sleep=self.throttle.sleep,
            reraise=True,
        )
        try:
            async for attempt in attempts:
                with attempt:
                    return await self._send_write(_copy(request, body))
        except _Refused as refused:
            return refused.response
        raise AssertionError("unreachable: tenacity stops by raising")

    async def _send_write(self, request: httpx.Request) -> httpx.Response:
        await self.throttle.acquire(creates_content(request))
        response, wait = await self._send(request)
        if wait is None:
            return response
        await self.throttle.pause(wait)
        if wait > self.throttle.max_wait_s:
            return response  # longer than we hold writes: the caller decides
        raise _Refused(response)

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


def _copy(request: httpx.Request, body: bytes) -> httpx.Request:
    """A fresh request with `request`'s method, URL, headers and `body`."""
    return httpx.Request(
        request.method,
        request.url,
        headers=request.headers,
        content=body,
        extensions=request.extensions,
    )


class ThrottleSettings(Protocol):
    @property
    def write_interval_s(self) -> float: ...

    @property
    def writes_per_minute(self) -> int: ...

    @property
    def writes_per_hour(self) -> int: ...

    @property
    def write_minute_s(self) -> float: ...

    @property
    def write_hour_s(self) -> float: ...


class Throttles:
    """One throttle per installation id, shared by every client of the process. With `pool`,
    the throttles live in that database and every process on it shares them (`clock` is then
    the database's)."""

    def __init__(
        self,
        limits: WriteLimits = WriteLimits(),  # frozen: one default is safe to share
        *,
        max_wait_s: float = 120.0,
        clock: Clock = time.monotonic,
        wall_clock: Clock = time.time,
        sleep: Sleep = asyncio.sleep,
        pool: Pool | None = None,
    ) -> None:
        def make(installation_id: int) -> Throttle:
            if pool is None:
                return WriteThrottle(
                    limits, max_wait_s=max_wait_s, clock=clock, wall_clock=wall_clock, sleep=sleep
                )
            return SharedWriteThrottle(
                pool,
                installation_id,
                limits,
                max_wait_s=max_wait_s,
                wall_clock=wall_clock,
                sleep=sleep,
            )

        self._make = make
        self._throttles: dict[int, Throttle] = {}

    @classmethod
    def from_settings(
        cls, settings: ThrottleSettings, pool: Pool | None = None, sleep: Sleep = asyncio.sleep
    ) -> "Throttles":
        limits = WriteLimits(
            settings.write_interval_s,
            settings.writes_per_minute,
            settings.writes_per_hour,
            minute_s=settings.write_minute_s,
            hour_s=settings.write_hour_s + WINDOW_MARGIN_S,
        )
        return cls(limits, pool=pool, sleep=sleep)

    def for_installation(self, installation_id: int) -> Throttle:
        throttle = self._throttles.get(installation_id)
        if throttle is None:
            throttle = self._throttles[installation_id] = self._make(installation_id)
        return throttle

    def transport(
        self, installation_id: int, inner: httpx.AsyncBaseTransport | None = None
    ) -> ThrottledTransport:
        """A transport for one client of the installation (`inner` defaults to plain HTTP)."""
        return ThrottledTransport(
            inner or httpx.AsyncHTTPTransport(), self.for_installation(installation_id)
        )

    def stats(self) -> dict[int, ThrottleStats]:
        """This process's counts, per installation."""
        return {iid: throttle.stats() for iid, throttle in self._throttles.items()}
