"""What loop jobs share in one worker process: the runtime, mirrors, the agents catalog, the
warm worktrees. Built once by the worker's wiring and passed to every job it runs."""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.agents.catalog import MODEL_KINDS, AgentSpec, load_auditors, load_catalog
from bot.agents.models.client import preload_backends
from bot.audit.external import AuditorSpec
from bot.git.cmd import GitError, auth_env, git
from bot.git.worktrees import Mirrors, delete_branch
from bot.github.repo_api import RepoAPI
from bot.github.tokens import GitToken
from bot.loop.model_audit import ReviewCache
from bot.loop.model_store import ModelStore
from bot.loop.repo_cache import repo_cache
from bot.loop.store import TaskRow
from bot.loop.warm import WarmPool
from bot.runtime import Runtime

log = logging.getLogger(__name__)


@dataclass
class Fleet:
    runtime: Runtime
    mirrors: Mirrors
    catalog: dict[str, AgentSpec]
    warm: WarmPool
    review_cache: ReviewCache | None = None  # model reviews of unchanged files, kept
    auditors: dict[str, AuditorSpec] = field(default_factory=dict)  # the catalog's SARIF ones
    _background: set[asyncio.Task[None]] = field(default_factory=set)
    # Per PR branch: its lock and how many merges hold or wait for it (`merging`).
    _merges: dict[tuple[str, str], tuple[asyncio.Lock, list[int]]] = field(default_factory=dict)

    def spawn(self, work: Coroutine[Any, Any, None]) -> None:
        """Run `work` in the background of this process, keeping a reference until it ends."""
        task = asyncio.create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    @contextlib.asynccontextmanager
    async def merging(self, repo: str, branch: str) -> AsyncIterator[None]:
        """One fix PR merge at a time into PR branch `branch` from this process. GitHub takes
        them one at a time anyway (one at the same moment is refused "Base branch was
        modified"), and the first merge into a branch that requires the bot's check run
        teaches the next to post it before its merge instead of being refused too."""
        key = (repo, branch)
        lock, users = self._merges.setdefault(key, (asyncio.Lock(), [0]))
        users[0] += 1
        try:
            async with lock:
                yield
        finally:
            users[0] -= 1
            if not users[0]:
                del self._merges[key]

    @classmethod
    def build(cls, runtime: Runtime) -> "Fleet":
        """The fleet of a worker process (one per process: its warm pool lives in memory)."""
        settings = runtime.settings
        mirrors = Mirrors(settings.data_dir.resolve() / "git")
        catalog = load_catalog(settings.agents_file)
        if any(spec.kind in MODEL_KINDS for spec in catalog.values()):
            preload_backends()
        return cls(
            runtime=runtime,
            mirrors=mirrors,
            catalog=catalog,
            warm=WarmPool(mirrors),
            review_cache=ReviewCache(ModelStore(runtime.pool)),
            auditors=load_auditors(settings.agents_file),
        )

    async def token(self, installation_id: int, repo: str) -> str:
        return await self.runtime.github.installation_token(installation_id, repo)

    def git_token(self, installation_id: int, repo: str) -> GitToken:
        """The repository's token for git, fetched afresh at each use (see `GitToken`)."""
        return GitToken(self.runtime.github.tokens, installation_id, repo)

    async def mirror(self, repo: str, clone_url: str, installation_id: int) -> Path:
        """The repository's local mirror, fetched now."""
        token = await self.token(installation_id, repo)
        return await self.mirrors.ensure(repo, clone_url, token)

    async def branch_head(
        self, repo: str, clone_url: str, installation_id: int, branch: str
    ) -> str:
        """The commit `branch` points at on GitHub now (via a fresh mirror fetch)."""
        mirror = await self.mirror(repo, clone_url, installation_id)
        out = await git(
            "rev-parse", "--verify", f"refs/remotes/origin/{branch}^{{commit}}", cwd=mirror
        )
        return out.strip()

    async def delete_task_branch(
        self, api: RepoAPI, task: TaskRow, check_lease: Callable[[], Awaitable[None]]
    ) -> None:
        """Delete `task`'s branch on GitHub, over git from the mirror, only if it is still at
        `task.pushed_sha`, where the task last pushed it (a person's later push keeps it);
        `check_lease` runs just before. For a task whose fix PR the bot closed, or never
        opened: its branch has nothing left to do. Best effort: a branch left behind is
        logged."""
        if task.pushed_sha is None:
            return  # never pushed: nothing on GitHub
        clone_url = (await repo_cache(self.runtime, api).repo()).clone_url
        token = await self.token(task.installation_id, task.repo)
        await check_lease()
        try:
            # The task pushed its sha from a worktree of this mirror: it is there, no fetch.
            mirror = await self.mirrors.ensure(task.repo, clone_url, token, want=[task.pushed_sha])
            await delete_branch(mirror, clone_url, token, task.branch, task.pushed_sha)
        except GitError as exc:
            log.warning("task branch %s left on GitHub: %s", task.branch, exc)

    async def fetch_pull(
        self, mirror: Path, installation_id: int, repo: str, clone_url: str, number: int
    ) -> None:
        """Fetch a pull request's head (how a fork's commits are reached) into the mirror.

        It lands where GitHub keeps it, `refs/pull/<n>/head`: outside `refs/remotes/origin/`,
        where the mirror's next `fetch --prune` would delete it and a branch named
        `pull/<n>` would collide with it.
        """
        token = await self.token(installation_id, repo)
        ref = f"refs/pull/{number}/head"
        async with self.mirrors.lock(mirror):
            env = auth_env(token, clone_url)
            await git("fetch", "--no-tags", "origin", f"+{ref}:{ref}", cwd=mirror, env=env)
