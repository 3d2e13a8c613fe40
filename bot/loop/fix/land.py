"""Landing a fix: its fix PR opened, merged into the PR branch, and what a conflict leads to.

A conflict (DESIGN 1.7) is met by rebasing once onto the branch's new head; if that conflicts
too, the agent works again on the new head; a fix that still conflicts goes to a person, with
its PR left open. A fix the new head no longer needs is closed as obsolete.
"""

import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import replace
from typing import NoReturn

from tenacity import (
    AsyncRetrying,
    before_sleep_log,
    retry_if_exception_type,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential_jitter,
)
from tenacity.wait import wait_base

from bot.git.cmd import GitError, git
from bot.git.worktrees import Worktree
from bot.github.records import MergeMethod, PullInfo
from bot.github.repo_api import RepoAPI
from bot.loop.fix import push_merge
from bot.loop.fix.branch import TaskBranch, check_not_rewritten, head_of, reset_worktree
from bot.loop.fix.fix_check import FixPrCheck
from bot.loop.fix.job import FixJob, TaskFailed
from bot.loop.fix.verify import verify_against
from bot.loop.report import collapsed
from bot.loop.store import FIX_PR_LEFT_OPEN, PR_CLOSED_REASON, REJECTED_ERROR

log = logging.getLogger(__name__)

MERGE_ATTEMPTS = 4
MERGE_DEADLINE_S = 30.0
# GitHub moves a PR's head a moment after the push: give it that moment, a bit more each time.
MERGE_WAIT: wait_base = wait_exponential_jitter(initial=1, max=4, jitter=1)
# A fix PR's base GitHub told this long ago is trusted for a merge without reading it again.
BASE_FRESH_S = 5.0
TITLE_LIMIT = 200
CLOSED_MEANWHILE = "the pull request was closed or merged while the fix was made"

FixIssue = Callable[[FixJob, TaskBranch, Worktree, int], Awaitable[bool]]
"""Fix one issue afresh in the worktree, commit and push it; False when nothing was left to
fix. What the agent's rerun on a new head does for each issue it had fixed."""


class HeadNotCaughtUp(Exception):
    """GitHub refused a merge with 409: the fix PR's head is not (yet) the commit pushed."""


class BaseModified(Exception):
    """GitHub refused a merge with 405 "Base branch was modified": another merge into the PR
    branch landed at that moment; trying again merges on top of it."""


class CheckPosted(Exception):
    """GitHub refused a merge with 405 "Required status check ... is expected", and the fix
    PR's check run was posted now: trying again may merge it."""


class MergeBlocked(Exception):
    """GitHub refused a merge for a reason only a person can mend (required checks or
    reviews, a ruleset, a merge method the repository does not allow); `reason` quotes it."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def fix_pr_text(
    agent: str,
    fixed: Sequence[int],
    not_fixed: Sequence[tuple[int, str]],
    issue_title: str | None,
    cost: str = "",
    notes: Mapping[int, str] | None = None,
) -> tuple[str, str]:
    """Title and body of the fix PR for the `fixed` issues (`issue_title`: the one issue's);
    `not_fixed` names the batch's issues that failed, with why; `cost` what the run's model
    calls cost; `notes` what a coding-agent CLI said it did, per issue, shown collapsed."""
    if len(fixed) != 1:
        title = f"Fix {len(fixed)} findings: " + ", ".join(f"#{n}" for n in fixed)
    elif issue_title is None:
        title = f"Fix #{fixed[0]}"
    else:
        title = f"Fix #{fixed[0]}: {issue_title}"[:TITLE_LIMIT]
    closes = "\n".join(f"Fixes #{n}" for n in fixed)
    body = (
        f"{closes}\n\nAgent `{agent}` made one commit per finding; each was "
        "re-checked by the analyzer that reported it and nothing new was found.\n"
    )
    if not_fixed:
        body += "\nNot fixed here: " + ", ".join(f"#{n} ({why})" for n, why in not_fixed)
    if cost:
        body += ("\n\n" if not_fixed else "\n") + cost + "\n"
    for number, note in (notes or {}).items():
        if number in fixed and note.strip():
            body += "\n" + collapsed(f"What agent `{agent}` said about #{number}", note)
    return title, body


async def open_fix_pr(
    job: FixJob, title: str, body: str, fixed: list[int], *, new_branch: bool = False
) -> PullInfo:
    """Open (or find and update) the fix PR of the task's branch; the task is now `pushed`.
    `new_branch`: the task made the branch, so no PR from it is looked for first."""
    t = job.task
    fix_pr = await job.api.create_pull(
        title,
        body,
        head=t.branch,
        base=t.base_ref,
        marker={"kind": "fix", "issues": fixed, "task": t.id},
        look_first=not new_branch,
    )
    await job.store.update_task(t.id, status="pushed", fix_pr=fix_pr.number)
    return fix_pr


async def merge_fix_pr(
    api: RepoAPI,
    number: int,
    head: str,
    title: str,
    *,
    base: str,
    check_lease: Callable[[], Awaitable[None]],
    wait: wait_base = MERGE_WAIT,
    method: MergeMethod = "merge",
    checks_missing: Callable[[], Awaitable[bool]] | None = None,
    base_seen_at: float | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> bool:
    """Merge fix PR `number` at `head` into the PR branch `base` with `method`: True once
    merged, False on a merge conflict. A 409 (GitHub has not caught up with the push) or a
    405 "Base branch was modified" is tried again, `wait` apart; so is a 405 for a missing
    required status check when `checks_missing` posts the fix PR's check run (True: posted
    now). A head that never catches up, a closed PR or a refusal ends the task; what a
    person must mend (checks, reviews, rules, the method) raises MergeBlocked. A fix PR
    whose base is no longer `base` is never merged (`_BaseCheck`); `base_seen_at`: when
    (on `clock`) GitHub last said the fix PR's base was `base`, its create's answer say,
    which spares the attempts a read while it is recent (`BASE_FRESH_S`)."""
    retrying = AsyncRetrying(
        retry=retry_if_exception_type((HeadNotCaughtUp, BaseModified, CheckPosted)),
        stop=stop_after_attempt(MERGE_ATTEMPTS) | stop_after_delay(MERGE_DEADLINE_S),
        wait=wait,
        before_sleep=before_sleep_log(log, logging.INFO),
        reraise=True,
    )
    try:
        return await retrying(
            _merge_once,
            api,
            number,
            head,
            title,
            _BaseCheck(api, number, base, base_seen_at, clock),
            method,
            check_lease,
            checks_missing,
        )
    except (HeadNotCaughtUp, BaseModified) as exc:
        raise TaskFailed("failed", f"fix PR #{number} not merged: {exc}") from exc
    except CheckPosted as exc:  # posted, and refused still after the last attempt
        raise MergeBlocked(f"GitHub refused to merge fix PR #{number} ({method}): {exc}") from exc


class _BaseCheck:
    """That fix PR `number` is still based on the PR branch `base`, checked before each merge
    attempt, for GitHub moves it: once the PR is merged and its branch deleted, GitHub
    retargets the PRs based on that branch (our fix PRs) to the merged PR's base, the default
    branch. Merging then would put the bot's commit on the base branch, which it never does.
    The fix PR is read unless GitHub said its base less than `BASE_FRESH_S` ago (`seen_at`,
    on `clock`), as the answer to its create does just before the first merge. GitHub's
    merge takes no expected base: a move between the last read and the merge is not caught."""

    def __init__(
        self,
        api: RepoAPI,
        number: int,
        base: str,
        seen_at: float | None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.api, self.number, self.base = api, number, base
        self.seen_at, self.clock = seen_at, clock

    async def __call__(self) -> PullInfo | None:
        """The fix PR as read now; None when what GitHub said last is recent enough."""
        if self.seen_at is not None and self.clock() - self.seen_at < BASE_FRESH_S:
            return None
        pull = await self.api.get_pull(self.number)
        self.seen_at = self.clock()
        if pull.state == "open" and pull.base_ref != self.base:
            raise TaskFailed(
                "obsolete",
                f"GitHub moved fix PR #{self.number} onto `{pull.base_ref}` (the pull "
                f"request's branch `{self.base}` was deleted); review-loop merges fixes only "
                "into the pull request's branch",
            )
        return pull


async def _still_open(check_base: _BaseCheck) -> bool:
    """Before a push lands a fix PR: False when it is merged already (a person merged it);
    a fix PR a person closed unmerged ends the task `rejected`, as GitHub's merge API
    refuses it, and one GitHub moved onto another base ends it `obsolete` (`_BaseCheck`).
    Read unless GitHub told its state a moment ago; a close in the moment between that and
    the push is not caught (the push lands the fix all the same)."""
    pull = await check_base()
    if pull is None or pull.state == "open":
        return True
    if pull.merged:
        return False
    raise TaskFailed("rejected", REJECTED_ERROR)


async def _merge_once(
    api: RepoAPI,
    number: int,
    head: str,
    title: str,
    check_base: _BaseCheck,
    method: MergeMethod,
    check_lease: Callable[[], Awaitable[None]],
    checks_missing: Callable[[], Awaitable[bool]] | None,
) -> bool:
    await check_base()
    await check_lease()
    merged = await api.merge_pull(number, head, method, title=title)
    if merged.merged:
        return True
    if merged.conflict:
        log.info("fix PR #%d conflicts: %s", number, merged.message)
        return False
    if merged.closed:
        raise TaskFailed("rejected", REJECTED_ERROR)
    if merged.head_moved:
        raise HeadNotCaughtUp(merged.message)
    if merged.refusal == "base_modified":
        raise BaseModified(merged.message)
    if merged.refusal == "checks" and checks_missing is not None and await checks_missing():
        raise CheckPosted(merged.message)
    if merged.refusal is not None:  # checks, reviews, rules, method, or what we do not know
        raise MergeBlocked(f"GitHub refused to merge fix PR #{number} ({method}): {merged.message}")
    raise TaskFailed("failed", f"fix PR #{number} not merged: {merged.message}")


async def land(
    job: FixJob,
    branch: TaskBranch,
    wt: Worktree,
    fix_pr: PullInfo,
    fixed: list[int],
    title: str,
    fix_issue: FixIssue,
    *,
    wait: wait_base = MERGE_WAIT,
    base_seen_at: float | None = None,
) -> None:
    """Merge the fix PR into the PR branch (pushed onto it over git where it can, `push_merge`,
    else through GitHub's merge API); on a conflict rebase, then rerun the agent on the new
    head (`fix_issue` for each of the `fixed` issues); a conflict after both ends the task
    as `conflict`, its PR left open for a person. A merge GitHub blocks (required checks or
    reviews, rules) leaves the task `pushed`, its fix PR open for a person, who is told
    GitHub's message there and in the PR's summary. The fix PR's check run is posted only
    where it is needed (`FixPrCheck`): before a merge into a branch known to require it,
    after a merge refused for it, and on a fix PR left for a person. A merged fix PR's
    branch is deleted (over git: no REST write), as GitHub's "Automatically delete head
    branches" would; one left for a person keeps it."""
    check = FixPrCheck(job, wt)
    try:
        await _land(job, branch, wt, fix_pr, fixed, title, fix_issue, wait, check, base_seen_at)
    except TaskFailed as exc:
        if exc.status in FIX_PR_LEFT_OPEN:
            await check.left_for_a_person(branch)
        raise
    except MergeBlocked as exc:
        log.info("task %s: %s", job.task.id, exc.reason)
        await check.left_for_a_person(branch)
        await job.check_lease()
        await job.api.upsert_comment(
            fix_pr.number,
            {"kind": "merge-blocked", "pr": fix_pr.number},
            f"{exc.reason}\n\nreview-loop leaves this fix for a person to merge once GitHub "
            "allows it.",
        )
        await job.store.update_task(job.task.id, status="pushed", error=exc.reason)


async def _land(
    job: FixJob,
    branch: TaskBranch,
    wt: Worktree,
    fix_pr: PullInfo,
    fixed: list[int],
    title: str,
    fix_issue: FixIssue,
    wait: wait_base,
    check: FixPrCheck,
    base_seen_at: float | None,
) -> None:
    merge_title = f"Merge {title}"[:TITLE_LIMIT]
    if await _merged(job, branch, wt, fix_pr, merge_title, wait, check, base_seen_at):
        return
    job, rebased = await rebase_onto_head(job, branch, wt, fixed, fix_pr)
    if rebased and await _merged(job, branch, wt, fix_pr, merge_title, wait, check):
        return
    job = await rerun_on_head(job, branch, wt, fixed, fix_pr, fix_issue)
    if await _merged(job, branch, wt, fix_pr, merge_title, wait, check):
        return
    raise TaskFailed(
        "conflict",
        f"fix PR #{fix_pr.number} conflicts with `{job.task.base_ref}`, also after a rebase "
        "and after the agent ran again on its new head; a person has to resolve it",
    )


async def _merged(
    job: FixJob,
    branch: TaskBranch,
    wt: Worktree,
    fix_pr: PullInfo,
    title: str,
    wait: wait_base,
    check: FixPrCheck,
    base_seen_at: float | None = None,
) -> bool:
    """Merge the fix PR at the worktree's HEAD, delete its branch and record it; False on a
    conflict, or when the fix must first be rebased onto the PR branch's new head. Over git
    where it can (`push_merge`), else through GitHub's merge API. The branch goes before
    the record: a task recorded `merged` no longer counts as under way, so a sibling ending
    between the record and this job's end reconciles the round, and this job's end once
    more; the deletion is kept out of that moment."""
    job = await history_kept(job)
    head = await head_of(wt)
    landed = push_merge.Landed.USE_API
    async with job.fleet.merging(job.task.repo, job.task.base_ref):
        if await push_merge.over_git(job):
            check_base = _BaseCheck(job.api, fix_pr.number, job.task.base_ref, base_seen_at)
            if await _still_open(check_base):
                landed = await push_merge.land_over_git(job, branch, wt, fix_pr, title, wait=wait)
            else:
                landed = push_merge.Landed.MERGED
        if landed is push_merge.Landed.USE_API:
            await check.before_merge(job)
            merged = await merge_fix_pr(
                job.api,
                fix_pr.number,
                head,
                title,
                base=job.task.base_ref,
                check_lease=job.check_lease,
                wait=wait,
                method=job.merge_method,
                checks_missing=check.merge_refused,
                base_seen_at=base_seen_at,
            )
        else:
            merged = landed is push_merge.Landed.MERGED
    if not merged:
        return False
    if landed is push_merge.Landed.USE_API or await push_merge.marked_merged(
        job.api, fix_pr.number
    ):
        await branch.delete(wt)  # merged: the fix PR's branch has nothing left to do
    await job.store.update_task(job.task.id, status="merged")
    return True


async def history_kept(job: FixJob) -> FixJob:
    """Refuse to propose or merge a fix into a PR that was closed, or whose branch was
    rewritten, since the task started: its fix PR stands on the old history, and GitHub
    merges it cleanly whenever the fix's lines do not clash, bringing back what a force-push
    took out (a commit, a file). Looked at only when an event about the PR came in since
    (its generation moved): the closed PR's reconcile has marked its row by then, and one
    fetch shows the branch; a head that descends from the task's base (sibling fixes merged
    meanwhile) is fine. The job, with the generation it was checked at."""
    t = job.task
    if t.pr_number is None or job.generation is None:
        return job
    row = await job.store.get(t.repo, t.pr_number)
    if row is None or row.generation == job.generation:
        return job
    if row.reason == PR_CLOSED_REASON:
        raise TaskFailed("obsolete", CLOSED_MEANWHILE)
    head = await job.fleet.branch_head(t.repo, job.clone_url, t.installation_id, t.base_ref)
    await check_not_rewritten(job.mirror, head, t.base_sha)
    return replace(job, generation=row.generation)


async def move_to_head(job: FixJob) -> FixJob:
    """The job moved onto the PR branch's current head (fetched now), recorded as the task's
    base; a rewritten branch (force-push) ends the task, the next round plans again."""
    t = job.task
    head = await job.fleet.branch_head(t.repo, job.clone_url, t.installation_id, t.base_ref)
    await check_not_rewritten(job.mirror, head, t.base_sha)
    await job.check_lease()
    await job.store.update_task(t.id, base_sha=head)
    return job.on_base(head)


async def rebase_onto_head(
    job: FixJob, branch: TaskBranch, wt: Worktree, fixed: list[int], fix_pr: PullInfo
) -> tuple[FixJob, bool]:
    """Rebase the task's commits onto the PR branch's new head, verify the result as a new
    fix, push it. The job on its new base, and False when the rebase conflicts or the
    rebased change fails verification."""
    old_base = job.task.base_sha
    job = await move_to_head(job)
    new_base = job.task.base_sha
    identity = await job.identity()
    env = {"GIT_COMMITTER_NAME": identity.name, "GIT_COMMITTER_EMAIL": identity.email}
    try:
        await git(
            "-c", "commit.gpgSign=false", "rebase", "--no-verify", "--quiet",
            "--onto", new_base, old_base, cwd=wt.path, env=env,
        )  # fmt: skip
    except GitError as exc:
        log.info("task %s: the rebase onto %s conflicts: %s", job.task.id, new_base[:8], exc)
        with contextlib.suppress(GitError):
            await git("rebase", "--abort", cwd=wt.path)
        return job, False
    if await head_of(wt) == new_base:
        await close_obsolete(job, fix_pr)  # every commit was already there
    why = await verify_against(job, wt, new_base, fixed)
    if why:
        log.info("task %s: the rebased fix is refused: %s", job.task.id, why)
        return job, False
    await branch.push(wt)
    return job, True


async def rerun_on_head(
    job: FixJob,
    branch: TaskBranch,
    wt: Worktree,
    fixed: list[int],
    fix_pr: PullInfo,
    fix_issue: FixIssue,
) -> FixJob:
    """Start over from the PR branch's new head: the agent fixes the same issues again and
    the fix PR's branch is replaced by the new commits. The job on its new base."""
    job = await move_to_head(job)
    await reset_worktree(wt, job.task.base_sha)
    refixed = []
    for number in fixed:
        try:
            if await fix_issue(job, branch, wt, number):
                refixed.append(number)
        except TaskFailed as exc:
            raise TaskFailed(
                exc.status, f"run again on the new head: {exc.reason}", tampered=exc.tampered
            ) from exc
    if not refixed:
        await close_obsolete(job, fix_pr)
    return job


async def close_obsolete(job: FixJob, fix_pr: PullInfo) -> NoReturn:
    """The PR branch's new head (the task's base) no longer has what the fix PR fixed: close
    it, say why, and end the task as obsolete."""
    await job.check_lease()
    await job.api.upsert_comment(
        fix_pr.number,
        {"kind": "obsolete", "pr": fix_pr.number},
        f"Closed: `{job.task.base_ref}` at {job.task.base_sha[:10]} no longer has the findings "
        "this pull request fixed.",
    )
    await job.api.close_pull(fix_pr.number)
    raise TaskFailed("obsolete", "the pull request's new head no longer has the findings")
