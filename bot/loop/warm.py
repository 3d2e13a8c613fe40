"""Pre-warmed worktrees: prepared at a PR's head while the auditor runs, claimed by a task.

A warm worktree has been checked out and has run the repository's `setup` command, so the
task that claims it starts at once: the spawn cost s leaves the critical path. Warm trees
belong to one worker machine; one nobody claims is removed by the janitor.
"""

import asyncio
import logging
import shutil
import time
import uuid
from pathlib import Path

from bot.git.cmd import git
from bot.git.worktrees import Mirrors, Worktree, record_setup_output
from bot.loop.repo_commands import run_repo_command

log = logging.getLogger(__name__)

READY = ".review-loop-warm-ready"
SETUP_TIMEOUT_S = 900.0
STALE_AFTER_S = 600.0
CLAIM_WAIT_S = 60.0


class WarmPool:
    def __init__(self, mirrors: Mirrors) -> None:
        self.mirrors = mirrors
        self.root = mirrors.root / "warm"

    def _dir(self, repo: str, sha: str) -> Path:
        owner, name = repo.split("/")
        return self.root / f"{owner}__{name}" / sha

    async def prepare(self, repo: str, mirror: Path, sha: str, setup: str | None) -> bool:
        """Make one warm worktree at `sha` unless one is ready or being made; True if made."""
        parent = self._dir(repo, sha)
        parent.mkdir(parents=True, exist_ok=True)
        try:  # once per commit: a claimed worktree is not replaced
            (parent / ".prepared").open("x").close()
        except FileExistsError:
            return False
        token = uuid.uuid4().hex[:10]
        path = parent / token
        try:
            wt = await self.mirrors.add_worktree(mirror, path, f"review-loop/warm/{token}", sha)
        except BaseException:
            shutil.rmtree(parent, ignore_errors=True)  # nothing half-made for claims to wait on
            raise
        try:
            if setup:
                await run_repo_command(wt.path, setup)
                await record_setup_output(wt.path)  # kept by the task, never committed
        except BaseException:
            await self.mirrors.remove_worktree(wt)
            shutil.rmtree(parent, ignore_errors=True)
            raise
        (parent / f"{token}{READY}").write_text(str(time.time()))
        log.info("warm worktree ready for %s at %s", repo, sha[:8])
        return True

    async def claim(
        self,
        repo: str,
        mirror: Path,
        sha: str,
        path: Path,
        branch: str,
        *,
        wait_s: float = CLAIM_WAIT_S,
    ) -> Worktree | None:
        """Take a ready warm worktree at `sha`, move it to `path` on `branch`; None if none.

        One still being prepared (its checkout or setup running) is waited for, up to
        `wait_s`: it is further along than a cold spawn would be. Every task of a parallel
        round waits, and those that lose the claim then spawn cold: the measured spawn cost
        s includes that wait, so the planner sees what parallel really costs."""
        parent = self._dir(repo, sha)
        if not parent.is_dir():
            return None
        deadline = time.monotonic() + wait_s
        while not any(parent.glob(f"*{READY}")) and time.monotonic() < deadline:
            if not any(p.is_dir() for p in parent.iterdir()):
                return None  # nothing in preparation
            await asyncio.sleep(0.05)
        for ready in sorted(parent.glob(f"*{READY}")):
            token = ready.name.removesuffix(READY)
            try:
                ready.unlink()  # the claim: only one task can unlink it
            except FileNotFoundError:
                continue
            source = parent / token
            path.parent.mkdir(parents=True, exist_ok=True)
            # All three under the mirror's lock: making and deleting a branch reads every
            # worktree's metadata, which a concurrent `git worktree add` is still writing
            # ("failed to read .../worktrees/task-2/commondir").
            async with self.mirrors.lock(mirror):
                await git("worktree", "move", str(source), str(path), cwd=mirror)
                await git("checkout", "--quiet", "-B", branch, cwd=path)
                await git("branch", "-D", f"review-loop/warm/{token}", cwd=path)
            return Worktree(path, branch, sha, mirror)
        return None

    async def drop_stale(self, max_age_s: float = STALE_AFTER_S) -> int:
        """Remove warm worktrees nobody claimed within `max_age_s`."""
        if not self.root.is_dir():
            return 0
        removed = 0
        now = time.time()
        for ready in self.root.glob(f"*/*/*{READY}"):
            try:
                age = now - float(ready.read_text() or 0)
            except (OSError, ValueError):
                continue
            if age < max_age_s:
                continue
            try:
                ready.unlink()
            except FileNotFoundError:
                continue
            source = ready.parent / ready.name.removesuffix(READY)
            mirror = Path((await git("rev-parse", "--git-common-dir", cwd=source)).strip())
            if not mirror.is_absolute():
                mirror = (source / mirror).resolve()
            token = source.name
            await self.mirrors.remove_worktree(
                Worktree(source, f"review-loop/warm/{token}", "", mirror)
            )
            removed += 1
        for commit_dir in self.root.glob("*/*"):  # one folder per audited commit
            if now - commit_dir.stat().st_mtime > max_age_s and not any(
                not p.name.startswith(".") for p in commit_dir.iterdir()
            ):
                shutil.rmtree(commit_dir, ignore_errors=True)
        return removed
