"""Running an analyzer or git as a real subprocess, with a timeout that kills it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["AuditError", "Completed", "run_command"]


class AuditError(RuntimeError):
    """An auditor could not run or its output could not be read; the message says why."""


@dataclass(frozen=True)
class Completed:
    returncode: int
    stdout: str
    stderr: str


async def run_command(
    args: Sequence[str],
    cwd: Path,
    timeout_s: float,
    env: Mapping[str, str] | None = None,
) -> Completed:
    """Run `args` in `cwd` without stdin; AuditError if it cannot start or overruns."""
    name = " ".join(args[:2])
    try:
        process = await asyncio.create_subprocess_exec(
            *args,
            cwd=cwd,
            env=dict(env) if env is not None else None,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
    except OSError as exc:
        raise AuditError(f"cannot start {name} in {cwd}: {exc}") from exc
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), timeout_s)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
        raise AuditError(f"{name} did not finish within {timeout_s:g} s in {cwd}") from None
    return Completed(
        process.returncode if process.returncode is not None else -1,
        stdout.decode("utf-8", errors="replace"),
        stderr.decode("utf-8", errors="replace"),
    )
