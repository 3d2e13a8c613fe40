"""The job queue: procrastinate on the bot's PostgreSQL, and the tasks it runs.

Tasks find the process's services in the worker's additional context under "runtime".
Repeat events are coalesced by the callers (generation counters), never with procrastinate's
`queueing_lock`, which wedges when combined with retries in procrastinate 3.x.
"""

from typing import TYPE_CHECKING, Any

import procrastinate
from procrastinate import Blueprint, JobContext, RetryStrategy

if TYPE_CHECKING:
    from bot.runtime import Runtime

DISPATCH_RETRY = RetryStrategy(max_attempts=5, exponential_wait=2)


def runtime_of(context: JobContext) -> "Runtime":
    runtime: Runtime = context.additional_context["runtime"]
    return runtime


async def dispatch_delivery(context: JobContext, delivery_id: str) -> None:
    """Run every handler registered for a stored delivery."""
    from bot.dispatch import dispatch

    final = DISPATCH_RETRY.max_attempts is not None and (
        context.job.attempts >= DISPATCH_RETRY.max_attempts
    )
    await dispatch(runtime_of(context), delivery_id, final_attempt=final)


LOOP_RETRY = RetryStrategy(max_attempts=3, exponential_wait=2)


async def reconcile_pr(context: JobContext, repo: str, number: int, generation: int) -> None:
    """Bring one pull request's loop up to date."""
    from bot.loop import jobs

    await jobs.reconcile_pr(runtime_of(context), repo, number, generation)


async def run_fix_task(context: JobContext, task_id: int) -> None:
    """Run one fix task: agent, verification, fix PR."""
    from bot.loop import jobs

    await jobs.run_fix_task(runtime_of(context), task_id)


def build_job_app(url: str, *extra: Blueprint) -> procrastinate.App:
    """A procrastinate App for `url` with the bot's tasks (and any extra blueprints).

    Tasks are registered on each new App rather than on a shared module-level Blueprint:
    `add_tasks_from` renames a blueprint's tasks in place, so sharing one would stack
    namespaces on every App built in a process.
    """
    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=url))
    app.task(name="dispatch_delivery", pass_context=True, retry=DISPATCH_RETRY)(dispatch_delivery)
    app.task(name="reconcile_pr", pass_context=True, retry=LOOP_RETRY)(reconcile_pr)
    app.task(name="run_fix_task", pass_context=True, retry=LOOP_RETRY)(run_fix_task)
    for bp in extra:
        app.add_tasks_from(bp, namespace="extra")
    return app


def task(app: procrastinate.App, name: str) -> Any:
    """The registered task called `name` (namespaced names are looked up by their tail)."""
    for full_name, registered in app.tasks.items():
        if full_name == name or full_name.endswith(":" + name):
            return registered
    raise KeyError(name)
