"""Real git repositories for the fleet tests: a bare "remote" in tmp_path and its mirror."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.git.cmd import git
from bot.git.worktrees import Mirrors, Worktree

IDENTITY = {
    "GIT_AUTHOR_NAME": "Test Human",
    "GIT_AUTHOR_EMAIL": "human@example.com",
    "GIT_COMMITTER_NAME": "Test Human",
    "GIT_COMMITTER_EMAIL": "human@example.com",
}

INITIAL_FILES = {
    "README.md": "# demo\n",
    "src/app.py": "def main() -> int:\n    return 0\n",
}


def process_alive(pid: int) -> bool:
    """True while `pid` runs (a zombie waiting to be reaped counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@dataclass
class Remote:
    """A bare repository standing in for GitHub, and a clone the "humans" push from."""

    bare: Path
    work: Path

    @property
    def url(self) -> str:
        return self.bare.as_uri()

    async def commit(
        self, files: dict[str, str | None], message: str = "change", branch: str = "main"
    ) -> str:
        """Write (or delete, for None) `files` on `branch`, commit and push; the new sha."""
        await git("checkout", "--quiet", "-B", branch, cwd=self.work)
        for name, content in files.items():
            path = self.work / name
            if content is None:
                path.unlink()
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(content)
        await git("add", "--all", cwd=self.work)
        await git("commit", "--quiet", "-m", message, cwd=self.work, env=IDENTITY)
        await git("push", "--quiet", "--force", "origin", f"{branch}:{branch}", cwd=self.work)
        return await self.sha(branch)

    async def sha(self, branch: str = "main") -> str:
        return (await git("rev-parse", f"refs/heads/{branch}", cwd=self.bare)).strip()


@pytest.fixture
async def remote(tmp_path: Path) -> Remote:
    """A remote with one commit on main."""
    bare, work = tmp_path / "remote.git", tmp_path / "human"
    await git("init", "--quiet", "--bare", "-b", "main", str(bare), cwd=tmp_path)
    await git("clone", "--quiet", bare.as_uri(), str(work), cwd=tmp_path)
    made = Remote(bare, work)
    await made.commit(dict(INITIAL_FILES), "initial")
    return made


@pytest.fixture
def mirrors(tmp_path: Path) -> Mirrors:
    return Mirrors(tmp_path / "data")


@pytest.fixture
async def worktree(tmp_path: Path, mirrors: Mirrors, remote: Remote) -> Worktree:
    """A task worktree at the remote's main, on branch `review-loop/pr-1/1`."""
    mirror = await mirrors.ensure("acme/demo", remote.url, None)
    path = mirrors.worktree_path("acme/demo", "task-1")
    return await mirrors.add_worktree(mirror, path, "review-loop/pr-1/1", await remote.sha())
