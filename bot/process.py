"""The one way the bot runs a program: in its own process group, killed as a whole.

A timeout sends the group SIGTERM, then SIGKILL after a grace period; cancelling the caller
kills the group at once; whatever the program leaves running in its group is killed when it
exits. Input and output go through unlinked temporary files, not pipes, so a leftover child
that holds them open (or that escaped the group) cannot stall the caller.

Code that comes from a repository (its `setup` and `test`, agents) runs `confined`: where the
OS allows it (util-linux `unshare`, as root or with unprivileged user namespaces), in its own
PID namespace with its own /proc, so it sees no process of the bot's: neither the worker's
`/proc/<pid>/environ` and `cmdline` nor any other. Elsewhere it runs unconfined, and only the
worker's being non-dumpable (`bot.held_secrets`) keeps a non-root program out of its /proc.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

__all__ = ["CannotStart", "Completed", "confinement", "group_alive", "kill_group", "run"]

KILL_GRACE_S = 5.0
GROUP_EXIT_WAIT_S = 5.0
_POLL_S = 0.01
_PROBE_TIMEOUT_S = 10.0
_confinement: tuple[str, ...] | None = None
log = logging.getLogger(__name__)


class CannotStart(OSError):
    """The program could not be started (not installed, not executable, no such `cwd`).
    An OSError, as the failure to start a program always was."""


@dataclass(frozen=True)
class Completed:
    """How a run ended. `returncode` is negative when a signal ended it (-15, -9: killed)."""

    returncode: int
    stdout: bytes
    stderr: bytes
    timed_out: bool = False
    stdout_truncated: bool = False  # only the last `stdout_limit` bytes were kept
    stderr_truncated: bool = False
    duration_s: float = 0.0

    @property
    def stdout_text(self) -> str:
        return self.stdout.decode(errors="replace")

    @property
    def stderr_text(self) -> str:
        return self.stderr.decode(errors="replace")


async def run(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    timeout_s: float,
    stdin: bytes | None = None,
    stdout_limit: int | None = None,
    stderr_limit: int | None = None,
    stderr_to_stdout: bool = False,
    kill_grace_s: float = KILL_GRACE_S,
    confined: bool = False,
) -> Completed:
    """Run `argv` in `cwd` with exactly `env` and return how it ended; never raises for the
    program's own failure (exit code, timeout: see `Completed`).

    `stdin` is fed to the program (None: it reads nothing). Of each output only the last
    `*_limit` bytes are kept (None: all of it). Raises `CannotStart` when the program cannot
    be started; cancellation kills the group and propagates. `confined`: run it in its own
    PID namespace where the OS allows (see the module's docstring).
    """
    if confined and (prefix := await confinement()):
        # Inside the namespace a program that cannot start is exit 127: find out here.
        program = _find_program(argv[0], cwd, env)
        if program is None or not cwd.is_dir():
            missing = argv[0] if program is None else f"the directory {cwd}"
            raise CannotStart(f"cannot start {argv[0]} in {cwd}: {missing} not found")
        argv = [*prefix, program, *argv[1:]]
    started = time.monotonic()
    with contextlib.ExitStack() as files:
        stdout_file = files.enter_context(tempfile.TemporaryFile(prefix="review-loop-out-"))
        stderr_file = (
            stdout_file
            if stderr_to_stdout
            else files.enter_context(tempfile.TemporaryFile(prefix="review-loop-err-"))
        )
        stdin_file: IO[bytes] | int = asyncio.subprocess.DEVNULL
        if stdin is not None:
            stdin_file = files.enter_context(tempfile.TemporaryFile(prefix="review-loop-in-"))
            stdin_file.write(stdin)
            stdin_file.seek(0)
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                cwd=cwd,
                env=dict(env),
                stdin=stdin_file,
                stdout=stdout_file,
                stderr=stderr_file,
                start_new_session=True,  # its own session, so its own process group
            )
        except OSError as exc:
            raise CannotStart(f"cannot start {argv[0]} in {cwd}: {exc}") from exc
        timed_out = await _wait(proc, timeout_s, kill_grace_s)
        assert proc.returncode is not None
        stdout, stdout_cut = _tail(stdout_file, stdout_limit)
        stderr, stderr_cut = (b"", False) if stderr_to_stdout else _tail(stderr_file, stderr_limit)
    return Completed(
        returncode=proc.returncode,
        stdout=stdout,
        stderr=stderr,
        timed_out=timed_out,
        stdout_truncated=stdout_cut,
        stderr_truncated=stderr_cut,
        duration_s=time.monotonic() - started,
    )


async def _wait(proc: asyncio.subprocess.Process, timeout_s: float, grace_s: float) -> bool:
    """Wait for the leader, within `timeout_s`; then make sure its whole group is gone.
    True when the timeout ended it."""
    timed_out = False
    try:
        await asyncio.wait_for(proc.wait(), max(timeout_s, 0.0))
    except TimeoutError:
        timed_out = True
        kill_group(proc.pid, signal.SIGTERM)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(proc.wait(), grace_s)
    finally:
        # Children that outlive the leader, ignore SIGTERM, or a cancelled caller: the group
        # goes, at once. Sent before any await, so a second cancellation cannot skip it.
        kill_group(proc.pid, signal.SIGKILL)
        if proc.returncode is None:
            await proc.wait()
        await _wait_group_gone(proc.pid)
    return timed_out


async def confinement() -> tuple[str, ...]:
    """The argv prefix that runs a program in its own PID namespace with a /proc of its own
    (`unshare`), or () where this OS refuses one; probed once per process."""
    global _confinement
    if _confinement is None:
        _confinement = await _probe_confinement()
        if not _confinement:
            log.warning(
                "repository code runs without its own PID namespace (`unshare --pid` is missing "
                "or refused here): it can see the bot's processes; see docs/operations.md"
            )
    return _confinement


async def _probe_confinement() -> tuple[str, ...]:
    unshare = shutil.which("unshare")
    if unshare is None or not Path("/proc/self").is_dir():
        return ()
    # --kill-child: the namespace dies with `unshare`, which the process group kill reaches.
    prefix = [unshare, "--pid", "--fork", "--mount-proc", "--kill-child"]
    if os.geteuid() != 0:
        prefix[1:1] = ["--user", "--map-current-user"]
    try:
        proc = await asyncio.create_subprocess_exec(
            *prefix,
            "true",
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
            start_new_session=True,
        )
    except OSError:
        return ()
    try:
        code = await asyncio.wait_for(proc.wait(), _PROBE_TIMEOUT_S)
    except TimeoutError:
        kill_group(proc.pid)
        await proc.wait()
        return ()
    return tuple(prefix) if code == 0 else ()


def _find_program(name: str, cwd: Path, env: Mapping[str, str]) -> str | None:
    """Where exec would find `name` (a path: relative to `cwd`), or None."""
    if os.sep in name:
        path = cwd / name
        return str(path) if path.is_file() and os.access(path, os.X_OK) else None
    return shutil.which(name, path=env.get("PATH", os.defpath))


def kill_group(pgid: int, sig: signal.Signals = signal.SIGKILL) -> None:
    """Send `sig` to process group `pgid`; a group that is already gone is fine."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def group_alive(pgid: int) -> bool:
    """True while a process of group `pgid` runs; zombies that wait for a parent that never
    reaps them count as gone. Cheap when the group is empty: one signal-0, no /proc scan."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # a member we may not signal: the scan tells whether it runs
    if not Path("/proc").is_dir():
        return True
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[2] == str(pgid) and fields[0] != "Z":
            return True
    return False


async def _wait_group_gone(pgid: int) -> None:
    """SIGKILL is delivered asynchronously: wait (briefly) until the group has really died."""
    deadline = time.monotonic() + GROUP_EXIT_WAIT_S
    while group_alive(pgid) and time.monotonic() < deadline:  # noqa: ASYNC110 - polling
        await asyncio.sleep(_POLL_S)


def _tail(file: IO[bytes], limit: int | None) -> tuple[bytes, bool]:
    """The last `limit` bytes written to `file` (all with None), and whether some were cut."""
    size = file.seek(0, os.SEEK_END)
    start = 0 if limit is None else max(0, size - limit)
    file.seek(start)
    return file.read(), start > 0
