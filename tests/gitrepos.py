"""Real git repositories for the tests: a throwaway repository, and a bare "remote" with a
clone the "humans" push from."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from bot.git.cmd import git

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


def processes_with_argument(argument: str) -> list[int]:
    """The running (not zombie) processes, seen from here, with `argument` in their command
    line: how a test finds a program that runs in a PID namespace of its own, whose pids
    mean nothing here."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if argument.encode() in cmdline.read_bytes().split(b"\0") and process_alive(
                int(cmdline.parent.name)
            ):
                found.append(int(cmdline.parent.name))
        except OSError:
            continue
    return found


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


class GitRepo:
    """A throwaway repository: write files, commit, read back shas."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.git("init", "-q", "-b", "main")

    def git(self, *args: str) -> str:
        identity = ["-c", "user.name=Test", "-c", "user.email=test@example.com"]
        done = subprocess.run(
            ["git", *identity, "-c", "commit.gpgsign=false", *args],
            cwd=self.root,
            check=True,
            capture_output=True,
            text=True,
        )
        return done.stdout.strip()

    def write(self, path: str, text: str) -> None:
        target = self.root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)

    def commit(self, message: str = "change") -> str:
        self.git("add", "-A")
        self.git("commit", "-q", "--allow-empty", "-m", message)
        return self.git("rev-parse", "HEAD")
