"""The job queue: procrastinate on the bot's PostgreSQL. It knows no task.

A job is declared beside its body as a `Job` (a stable name, the body, its retry strategy)
and deferred through that object: `await queue.defer(RECONCILE_PR, repo=..., number=...)`,
so go-to-definition leads from every caller to the body. The worker's wiring registers each
job with the context object its body receives first (see `bot/worker.py`); a process that
only defers (the web process) registers nothing.

Repeat events are coalesced by the callers (generation counters), never with procrastinate's
`queueing_lock`, which wedges when combined with retries in procrastinate 3.x.
"""

from __future__ import annotations

import contextvars
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Concatenate, Generic, ParamSpec, TypeVar

import procrastinate
from procrastinate import JobContext, RetryStrategy

from bot.engine.database import Conn
from bot.engine.worker_rows import JobManager
from bot.meters import JOB_SECONDS, timed

C = TypeVar("C")
P = ParamSpec("P")


@dataclass(frozen=True)
class Attempt:
    """Which run of its job the current body is (1 for the first), out of how many."""

    number: int
    limit: int | None

    @property
    def final(self) -> bool:
        return self.limit is not None and self.number >= self.limit


_attempt: contextvars.ContextVar[Attempt] = contextvars.ContextVar("attempt")
_priority: contextvars.ContextVar[int] = contextvars.ContextVar("priority", default=0)


def current_attempt() -> Attempt:
    """The attempt of the job whose body is running (outside a job: a first and last one)."""
    return _attempt.get(Attempt(1, 1))


def current_priority() -> int:
    """The priority of the job whose body is running (outside a job: 0). A body that queues
    itself again passes it on, so a re-queue never puts the job behind work it went before."""
    return _priority.get()


@dataclass(frozen=True)
class Job(Generic[C, P]):
    """A kind of job: its name in the queue (stable across releases: queued jobs carry it),
    its body, which takes the registered context and then the job's keyword arguments, and
    how often it is tried."""

    name: str
    body: Callable[Concatenate[C, P], Awaitable[None]]
    retry: RetryStrategy | None = None

    @property
    def runs(self) -> int | None:
        """How many times the job runs at most (procrastinate's `max_attempts` counts the
        retries after the first run); None: without limit."""
        if self.retry is None:
            return 1
        return None if self.retry.max_attempts is None else self.retry.max_attempts + 1


class Deferral(Generic[P]):
    """A job about to be queued with options; `defer(**kwargs)` queues it."""

    def __init__(self, deferrer: procrastinate.jobs.JobDeferrer) -> None:
        self._deferrer = deferrer

    async def defer(self, *args: P.args, **kwargs: P.kwargs) -> int:
        if args:
            raise TypeError("jobs take keyword arguments only")
        values: dict[str, Any] = dict(kwargs)
        return int(await self._deferrer.defer_async(**values))


class Queue:
    """The procrastinate App of one process, opened with the runtime's pool."""

    def __init__(self, url: str) -> None:
        self.app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=url))
        self.app.job_manager = JobManager(self.app.connector)  # a pruned worker comes back
        self._registered: dict[str, object] = {}

    def register(self, job: Job[C, Any], context: C) -> None:
        """Run `job`'s body in this process's workers, with `context` as its first argument.
        Registering the same job again with the same context changes nothing."""
        known = self._registered.get(job.name)
        if known is not None:
            if known is not context:
                raise ValueError(f"job {job.name!r} is registered already, with another context")
            return
        runs = job.runs

        async def run(jc: JobContext, /, **kwargs: Any) -> None:
            number = (jc.job.attempts or 0) + 1 if jc.job is not None else 1
            token = _attempt.set(Attempt(number, runs))
            ranked = _priority.set(jc.job.priority if jc.job is not None else 0)
            try:
                with timed(JOB_SECONDS, task=job.name, outcome="failed") as labels:
                    await job.body(context, **kwargs)
                    labels["outcome"] = "succeeded"
            finally:
                _priority.reset(ranked)
                _attempt.reset(token)

        run.__name__ = run.__qualname__ = job.name
        self.app.task(name=job.name, pass_context=True, retry=job.retry or False)(run)
        self._registered[job.name] = context

    def job(
        self,
        job: Job[Any, P],
        *,
        delay_s: float = 0,
        conn: Conn | None = None,
        priority: int = 0,
    ) -> Deferral[P]:
        """`job` with options: `delay_s` before it may run, `conn` to queue it inside the
        caller's transaction (it is then queued only if that transaction commits), `priority`
        (a free worker takes the due job of highest priority first)."""
        options: dict[str, Any] = {}
        if delay_s:
            options["schedule_in"] = {"seconds": delay_s}
        if priority:
            options["priority"] = priority
        if conn is not None:
            options["connection"] = conn
        return Deferral(self.app.configure_task(job.name, allow_unknown=True, **options))

    async def defer(self, job: Job[Any, P], *args: P.args, **kwargs: P.kwargs) -> int:
        """Queue `job` now with these keyword arguments; returns the job's id."""
        deferral: Deferral[P] = self.job(job)
        return await deferral.defer(*args, **kwargs)
