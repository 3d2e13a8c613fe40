"""A contained agent process: its own group, a timeout, a private HOME, an allow-listed env."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot import process
from bot.agents.briefs import redact_secrets
from bot.git.cmd import redact

# Passed through from the server's environment to every agent; everything else is dropped
# unless the catalog allow-lists it for that agent.
SAFE_ENV = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TERM")
TAIL_BYTES = 8_000
MAX_OUTPUT_BYTES = 8_000_000
KILL_GRACE_S = process.KILL_GRACE_S


@dataclass(frozen=True)
class AgentResult:
    """How an agent run went. `ok` is False with a readable `error` on any failure."""

    ok: bool
    exit_code: int | None
    timed_out: bool
    duration_s: float
    stdout_tail: str = ""
    stderr_tail: str = ""
    error: str | None = None
    output: Any = None  # the parsed machine output of an output="json" agent
    cost_usd: float | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    # cli agents (presets): what the CLI reported
    turns: int | None = None
    final_message: str = ""  # the agent's last message, shown collapsed on the issue / PR
    version: str | None = None  # the CLI's version, as pinned


@dataclass
class Capture:
    """The outcome of one contained subprocess."""

    exit_code: int | None
    timed_out: bool
    stdout: bytes
    stderr: bytes
    stdout_truncated: bool
    duration_s: float
    error: str | None = None


def agent_env(allowed: Iterable[str], source: Mapping[str, str], home: Path) -> dict[str, str]:
    """Only safe basics, a private HOME and the variables this agent is allow-listed for."""
    env = {name: source[name] for name in SAFE_ENV if name in source}
    env.setdefault("PATH", os.defpath)
    env.setdefault("LANG", "C.UTF-8")
    env |= {
        "HOME": str(home),
        "TMPDIR": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "XDG_DATA_HOME": str(home / ".local" / "share"),
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_CONFIG_NOSYSTEM": "1",
    }
    env |= {name: source[name] for name in allowed if name in source}
    return env


async def contained(
    argv: Sequence[str],
    cwd: Path,
    env: Mapping[str, str],
    stdin: bytes | None,
    timeout_s: float,
    kill_grace_s: float,
) -> Capture:
    """Run `argv` contained (`bot.process.run`: its own group, killed as a whole on timeout
    and when it exits); a program that cannot start is a capture with an error."""
    try:
        done = await process.run(
            argv,
            cwd=cwd,
            env=env,
            timeout_s=max(timeout_s, 0.001),
            stdin=stdin,
            stdout_limit=MAX_OUTPUT_BYTES,
            stderr_limit=TAIL_BYTES,
            kill_grace_s=kill_grace_s,
            confined=True,  # sees no process of the bot's, where the OS allows
        )
    except process.CannotStart as exc:
        error = f"cannot start {argv[0]}: {exc.__cause__ or exc}"
        return Capture(None, False, b"", b"", False, 0.0, error=error)
    return Capture(
        exit_code=done.returncode,
        timed_out=done.timed_out,
        stdout=done.stdout,
        stderr=done.stderr,
        stdout_truncated=done.stdout_truncated,
        duration_s=done.duration_s,
    )


def tail(data: bytes | bytearray, secrets: Sequence[str]) -> str:
    text = data[-TAIL_BYTES:].decode(errors="replace")
    return redact_secrets(redact(text, secrets))
