"""The repository's own commands (`setup`, `test` in its config), run in a task's worktree the
way CI would run them: a shell, a temporary HOME, and neither the App's token nor any agent's
key in their environment."""

import os
import shutil
import tempfile
from pathlib import Path

from bot.process import run

SETUP_TIMEOUT_S = 900.0
OUTPUT_TAIL_CHARS = 2000
# Bytes kept of the command's output: the tail of the message, with room for wide characters.
OUTPUT_LIMIT = 4 * OUTPUT_TAIL_CHARS


class RepoCommandFailed(Exception):
    """The repository's `setup` or `test` command exited non-zero or timed out."""


async def run_repo_command(
    worktree: Path, command: str, *, what: str = "setup", timeout_s: float = SETUP_TIMEOUT_S
) -> None:
    """A command of the repository's config (`setup`, `test`), run in the worktree the way CI
    would run it: a shell, a temporary HOME, and neither the App's token nor any agent's key
    in its environment. Cancelling the caller (lease lost, shutdown) stops the command too."""
    home = tempfile.mkdtemp(prefix="review-loop-setup-home-")
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": home,
        "CI": "true",
        "LANG": os.environ.get("LANG", "C.UTF-8"),
    }
    try:
        done = await run(
            ["sh", "-c", command],
            cwd=worktree,
            env=env,
            timeout_s=timeout_s,
            stdout_limit=OUTPUT_LIMIT,
            stderr_to_stdout=True,
            kill_grace_s=0,  # a command past its time is stopped at once, as CI would
            confined=True,  # sees no process of the bot's, where the OS allows
        )
    finally:
        shutil.rmtree(home, ignore_errors=True)
    if done.timed_out:
        raise RepoCommandFailed(f"{what} command timed out after {timeout_s:.0f} s")
    if done.returncode != 0:
        tail = done.stdout_text[-OUTPUT_TAIL_CHARS:]
        raise RepoCommandFailed(f"{what} command exited {done.returncode}: {tail}")
