"""What a reconcile saw of its PR and of the issues it planned fix tasks for, handed to them.

A fix task starts by reading its PR (still open? its head?) and each of its issues (still
open? the finding's marker, title and body): a person may have closed one since the round was
planned. The reconcile that planned the round read all of that moments before, so it keeps
what it saw (`keep`) under the PR's generation, in the shared cache (`bot.github.memo`). A
task that starts while the PR's generation is still that one takes the view (`fresh`)
instead of asking GitHub again, two requests a task on a usual round: every event about the
PR (a push, a close or a reopen, an issue of it closed or reopened, a person's command)
bumps the generation, so nothing GitHub told the bot has happened since the view was taken.
A view older than `FRESH_S` is not used (an event GitHub never delivered is not trusted away
for longer), nor is one for a task's retry or for a head other than the task's.

What it does not cover, as the reads it replaces did not either: a change whose webhook has
not been handled yet, or one made after the task starts. For the latter the task keeps the
generation it started at (`StartView.generation`): before a merge, one moved since makes it
look at the PR branch again (`bot.loop.fix.land.history_kept`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass

from bot.github.memo import Memo
from bot.github.records import IssueInfo
from bot.loop.store import LoopStore, TaskRow
from bot.runtime import Runtime

# How long a reconcile's view stands in for a task's own reads, at most.
FRESH_S = 60.0


@dataclass(frozen=True)
class StartView:
    """What a fix task starts from: the PR's head (None for a task without a PR), those of
    its issues already read, and the PR's generation read before any of it."""

    head_sha: str | None
    issues: Mapping[int, IssueInfo]
    generation: int | None


def _key(repo: str, number: int) -> str:
    return f"round-view:{repo}#{number}"


def _memo(runtime: Runtime) -> Memo:
    return Memo(runtime.pool, min(runtime.settings.github_cache_ttl_s, FRESH_S))


async def keep(
    runtime: Runtime,
    repo: str,
    number: int,
    generation: int,
    head_sha: str,
    issues: Iterable[IssueInfo],
) -> None:
    """Keep what the reconcile of `generation` read of PR `number`: its head and `issues` (as
    they are once its own changes are made: those it edited or closed are left out)."""
    value = {
        "generation": generation,
        "head_sha": head_sha,
        "issues": [asdict(issue) for issue in issues],
    }
    await _memo(runtime).put(_key(repo, number), value)


async def generation(runtime: Runtime, task: TaskRow) -> int | None:
    """The generation of the task's PR now (None without a PR, or before its first event)."""
    if task.pr_number is None:
        return None
    row = await LoopStore(runtime.pool).get(task.repo, task.pr_number)
    return None if row is None else row.generation


async def fresh(runtime: Runtime, task: TaskRow, generation: int | None) -> StartView | None:
    """The view `task` may start from instead of its own reads of the PR and its issues,
    `generation` being the PR's now: None for a retry, a task without a PR, a view of
    another head, of an earlier generation, older than `FRESH_S`, or without one of the
    task's issues."""
    if task.pr_number is None or task.attempts > 1 or generation is None:
        return None
    value = await _memo(runtime).get(_key(task.repo, task.pr_number))
    if value is None or value["head_sha"] != task.base_sha or value["generation"] != generation:
        return None
    issues = {
        int(i["number"]): IssueInfo(**{**i, "labels": tuple(i["labels"])}) for i in value["issues"]
    }
    if not set(task.issues) <= issues.keys():
        return None
    return StartView(value["head_sha"], {n: issues[n] for n in task.issues}, generation)
