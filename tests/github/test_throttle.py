"""The write throttle, on a fake clock: GitHub's secondary limits are kept, refusals waited out."""

import asyncio
import itertools
from collections.abc import Callable

import httpx
import pytest

from bot.config import Settings
from bot.github.throttle import (
    BACKGROUND,
    FIRST_CHECK,
    HOUR_S,
    MINUTE_S,
    RECONCILE,
    ThrottledTransport,
    Throttles,
    WriteDeferred,
    WriteLimits,
    WriteThrottle,
    creates_content_route,
    defer_writes_over,
    is_write,
    write_deferred,
    write_priority,
)

API = "https://api.github.test"


class FakeClock:
    """Monotonic time that only moves when someone sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        await asyncio.sleep(0)


class Recorder:
    """An inner transport that answers 201 (or queued responses) and notes when it was hit."""

    def __init__(self, clock: FakeClock, responses: list[httpx.Response] | None = None) -> None:
        self.clock = clock
        self.responses = responses or []
        self.sent: list[tuple[str, float]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.sent.append((request.method, self.clock.now))
        return self.responses.pop(0) if self.responses else httpx.Response(201, json={})


def client(
    clock: FakeClock, recorder: Recorder, min_interval_s: float = 1.0, max_wait_s: float = 120.0
) -> httpx.AsyncClient:
    limits = WriteLimits(min_interval_s)
    throttle = WriteThrottle(limits, max_wait_s=max_wait_s, clock=clock, sleep=clock.sleep)
    transport = ThrottledTransport(httpx.MockTransport(recorder), throttle)
    return httpx.AsyncClient(base_url=API, transport=transport)


@pytest.mark.parametrize(
    ("method", "path", "body", "write"),
    [
        pytest.param("GET", "/repos/o/r/issues", b"", False, id="get"),
        pytest.param("POST", "/repos/o/r/issues", b"{}", True, id="post"),
        pytest.param("PATCH", "/repos/o/r/issues/1", b"{}", True, id="patch"),
        pytest.param("PUT", "/repos/o/r/pulls/1/merge", b"{}", True, id="put"),
        pytest.param("DELETE", "/repos/o/r/issues/1/labels/x", b"", True, id="delete"),
        pytest.param("POST", "/app/installations/5/access_tokens", b"{}", False, id="token"),
        pytest.param("POST", "/graphql", b'{"query": "query { viewer { login } }"}', False,
                     id="graphql-query"),
        pytest.param("POST", "/graphql", b'{"query": "mutation { addStar }"}', True,
                     id="graphql-mutation"),
    ],
)  # fmt: skip
def test_is_write_counts_content_creating_requests(
    method: str, path: str, body: bytes, write: bool
) -> None:
    """Writes are the methods that change things, less token requests and GraphQL queries."""
    assert is_write(httpx.Request(method, API + path, content=body)) is write


@pytest.mark.parametrize(
    ("min_interval_s", "per_minute"),
    [pytest.param(1.0, 80, id="spacing-binds"), pytest.param(0.25, 80, id="window-binds")],
)
async def test_writes_keep_spacing_and_per_minute_window(
    min_interval_s: float, per_minute: int
) -> None:
    """100 concurrent writes: spaced by the interval, never more than 80 in any 60 s."""
    clock = FakeClock()
    recorder = Recorder(clock)
    async with client(clock, recorder, min_interval_s=min_interval_s) as http:
        await asyncio.gather(*(http.post("/repos/o/r/issues", json={}) for _ in range(100)))

    times = [t for _, t in recorder.sent]
    assert len(times) == 100
    assert all(b - a >= min_interval_s for a, b in itertools.pairwise(times))
    assert max(sum(1 for t in times if start <= t < start + 60) for start in times) <= per_minute


async def test_per_hour_window_holds_writes_past_the_limit() -> None:
    """The 501st write of an hour waits until the first one is an hour old (plus the
    margin that absorbs arrival-order skew)."""
    clock = FakeClock()
    limits = WriteLimits(min_interval_s=0, per_minute=10_000)
    throttle = WriteThrottle(limits, clock=clock, sleep=clock.sleep)
    for _ in range(501):
        await throttle.acquire()

    assert clock.now == pytest.approx(1000.0 + HOUR_S)
    assert HOUR_S >= 3600.0
    assert throttle.stats().writes == 501


async def test_reads_are_not_delayed() -> None:
    """Reads go straight through while writes queue for their turn."""
    clock = FakeClock()
    recorder = Recorder(clock)
    async with client(clock, recorder) as http:
        for _ in range(5):
            await http.post("/repos/o/r/issues", json={})
        write_done = clock.now
        for _ in range(20):
            await http.get("/repos/o/r/issues")

    assert clock.now == write_done
    assert [t for m, t in recorder.sent if m == "GET"] == [write_done] * 20


async def test_secondary_limit_pauses_writes_and_retries_once() -> None:
    """A 403 with retry-after: 30 holds every write 30 s; the refused write is sent again."""
    clock = FakeClock()
    refused = httpx.Response(
        403,
        headers={"retry-after": "30"},
        json={"message": "You have exceeded a secondary rate limit."},
    )
    recorder = Recorder(clock, [refused])
    throttles = Throttles(clock=clock, sleep=clock.sleep)
    throttle = throttles.for_installation(42)
    transport = ThrottledTransport(httpx.MockTransport(recorder), throttle)
    async with httpx.AsyncClient(base_url=API, transport=transport) as http:
        first = await http.post("/repos/o/r/issues", json={})
        refused_at = recorder.sent[0][1]
        second = await http.post("/repos/o/r/issues", json={})

    assert (first.status_code, second.status_code) == (201, 201)
    assert [t - refused_at for _, t in recorder.sent] == [0.0, 30.0, 31.0]
    stats = throttle.stats()
    assert (stats.pauses, stats.waited_s) == (1, 31.0)
    assert throttles.for_installation(42) is throttle
    assert throttles.stats() == {42: stats}


async def test_rate_limit_reset_header_sets_the_pause() -> None:
    """`x-ratelimit-remaining: 0` with `x-ratelimit-reset` waits until the reset time."""
    clock = FakeClock()
    wall = 1_700_000_000.0
    refused = httpx.Response(
        403, headers={"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(int(wall) + 45)}
    )
    recorder = Recorder(clock, [refused])
    throttle = WriteThrottle(clock=clock, wall_clock=lambda: wall, sleep=clock.sleep)
    transport = ThrottledTransport(httpx.MockTransport(recorder), throttle)
    async with httpx.AsyncClient(base_url=API, transport=transport) as http:
        response = await http.patch("/repos/o/r/issues/1", json={})

    assert response.status_code == 201
    assert recorder.sent[1][1] - recorder.sent[0][1] == 45.0


async def test_wait_beyond_the_cap_returns_the_refusal() -> None:
    """A retry-after longer than max_wait_s is not waited out: the caller gets the 429."""
    clock = FakeClock()
    recorder = Recorder(clock, [httpx.Response(429, headers={"retry-after": "3600"})])
    async with client(clock, recorder, max_wait_s=120.0) as http:
        response = await http.post("/repos/o/r/issues", json={})

    assert response.status_code == 429
    assert len(recorder.sent) == 1
    assert response.headers["retry-after"] == "3600"


async def test_forbidden_without_rate_limit_is_not_retried() -> None:
    """A 403 about permissions is an answer, not a reason to wait."""
    clock = FakeClock()
    denied = httpx.Response(403, json={"message": "Resource not accessible by integration"})
    recorder = Recorder(clock, [denied])
    async with client(clock, recorder) as http:
        response = await http.post("/repos/o/r/issues", json={})

    assert response.status_code == 403
    assert response.json()["message"] == "Resource not accessible by integration"
    assert (len(recorder.sent), clock.now) == (1, 1000.0)


async def test_installations_share_one_throttle_each() -> None:
    """Clients of one installation share its throttle; another installation has its own."""
    throttles = Throttles.from_settings(Settings(_env_file=None, write_interval_s=0.5))
    first, again = throttles.transport(1), throttles.transport(1)
    other = throttles.transport(2)
    try:
        assert first.throttle is again.throttle is throttles.for_installation(1)
        assert other.throttle is not first.throttle
        assert first.throttle.limits.min_interval_s == 0.5
    finally:
        for transport in (first, again, other):
            await transport.aclose()


async def test_a_write_far_from_its_slot_is_deferred_inside_a_job_and_waits_outside() -> None:
    """Inside `defer_writes_over(5)`, a write 60 s from its slot raises WriteDeferred with
    that wait and sends nothing; outside, the same write sleeps and is sent."""
    clock = FakeClock()
    recorder = Recorder(clock)
    limits = WriteLimits(1.0)
    throttle = WriteThrottle(limits, clock=clock, sleep=clock.sleep)
    transport = ThrottledTransport(httpx.MockTransport(recorder), throttle)
    await throttle.pause(60)
    async with httpx.AsyncClient(base_url=API, transport=transport) as http:
        with defer_writes_over(5.0), pytest.raises(WriteDeferred) as raised:
            await http.post("/repos/o/r/issues", json={})
        assert recorder.sent == []
        assert raised.value.wait_s == pytest.approx(60)
        await http.get("/repos/o/r")  # reads are never deferred
        await http.post("/repos/o/r/issues", json={})

    assert [m for m, _ in recorder.sent] == ["GET", "POST"]
    assert throttle.stats().deferred == 1


def test_write_deferred_is_found_inside_githubkits_wrapping() -> None:
    """githubkit wraps a transport's exception (RequestError from it): it is still found,
    and it is not a transient failure to retry."""
    from githubkit.exception import RequestError

    from bot.github.retry import transient

    inner = WriteDeferred(3.0)
    try:
        try:
            raise inner
        except WriteDeferred as exc:
            raise RequestError(exc) from exc
    except RequestError as wrapped:
        assert write_deferred(wrapped) is inner
        assert not transient(wrapped)
    assert write_deferred(RuntimeError("x")) is None


@pytest.mark.parametrize(
    ("method", "route", "creates"),
    [
        pytest.param("POST", "/repos/{owner}/{repo}/issues", True, id="issue"),
        pytest.param("POST", "/repos/{owner}/{repo}/issues/{number}/comments", True, id="comment"),
        pytest.param("POST", "/repos/{owner}/{repo}/pulls", True, id="pull"),
        pytest.param("PUT", "/repos/{owner}/{repo}/pulls/{number}/merge", True, id="merge"),
        pytest.param("POST", "/repos/{owner}/{repo}/check-runs", True, id="check-run"),
        pytest.param("PATCH", "/repos/{owner}/{repo}/issues/{number}", False, id="edit-issue"),
        pytest.param("PATCH", "/repos/o/r/check-runs/5", False, id="edit-check-run"),
        pytest.param("DELETE", "/repos/o/r/issues/1/labels/x", False, id="remove-label"),
        pytest.param("POST", "/repos/o/r/issues/1/labels", False, id="add-labels"),
    ],
)
def test_content_creation_is_the_requests_that_make_something_new(
    method: str, route: str, creates: bool
) -> None:
    """Creates (issues, comments, PRs, merges, check runs) count; edits and removals not."""
    assert creates_content_route(method, route) is creates


class Gate:
    """A `sleep` that returns only when the test opens it (the clock moves when the test
    says), so writes can be held waiting in the throttle for as long as a test needs."""

    def __init__(self) -> None:
        self.sleepers: dict[asyncio.Task[object] | None, asyncio.Future[None]] = {}

    async def sleep(self, seconds: float) -> None:
        woken: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.sleepers[asyncio.current_task()] = woken
        await woken

    def open(self) -> None:
        for woken in self.sleepers.values():
            if not woken.done():
                woken.set_result(None)
        self.sleepers.clear()


async def until(predicate: Callable[[], bool], what: str) -> None:
    """Let the other tasks run until `predicate` holds. The bound only turns a hang (the
    throttle never gets there) into a failure that says `what` did not happen."""
    try:
        async with asyncio.timeout(60):
            while not predicate():
                await asyncio.sleep(0.001)
    except TimeoutError:
        pytest.fail(f"never happened: {what}")


async def test_the_highest_priority_write_waiting_goes_first() -> None:
    """Four writes of one installation wait for its slot (held by a pause): two fix-task
    writes and a reconcile's, queued first, then a PR's first check run. When the slot
    comes, the check run goes first, the reconcile's next, the fix tasks' last in their
    order."""
    clock = FakeClock()
    gate = Gate()
    throttle = WriteThrottle(WriteLimits(1.0), clock=clock, sleep=gate.sleep)
    await throttle.pause(60)
    sent: dict[str, float] = {}

    async def write(name: str, priority: int) -> None:
        with write_priority(priority):
            sent[name] = await throttle.acquire()

    tasks = []
    for n, (name, priority) in enumerate(
        [("fix-a", BACKGROUND), ("fix-b", BACKGROUND), ("later", RECONCILE), ("check", FIRST_CHECK)]
    ):
        tasks.append(asyncio.create_task(write(name, priority)))
        await until(lambda n=n: throttle.waiting() == n + 1, f"{name} queued")
    # The check run, first of the queue now, has claimed, found the pause and sleeps.
    await until(lambda: tasks[-1] in gate.sleepers, "the check run first of the queue")
    assert sent == {}
    clock.now += 60
    while len(sent) < 4:
        gate.open()
        clock.now += 1
        await asyncio.sleep(0)
    await asyncio.gather(*tasks)

    assert sorted(sent, key=sent.__getitem__) == ["check", "later", "fix-a", "fix-b"]
    assert throttle.waiting() == 0


async def test_only_content_creation_counts_in_the_windows() -> None:
    """At 2 creations a minute, edits (PATCH) and removals (DELETE) are spaced but not held
    by the minute window; a third creation is."""
    clock = FakeClock()
    recorder = Recorder(clock)
    limits = WriteLimits(min_interval_s=1.0, per_minute=2)
    throttle = WriteThrottle(limits, clock=clock, sleep=clock.sleep)
    transport = ThrottledTransport(httpx.MockTransport(recorder), throttle)
    async with httpx.AsyncClient(base_url=API, transport=transport) as http:
        await http.post("/repos/o/r/issues", json={})
        await http.post("/repos/o/r/check-runs", json={})
        for n in range(3):
            await http.patch(f"/repos/o/r/issues/{n}", json={})
        await http.delete("/repos/o/r/issues/1/labels/x")
        await http.post("/repos/o/r/issues/1/comments", json={})

    times = [t - 1000.0 for _, t in recorder.sent]
    assert times[:6] == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]  # every write 1 s after the last
    assert times[6] == pytest.approx(MINUTE_S)  # the third creation: a minute after the first
