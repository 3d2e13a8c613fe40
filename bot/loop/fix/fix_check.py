"""A fix PR's `review-loop` check run, posted only where it is needed.

A fix PR the bot merges at once needs none: its findings are the PR's own audit's once it
is merged. So the bot tries the merge first. A PR branch whose protection requires the check
refuses it with 405 'Required status check "review-loop" is expected.'
(https://docs.github.com/en/rest/pulls/pulls#merge-a-pull-request: 405 "if merge cannot be
performed"; required checks must pass on the pull request's latest commit,
https://docs.github.com/en/pull-requests/collaborating-with-pull-requests/collaborating-on-repositories-with-code-quality-features/troubleshooting-required-status-checks):
then the check run is posted, the merge tried again, and the branch remembered in the
repository cache, so the next fix PRs into it get theirs before their merge, not after a
refused one. A fix PR left for a person (a merge GitHub blocks, a conflict that stays, a
merge that failed) gets its check run, so the person sees the audit of the head they would
merge.
"""

import logging

from bot.git.worktrees import Worktree
from bot.loop.fix.branch import TaskBranch, head_of
from bot.loop.fix.job import FixJob
from bot.loop.fix.verify import audit_fix_pr
from bot.loop.repo_cache import repo_cache

log = logging.getLogger(__name__)


class FixPrCheck:
    """The check run of one fix PR, the worktree `wt` holding its commits: on which heads it
    is posted, and the job of the latest merge attempt (a rebase moves the task's base, and
    the audit covers the lines changed since that base)."""

    def __init__(self, job: FixJob, wt: Worktree) -> None:
        self.job = job
        self._wt = wt
        self._posted: set[str] = set()

    def _branch(self) -> str:
        return self.job.task.base_ref

    async def post(self) -> bool:
        """The check run on the worktree's HEAD, unless it is there already; True when it
        was posted now (False too when the fix PR has none: `max_depth: 0`)."""
        head = await head_of(self._wt)
        if head in self._posted:
            return False
        if not await audit_fix_pr(self.job, self._wt):
            return False
        self._posted.add(head)
        return True

    async def before_merge(self, job: FixJob) -> None:
        """Post the check run ahead of the merge when the PR branch is known to require it."""
        self.job = job
        if await repo_cache(job.fleet.runtime, job.api).requires_check(self._branch()):
            await self.post()

    async def merge_refused(self) -> bool:
        """GitHub refused the merge for a missing required status check: the branch is
        remembered to require one, and the check run posted; True when it was posted now (the
        merge is worth trying again), False when it was there already."""
        await repo_cache(self.job.fleet.runtime, self.job.api).remember_requires_check(
            self._branch()
        )
        return await self.post()

    async def left_for_a_person(self, branch: TaskBranch) -> None:
        """The fix PR stays open for a person: its head gets the check run. Only when the
        worktree holds that head (what the task last pushed); after an agent's rerun that
        failed midway it may not, and auditing it would show another commit's findings."""
        head = await head_of(self._wt)
        if head != branch.remote_sha:
            log.info(
                "task %s: no check run for its fix PR: the worktree is at %s, not its head %s",
                self.job.task.id, head[:8], (branch.remote_sha or "")[:8],
            )  # fmt: skip
            return
        await self.post()
