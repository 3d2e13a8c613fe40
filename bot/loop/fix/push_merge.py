"""Landing a fix PR over git: its commits pushed onto the PR branch, which GitHub marks merged.

A merge through the API (`PUT /pulls/{n}/merge`) creates a commit: a content-creating write,
one of the 80 a minute and 500 an hour GitHub allows an installation. A push is no REST
request, and GitHub marks a pull request merged once its head commit is on its base branch
(the "merge on the command line" of its merge instructions), with `closed`, `merged: true`
and the pusher as `merged_by`. So the bot lands a fix by pushing it onto the PR branch:

- the fix's head descends from the branch's head (no sibling landed meanwhile): the branch is
  fast-forwarded to it, the fix's commits as they are, one per finding;
- otherwise, where the repository allows merge commits, a merge commit of the two is made
  here (`git merge-tree`, parents in GitHub's order: the branch, then the fix) and pushed; a
  conflict is a conflict, as the merge API's 405 is, and the caller rebases;
- otherwise (a squash- or rebase-only repository, whose history stays linear) nothing is
  pushed: the caller rebases the fix onto the new head, verifies it again, and the next try
  is a fast-forward.

The push is leased on the head it was made from: a branch that moved meanwhile (a person's
push, a fix another worker landed) is fetched and tried again. A push GitHub refuses (branch
protection, GH006; a ruleset, GH013) is remembered for the branch (the repository cache's
TTL) and the fix, and the next ones into that branch, go through the merge API, which knows
how to meet required checks. So do fixes into a repository whose `merge_method` is set (the
method asked for is GitHub's to apply), and into the repository's default branch (a pull
request from it): the bot never pushes there.

GitHub marks the merge a moment after the push: the fix PR is read until it says so before
its branch is deleted, for deleting the head branch of a pull request still open closes it
unmerged.
"""

import enum
import logging

from tenacity import (
    AsyncRetrying,
    RetryError,
    before_sleep_log,
    retry_if_exception_type,
    retry_if_result,
    stop_after_attempt,
    stop_after_delay,
    wait_random_exponential,
)
from tenacity.wait import wait_base

from bot.git.cmd import GitError
from bot.git.worktrees import Worktree, merge_commit
from bot.github.records import PullInfo
from bot.github.repo_api import RepoAPI
from bot.loop.fix.branch import TaskBranch, check_not_rewritten, descends, head_of
from bot.loop.fix.job import FixJob, TaskFailed
from bot.loop.repo_cache import repo_cache

log = logging.getLogger(__name__)

PUSH_ATTEMPTS = 4
# How long GitHub may take to mark a pushed fix PR merged, and how often it is read meanwhile.
MARKED_DEADLINE_S = 30.0
MARKED_WAIT: wait_base = wait_random_exponential(multiplier=0.25, max=4)


class Landed(enum.Enum):
    MERGED = "merged"  # on the PR branch; GitHub marks the fix PR merged
    CONFLICT = "conflict"  # the fix and the branch's new head conflict
    BEHIND = "behind"  # not a fast-forward, and the repository allows no merge commits
    USE_API = "use the merge API"  # not over git: the merge API lands this one


class _BranchMoved(Exception):
    """The PR branch moved between its fetch and the leased push: fetched and tried again."""


async def over_git(job: FixJob) -> bool:
    """Whether the task's fix PR lands over git: no `merge_method` asked for, not into the
    default branch, and no push into the branch refused within the cache's TTL."""
    if job.config.merge_method is not None:
        return False
    cache = repo_cache(job.fleet.runtime, job.api)
    if job.task.base_ref == (await cache.repo()).default_branch:
        return False
    return await cache.push_refused(job.task.base_ref) is None


async def land_over_git(
    job: FixJob,
    branch: TaskBranch,
    wt: Worktree,
    fix_pr: PullInfo,
    title: str,
    *,
    wait: wait_base,
) -> Landed:
    """Push the fix PR's head (the worktree's HEAD) onto the PR branch, as the module says;
    `title` names the merge commit when one is made. A branch that keeps moving ends the
    task as `failed`, like a merge GitHub keeps refusing as "Base branch was modified"."""
    retrying = AsyncRetrying(
        retry=retry_if_exception_type(_BranchMoved),
        stop=stop_after_attempt(PUSH_ATTEMPTS),
        wait=wait,
        before_sleep=before_sleep_log(log, logging.INFO),
        reraise=True,
    )
    try:
        return await retrying(_push_once, job, branch, wt, fix_pr, title)
    except _BranchMoved as exc:
        raise TaskFailed(
            "failed", f"fix PR #{fix_pr.number} not landed: `{job.task.base_ref}` kept moving"
        ) from exc


async def _push_once(
    job: FixJob, branch: TaskBranch, wt: Worktree, fix_pr: PullInfo, title: str
) -> Landed:
    t = job.task
    try:
        base = await job.fleet.branch_head(t.repo, job.clone_url, t.installation_id, t.base_ref)
    except GitError as exc:
        if exc.git_args[:1] != ["rev-parse"]:
            raise
        raise TaskFailed(
            "obsolete", f"the pull request's branch `{t.base_ref}` is gone from GitHub"
        ) from exc
    await check_not_rewritten(job.mirror, base, t.base_sha)
    fix = await head_of(wt)
    if fix == base or await descends(job.mirror, base, fix):
        return Landed.MERGED  # on the branch already: a push whose answer was lost
    if not await descends(job.mirror, fix, base):
        if job.merge_method != "merge":
            return Landed.BEHIND
        identity = await job.identity()
        message = f"{title}\n\nMerges #{fix_pr.number} into `{t.base_ref}`.\n"
        merge = await merge_commit(wt.path, base, fix, message, identity.name, identity.email)
        if merge is None:
            return Landed.CONFLICT
        fix = merge
    try:
        await branch.push_onto(wt, t.base_ref, fix, base)
    except GitError as exc:
        if exc.ref_moved:
            raise _BranchMoved(str(exc)) from exc
        if not exc.remote_rejected:
            raise
        reason = _refusal(exc.stderr)
        log.info("task %s: GitHub refused the push onto %s: %s", t.id, t.base_ref, reason)
        await repo_cache(job.fleet.runtime, job.api).remember_push_refused(t.base_ref, reason)
        return Landed.USE_API
    log.info("task %s: fix PR #%d pushed onto %s at %s", t.id, fix_pr.number, t.base_ref, fix[:8])
    return Landed.MERGED


def _refusal(stderr: str) -> str:
    """GitHub's words for a refused push: its `remote: error:` lines, else git's."""
    said = [
        line.split("error:", 1)[1].strip()
        for line in stderr.splitlines()
        if line.startswith("remote:") and "error:" in line
    ]
    return " ".join(said) or stderr.strip().splitlines()[-1]


async def marked_merged(api: RepoAPI, number: int) -> bool:
    """Whether GitHub marked fix PR `number` merged after its head was pushed onto its base,
    read until it says so or `MARKED_DEADLINE_S` passed (reads, not writes). False leaves
    its branch in place: deleting the head of a pull request still open would close it."""

    def still_open(pull: PullInfo) -> bool:
        return pull.state == "open" and not pull.merged

    retrying = AsyncRetrying(
        retry=retry_if_result(still_open),
        stop=stop_after_delay(MARKED_DEADLINE_S),
        wait=MARKED_WAIT,
    )
    try:
        pull: PullInfo = await retrying(api.get_pull, number)
    except RetryError:
        log.warning(
            "GitHub has not marked fix PR #%d merged %.0f s after its head was pushed onto "
            "its base; its branch is kept",
            number, MARKED_DEADLINE_S,
        )  # fmt: skip
        return False
    if not pull.merged:
        log.warning("fix PR #%d was closed unmerged after its head was pushed", number)
    return pull.merged
