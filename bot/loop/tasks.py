"""The loop's jobs and how work gets queued: reconcile a PR, run a fix task.

Events become work here: `request_reconcile` bumps the PR's generation and queues a
reconcile in one transaction. Repeat events are coalesced: a request while the PR's
reconcile still waits in the queue raises that job's generation instead of queueing one
more, and a reconcile whose generation is older than the PR's latest exits at once, because
a newer job will look at the same (newer) state. Both jobs hold a lease while they act, so
two workers never act on one PR or issue.
"""

import logging
import random
from collections.abc import Callable
from functools import partial
from typing import Any, ParamSpec

from procrastinate import RetryStrategy
from procrastinate.jobs import DEFAULT_QUEUE
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    RetryError,
    before_sleep_log,
    retry_if_exception,
)

from bot.engine.database import Conn, autocommit
from bot.engine.queue import Deferral, Job, current_priority
from bot.github.retry import WaitGitHub, worth_retrying
from bot.github.throttle import (
    BACKGROUND,
    FIRST_FEEDBACK,
    RECONCILE,
    defer_writes_over,
    write_deferred,
    write_priority,
)
from bot.loop.fix.job import TaskFailed
from bot.loop.fix.runner import LEASE_TTL_S, holder_name, run_fix
from bot.loop.fleet import Fleet
from bot.loop.reconcile.reconciler import FeedbackFirst, PrReconciler
from bot.loop.store import LoopStore, PrRow, bump_statement
from bot.runtime import Runtime

log = logging.getLogger(__name__)

P = ParamSpec("P")

LOOP_RETRY = RetryStrategy(max_attempts=3, exponential_wait=2)
BUSY_RETRY_S = 2.0
# A reconcile that meets transient GitHub errors (5xx, timeouts, resets, rate limits) tries
# again in the job, GitHub's wait or a backoff apart, for up to RECONCILE_RETRY_S of waiting;
# then it queues the same generation RECONCILE_LATER_S later rather than failing the job and
# leaving the PR to the resync.
RECONCILE_ATTEMPTS = 8
RECONCILE_RETRY_S = 180.0
RECONCILE_LATER_S = 300.0
# A PR's first reconcile (its first feedback: audit, issues, check run) goes before other
# due jobs, so a new PR is not queued behind the writes of PRs that started earlier.
FIRST_FEEDBACK_PRIORITY = 1
# A fix task that is deferred runs its spawn and audit again: it waits longer for a write
# slot than a reconcile does, to finish what it started.
FIX_WRITE_WAIT_S = 30.0
# A task left in one of these by a crashed worker is picked up again by the retried job;
# "pushed" included: opening and merging its fix PR are idempotent.
RESUMABLE = ("queued", "running", "pushed")
# Jobs queued again for one moment (the installation's next write slot, a lease's end)
# would all wake at it and all but the first wait again: each waits a random part longer,
# up to REQUEUE_JITTER of its wait and at most REQUEUE_JITTER_MAX_S.
REQUEUE_JITTER = 0.5
REQUEUE_JITTER_MAX_S = 5.0


def jittered(wait_s: float, rand: Callable[[], float] = random.random) -> float:
    """`wait_s` and a random part more (never less: before a write slot is too early)."""
    return wait_s + rand() * min(REQUEUE_JITTER * wait_s, REQUEUE_JITTER_MAX_S)


def again(runtime: Runtime, job: Job[Any, P], wait_s: float, priority: int = 0) -> Deferral[P]:
    """The running `job` queued again about `wait_s` from now (`jittered`), at its own
    priority (or `priority`, if higher): a re-queue never puts it behind work it went
    before."""
    return runtime.queue.job(
        job, delay_s=jittered(wait_s), priority=max(current_priority(), priority)
    )


def lease_ttl(runtime: Runtime) -> float:
    """Leases lapse no later than the reaper presumes a silent worker dead: otherwise the
    job it retries finds the dead worker's lease and waits out the rest of its TTL."""
    return min(LEASE_TTL_S, runtime.settings.stalled_after_s)


async def reconcile_pr(fleet: Fleet, repo: str, number: int, generation: int) -> None:
    """Bring one pull request's loop up to date."""
    runtime = fleet.runtime
    store = LoopStore(runtime.pool)
    row = await store.get(repo, number)
    if row is None or generation < row.generation:
        return  # a job for a newer generation is queued and will see the same state
    async with runtime.leases.hold(
        f"pr:{repo}#{number}", holder_name(), lease_ttl(runtime)
    ) as lease:
        if lease is None:
            await again(runtime, RECONCILE_PR, BUSY_RETRY_S).defer(
                repo=repo, number=number, generation=generation
            )
            return
        row = await store.get(repo, number)
        assert row is not None
        if row.generation > generation:
            return
        if await _settling(store, row):
            return
        if not row.urgent and row.tasks_unchanged:
            # Only fix tasks' ends asked for it, and the last reconcile that finished began
            # after every change of the PR's tasks: it saw those ends already.
            log.info("%s#%d: no fix task changed since the last reconcile", repo, number)
            await store.mark_handled(repo, number, generation, row.task_epoch)
            return
        # A PR's first reconcile writes ahead of later ones and of fix tasks, in the throttle
        # too (its check run goes ahead of that: `PrReconciler._first_check`).
        priority = FIRST_FEEDBACK if row.handled == 0 else RECONCILE
        epoch: int | None = None
        try:
            with defer_writes_over(runtime.settings.write_defer_after_s), write_priority(priority):
                async for attempt in _reconcile_attempts(runtime):
                    with attempt:
                        row = await store.get(repo, number)
                        assert row is not None
                        if row.generation > generation:
                            return  # a newer job waits for the lease and will do it
                        epoch = row.task_epoch  # read before the reconcile reads the tasks
                        async with runtime.github.installation_client(row.installation_id) as gh:
                            api = await runtime.github.repo_api(gh, repo)
                            reconciler = PrReconciler(
                                fleet, api, row, lease, start_fix=partial(queue_fix, runtime)
                            )
                            await reconciler.run()
        except RetryError as exc:
            log.warning(
                "%s#%d: GitHub kept failing (%s); reconciling again in %.0f s",
                repo,
                number,
                exc.last_attempt.exception(),
                RECONCILE_LATER_S,
            )
            await again(runtime, RECONCILE_PR, RECONCILE_LATER_S).defer(
                repo=repo, number=number, generation=generation
            )
            return
        except FeedbackFirst as exc:
            # Same priority, queued later: after the first reconciles already waiting.
            log.info("%s", exc)
            await runtime.queue.job(RECONCILE_PR, priority=FIRST_FEEDBACK_PRIORITY).defer(
                repo=repo, number=number, generation=generation
            )
            return
        except Exception as exc:
            deferred = write_deferred(exc)
            if deferred is None:
                raise
            # The installation's write budget is spent for now: give the worker back and run
            # the same generation again at the slot (the reconcile is re-runnable: what it
            # wrote is found by its markers). Meanwhile other PRs' jobs run.
            row = await store.get(repo, number)
            first = row is not None and row.handled == 0
            log.info("%s#%d: %s; reconciling again then", repo, number, deferred)
            priority = FIRST_FEEDBACK_PRIORITY if first else 0
            await again(runtime, RECONCILE_PR, deferred.wait_s, priority).defer(
                repo=repo, number=number, generation=generation
            )
            return
        await store.mark_handled(repo, number, generation, epoch)


async def _settling(store: LoopStore, row: PrRow) -> bool:
    """Whether the reconcile leaves the PR to the one its round's last fix task queues when
    it ends: one re-audit per round instead of one per merged fix (the audit of a head
    between two merges, its check run and summary edits, are wasted requests). Decided from
    the database, before any GitHub request; nothing is written and the generation is left
    unhandled (a reconcile is pending indeed). Only a reconcile the fix tasks' ends asked
    for waits: an event, a person's command (audit, stop, resume) or the resync sets
    `urgent` and is reconciled at once. The wait is bounded: only tasks whose job is queued
    or running count (a dead worker's job is queued again by the reaper and ends; one that
    failed for good counts no more), an agent's run has its `timeout_s`, and the resync
    reconciles (urgently) a PR still `fixing` whose row has not moved for
    `resync_quiet_s`."""
    if row.urgent:
        return False
    waiting = await store.fixes_under_way(row.repo, row.number)
    if waiting:
        log.info(
            "%s#%d: fix tasks %s still under way; the last to end reconciles",
            row.repo,
            row.number,
            ", ".join(map(str, waiting)),
        )
    return bool(waiting)


def _reconcile_attempts(runtime: Runtime) -> AsyncRetrying:
    """Attempts at one reconcile: transient GitHub errors are tried again, GitHub's wait (or
    a backoff) apart, until RECONCILE_ATTEMPTS or RECONCILE_RETRY_S of waiting are spent;
    then RetryError. Any other error is raised at once."""

    def spent(state: RetryCallState) -> bool:
        return state.attempt_number >= RECONCILE_ATTEMPTS or state.idle_for >= RECONCILE_RETRY_S

    return AsyncRetrying(
        retry=retry_if_exception(worth_retrying),
        stop=spent,
        wait=WaitGitHub(max_s=RECONCILE_RETRY_S),
        sleep=runtime.github.sleep,
        before_sleep=before_sleep_log(log, logging.WARNING),
    )


async def run_fix_task(fleet: Fleet, task_id: int) -> None:
    """Run one fix task: agent, verification, fix PR."""
    runtime = fleet.runtime
    store = LoopStore(runtime.pool)
    row = await store.task(task_id)
    if row is None or row.status not in RESUMABLE:
        return  # finished already: a redelivered job changes nothing
    key = f"issue:{row.repo}#{row.issue_number}"
    async with runtime.leases.hold(key, holder_name(), lease_ttl(runtime)) as lease:
        if lease is None:
            await again(runtime, RUN_FIX_TASK, BUSY_RETRY_S).defer(task_id=task_id)
            return
        row = await store.task(task_id)  # it may have finished while we waited for the lease
        if row is None or row.status not in RESUMABLE:
            return
        await store.update_task(task_id, status="running", attempts=row.attempts + 1)
        row = await store.task(task_id)
        assert row is not None
        try:
            bound = max(runtime.settings.write_defer_after_s, FIX_WRITE_WAIT_S)
            # A fix task's writes (its PR, check run, merge) wait behind every PR's feedback.
            with defer_writes_over(bound), write_priority(BACKGROUND):
                async with runtime.github.installation_client(row.installation_id) as gh:
                    api = await runtime.github.repo_api(gh, row.repo)
                    await run_fix(fleet, api, row, lease)
        except TaskFailed as exc:
            log.warning(
                "fix task %s for #%s ended %s: %s",
                task_id,
                row.issue_number,
                exc.status,
                exc.reason,
            )
            await store.update_task(task_id, status=exc.status, error=exc.reason[:2000])
        except Exception as exc:
            deferred = write_deferred(exc)
            if deferred is not None:
                # Left "running" (resumable): the run again picks up the work pushed to the
                # task branch and opens or merges its fix PR, found by its head branch.
                log.info("fix task %s: %s; running it again then", task_id, deferred)
                await again(runtime, RUN_FIX_TASK, deferred.wait_s).defer(task_id=task_id)
                return
            log.exception("fix task %s for #%s failed", task_id, row.issue_number)
            await store.update_task(
                task_id, status="failed", error=f"{type(exc).__name__}: {exc}"[:2000]
            )
    row = await store.task(task_id)
    assert row is not None
    # The bot's own merges and PRs send webhooks the bot ignores: it asks for the
    # follow-up reconcile itself, whatever the task's end (every path above that leaves
    # the task unended queues its job again). Not urgent: while the round's other tasks
    # are under way it waits for the last of them (`_settling`).
    if row.pr_number is not None:
        await request_reconcile(runtime, row.repo, row.pr_number, row.installation_id, urgent=False)
    elif row.fix_pr is not None:
        await request_reconcile(
            runtime, row.repo, row.fix_pr, row.installation_id, force_audit=True
        )


RECONCILE_PR = Job("reconcile_pr", reconcile_pr, retry=LOOP_RETRY)
RUN_FIX_TASK = Job("run_fix_task", run_fix_task, retry=LOOP_RETRY)


# The generation bump and its reconcile job in one statement, so one round trip and one
# transaction: the job is queued through procrastinate's own `procrastinate_defer_jobs_v1`
# (what `defer_async` runs), with the generation the bump returned. Unless a reconcile of
# the PR is queued already, due, and not a retry: that job then takes the new generation
# (a burst of events for one PR queues one reconcile, not one per event that would exit at
# once). A job a worker is taking at that moment is locked and skipped, and one it took is
# no longer `todo`: then a new one is queued, as before. (The task name is written out, not
# a parameter, so that the partial index of migration 15 serves the lookup in every plan.)
BUMP_AND_QUEUE = """
WITH bumped AS ({bump}),
coalesced AS (
    UPDATE procrastinate_jobs j
       SET args = jsonb_set(j.args, '{{generation}}', to_jsonb(b.generation))
      FROM bumped b
     WHERE %(delay_s)s = 0 AND j.status = 'todo'
       AND j.id = (SELECT q.id FROM procrastinate_jobs q
                    WHERE q.status = 'todo' AND q.task_name = 'reconcile_pr'
                      AND q.args->>'repo' = %(repo)s::text
                      AND (q.args->>'number')::int = %(number)s::integer
                      AND q.queue_name = %(queue)s AND q.attempts = 0
                      AND (q.scheduled_at IS NULL OR q.scheduled_at <= now())
                    ORDER BY q.id LIMIT 1
                      FOR UPDATE SKIP LOCKED)
    RETURNING j.id
)
SELECT generation,
       COALESCE(
           (SELECT array_agg(id) FROM coalesced),
           procrastinate_defer_jobs_v1(ARRAY[
               ROW(%(queue)s, %(task)s,
                   CASE WHEN generation = 1 THEN %(first_priority)s ELSE 0 END,
                   NULL, NULL,
                   jsonb_build_object('repo', %(repo)s::text, 'number', %(number)s::integer,
                                      'generation', generation),
                   CASE WHEN %(delay_s)s > 0
                        THEN now() + make_interval(secs => %(delay_s)s) END
               )::procrastinate_job_to_defer_v1
           ])) AS job_ids
  FROM bumped
"""


async def request_reconcile(
    runtime: Runtime,
    repo: str,
    number: int,
    installation_id: int,
    *,
    delay_s: float = 0,
    urgent: bool = True,
    **flags: bool,
) -> int:
    """Queue a reconcile of PR `repo#number` (and set `flags` on the PR); returns the
    generation it will handle. `urgent`: it does not wait for the PR's fix tasks (only
    their own ends' requests do); until a reconcile of that generation or a later one has
    finished, the PR's reconciles are urgent.

    The bump and the job are written in one statement: a bump without its job would make
    the already queued job (an older generation) exit, and nothing would reconcile the PR."""
    sql = BUMP_AND_QUEUE.format(bump=bump_statement(flags, urgent=urgent))
    params = {
        "repo": repo,
        "number": number,
        "iid": installation_id,
        "queue": DEFAULT_QUEUE,
        "task": RECONCILE_PR.name,
        "first_priority": FIRST_FEEDBACK_PRIORITY,
        "delay_s": float(delay_s),
        **flags,
    }
    async with autocommit(runtime.pool) as conn:
        cur = await conn.execute(sql, params)
        row = await cur.fetchone()
    assert row is not None and len(row["job_ids"]) == 1
    return int(row["generation"])


async def queue_fix(runtime: Runtime, task_id: int, conn: Conn | None = None) -> None:
    """Queue fix task `task_id`; with `conn`, in the transaction that created the task."""
    await runtime.queue.job(RUN_FIX_TASK, conn=conn).defer(task_id=task_id)
