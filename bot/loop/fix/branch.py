"""The task's branch: where it stands on the mirror, its commits, and pushing it to GitHub.

The bot commits and pushes, never the agent; a push carries the token, so it is refused when
anything rewired the worktree's git since the last check.
"""

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from bot.agents.diffcheck import check_change, git_tampering
from bot.git.cmd import GitError, git
from bot.git.worktrees import (
    Worktree,
    clean_keeping_setup_output,
    commit_all,
    delete_branch,
    push,
    push_commit,
    snapshot,
    snapshot_changes,
)
from bot.github.repo_api import RepoAPI
from bot.github.tokens import GitToken
from bot.labels import PARTIAL_LABEL, label_specs
from bot.loop.fix.job import BotIdentity, TaskFailed
from bot.loop.repo_cache import RepoCache

log = logging.getLogger(__name__)


async def branch_sha(mirror: Path, branch: str) -> str | None:
    """The commit `branch` points at on GitHub as the mirror last fetched it; None if absent."""
    try:
        out = await git(
            "rev-parse", "--verify", "--quiet", f"refs/remotes/origin/{branch}", cwd=mirror
        )
    except GitError:
        return None
    return out.strip() or None


async def descends(mirror: Path, sha: str, base: str) -> bool:
    """True when `sha` is `base` plus commits (work a crashed task left on its branch)."""
    if sha == base:
        return False
    try:
        await git("merge-base", "--is-ancestor", base, sha, cwd=mirror)
    except GitError:
        return False
    return True


async def check_not_rewritten(mirror: Path, head: str, base: str) -> None:
    """Raise TaskFailed `stale` when the PR branch at `head` no longer carries the task's
    `base` (a force-push rewrote it: the next round plans again from the new head). A head
    that is `base` or descends from it (sibling fixes merged meanwhile) is fine: the fix
    merges on top."""
    if head != base and not await descends(mirror, head, base):
        raise TaskFailed("stale", "the pull request was rewritten; the next round re-plans")


async def head_of(wt: Worktree) -> str:
    return (await git("rev-parse", "HEAD", cwd=wt.path)).strip()


async def reset_worktree(wt: Worktree, to: str = "HEAD") -> None:
    """Drop every change and untracked file in the worktree, and move it to `to`; what the
    repository's `setup` left stays, for the next issue of the batch and its tests."""
    await git("reset", "--hard", "--quiet", to, cwd=wt.path)
    await clean_keeping_setup_output(wt.path)


@dataclass
class TaskBranch:
    """The task's branch on GitHub. `remote_sha` is where it was last seen or pushed (None:
    not there yet); only `push` moves it, and tells `pushed` where (the task's row keeps it,
    for deleting the branch once the task ends)."""

    name: str
    url: str
    token: GitToken | None  # None: a remote that needs none (tests' local remotes)
    remote_sha: str | None
    check_lease: Callable[[], Awaitable[None]]
    # Whether the branch was on GitHub when the task began: if not, no PR is open from it.
    existed: bool = True
    # Told the sha of each push that went through (the runner records it on the task's row).
    pushed: Callable[[str], Awaitable[None]] | None = None

    async def push(self, wt: Worktree) -> None:
        """Push the worktree's HEAD to the branch, unless the branch moved meanwhile."""
        # The issue's lease makes this task the branch's only writer; the ref lease still
        # refuses the push if the branch moved after we looked (e.g. a person pushed).
        await self._guarded_push(
            wt, self.name, lambda token: push(wt, self.url, token, self.name, self.remote_sha)
        )
        self.remote_sha = await head_of(wt)
        if self.pushed is not None:
            await self.pushed(self.remote_sha)

    async def push_onto(self, wt: Worktree, branch: str, sha: str, expected: str) -> None:
        """Push commit `sha` (made in the worktree) to another `branch` of the repository,
        the PR branch a fix lands on, unless that branch moved from `expected` meanwhile
        (`GitError.ref_moved`)."""
        await self._guarded_push(
            wt, branch, lambda token: push_commit(wt.path, self.url, token, branch, expected, sha)
        )

    async def _guarded_push(
        self, wt: Worktree, target: str, send: Callable[[str | None], Awaitable[None]]
    ) -> None:
        """`send` a push to `target` with the token, once the lease and the worktree's git
        are checked; a token GitHub refuses is replaced once."""
        await self.check_lease()
        # The push carries the token: the repository's setup and test commands ran the
        # agent's code since the last check, and must not have rewired git.
        tampering = await git_tampering(wt.path)
        if tampering:
            raise TaskFailed("refused", "; ".join(tampering), tampered=True)
        token = await self.token.get() if self.token is not None else None
        try:
            await send(token)
        except GitError as exc:
            if self.token is None or token is None or not exc.auth_refused:
                raise
            # Revoked, or refused by a clock GitHub disagrees with: once more with a new one
            # (as the REST client does after a 401, bot.github.tokens).
            log.warning("git push to %s: token refused; minting another", target)
            self.token.refused(token)
            await send(await self.token.get())

    async def delete(self, wt: Worktree) -> None:
        """Delete the branch on GitHub once its fix PR is merged (nothing needs it then, and
        a repository would gather one per fix), only if it is still where the task pushed
        it. Best effort: a branch left behind is logged, the merged fix stands."""
        if self.remote_sha is None:
            return
        await self.check_lease()
        token = await self.token.get() if self.token is not None else None
        try:
            await delete_branch(wt.path, self.url, token, self.name, self.remote_sha)
        except GitError as exc:
            log.warning("task branch %s left on GitHub: %s", self.name, exc)
            return
        self.remote_sha = None


async def commit_fix(
    wt: Worktree,
    number: int,
    issue_title: str,
    identity: BotIdentity,
    *,
    paths: Sequence[str] | None = None,
) -> str:
    """Commit the worktree's change (with `paths`: the change to those paths only, the
    agent's) as the fix of issue `number`; its sha."""
    title = f"Fix #{number}: {issue_title}"[:200]
    message = f"{title}\n\nFixes #{number}\n"
    sha = await commit_all(wt, message, identity.name, identity.email, paths=paths)
    assert sha is not None, "verification passed on a worktree without changes"
    return sha


async def keep_partial_work(
    api: RepoAPI,
    branch: TaskBranch,
    wt: Worktree,
    number: int,
    *,
    agent: str,
    identity: BotIdentity,
    since: str | None = None,
) -> None:
    """Commit whatever a failed agent left and push it to the task branch; label the issue.
    `since`: a snapshot of the worktree taken just before the agent ran; only what changed
    after it is the agent's (None: everything since HEAD)."""
    problems = await check_change(wt.path, since or "HEAD")
    if problems:  # never commit (let alone push) a change that fails the checks
        log.warning("partial work on %s not kept: %s", branch.name, "; ".join(problems))
        return
    paths = None
    if since is not None:
        paths = await snapshot_changes(wt.path, since, await snapshot(wt.path))
    message = f"Partial work for #{number} (agent {agent})\n"
    if await commit_all(wt, message, identity.name, identity.email, paths=paths) is None:
        return
    await branch.push(wt)
    specs = label_specs([PARTIAL_LABEL])  # made on first use
    if api.memo is None:
        await api.ensure_labels(specs)
    else:  # through the labels the database knows: no listing once known
        await RepoCache(api, api.memo).ensure_labels(specs)
    await api.add_labels(number, [PARTIAL_LABEL])
