"""The repository's own commands (`setup`, `test` in its config), run in a task's worktree the
way CI would run them: a shell, a temporary HOME, and neither the App's token nor any agent's
key in their environment."""

import asyncio
import contextlib
import os
import shutil
import signal
import tempfile
from pathlib import Path

SETUP_TIMEOUT_S = 900.0


class RepoCommandFailed(Exception):
    """The repository's `setup` or `test` command exited non-zero or timed out."""


async def run_repo_command(
    worktree: Path, command: str, *, what: str = "setup", timeout_s: float = SETUP_TIMEOUT_S
) -> None:
    """A command of the repository's config (`setup`, `test`), run in the worktree the way CI
    would run it: a shell, a temporary HOME, and neither the App's token nor any agent's key
    in its environment."""
    home = tempfile.mkdtemp(prefix="review-loop-setup-home-")
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": home,
        "CI": "true",
        "LANG": os.environ.get("LANG", "C.UTF-8"),
    }
    try:
        proc = await asyncio.create_subprocess_exec(
            "sh",
            "-c",
            command,
            cwd=worktree,
            env=env,
            start_new_session=True,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), timeout_s)
        except TimeoutError:
            _kill_group(proc.pid)
            await proc.wait()
            raise RepoCommandFailed(f"{what} command timed out after {timeout_s:.0f} s") from None
        except asyncio.CancelledError:  # the task stopped (lease lost, shutdown): so does setup
            _kill_group(proc.pid)
            raise
        if proc.returncode != 0:
            tail = out.decode(errors="replace")[-2000:]
            raise RepoCommandFailed(f"{what} command exited {proc.returncode}: {tail}")
    finally:
        shutil.rmtree(home, ignore_errors=True)


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
