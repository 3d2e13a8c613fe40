"""The one subprocess runner: its own process group, killed as a whole, capped output."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.process import CannotStart, group_alive, run
from tests.gitrepos import process_alive

ENV = {"PATH": os.environ["PATH"]}
SLEEPER = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)"


def python(source: str) -> list[str]:
    return [sys.executable, "-c", textwrap.dedent(source)]


def spawner(pid_file: Path, *, then: str, **popen: object) -> list[str]:
    """A program that starts a grandchild ignoring SIGTERM, writes its pid, then does `then`."""
    return python(
        f"""
        import subprocess, sys, time
        child = subprocess.Popen([sys.executable, "-c", {SLEEPER!r}], **{popen!r})
        open({str(pid_file)!r}, "w").write(str(child.pid))
        {then}
        """
    )


async def wait_for_file(path: Path) -> None:
    while not path.exists() or not path.read_text():
        await asyncio.sleep(0.01)


@pytest.fixture
def escapees() -> Iterator[list[int]]:
    """Pids of processes a test let escape the runner's group: killed after the test."""
    pids: list[int] = []
    yield pids
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


async def test_a_timeout_kills_the_group_with_its_grandchildren(tmp_path: Path) -> None:
    """Past its timeout the program is stopped, and so is a grandchild that ignores SIGTERM."""
    pid_file = tmp_path / "grandchild.pid"
    argv = spawner(pid_file, then="time.sleep(60)")

    done = await run(argv, cwd=tmp_path, env=ENV, timeout_s=1, kill_grace_s=0.2)

    assert done.timed_out
    assert done.returncode < 0  # ended by a signal
    assert not process_alive(int(pid_file.read_text()))


async def test_cancelling_the_caller_kills_the_group(tmp_path: Path) -> None:
    """A cancelled caller leaves nothing of the program running."""
    pid_file = tmp_path / "grandchild.pid"
    argv = spawner(pid_file, then="time.sleep(60)")
    running = asyncio.create_task(run(argv, cwd=tmp_path, env=ENV, timeout_s=60))
    await wait_for_file(pid_file)

    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running

    assert not process_alive(int(pid_file.read_text()))


async def test_leftovers_in_the_group_are_killed_when_the_program_exits(tmp_path: Path) -> None:
    """A background process the program leaves behind does not outlive the run."""
    pid_file = tmp_path / "background.pid"

    done = await run(spawner(pid_file, then="pass"), cwd=tmp_path, env=ENV, timeout_s=60)

    assert (done.returncode, done.timed_out) == (0, False)
    assert not process_alive(int(pid_file.read_text()))


async def test_a_child_that_keeps_stdout_open_does_not_stall_the_runner(
    tmp_path: Path, escapees: list[int]
) -> None:
    """A child that left the group and still holds stdout does not keep the run waiting."""
    pid_file = tmp_path / "escaped.pid"
    argv = spawner(pid_file, then="print('done')", start_new_session=True)

    done = await run(argv, cwd=tmp_path, env=ENV, timeout_s=30)
    escapees.append(int(pid_file.read_text()))

    assert (done.returncode, done.timed_out, done.stdout) == (0, False, b"done\n")
    assert process_alive(escapees[0])  # it really held stdout while the run ended


@pytest.mark.parametrize(
    ("stream", "limit_arg"),
    [pytest.param("stdout", "stdout_limit", id="stdout"),
     pytest.param("stderr", "stderr_limit", id="stderr")],
)  # fmt: skip
async def test_output_is_capped_to_its_last_bytes(
    tmp_path: Path, stream: str, limit_arg: str
) -> None:
    """Only the last `limit` bytes of an output are kept, and the cut is reported."""
    argv = python(f"import sys; sys.{stream}.write('x' * 10_000 + 'END')")

    limited = await run(argv, cwd=tmp_path, env=ENV, timeout_s=60, **{limit_arg: 10})
    whole = await run(argv, cwd=tmp_path, env=ENV, timeout_s=60)

    assert getattr(limited, stream) == b"xxxxxxxEND"
    assert getattr(limited, f"{stream}_truncated")
    assert len(getattr(whole, stream)) == 10_003
    assert not getattr(whole, f"{stream}_truncated")


async def test_stdin_env_and_merged_output_are_what_the_caller_gave(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The program reads the given bytes, sees the given environment and not the server's,
    and with `stderr_to_stdout` both outputs arrive in one stream."""
    monkeypatch.setenv("SERVERS_OWN", "1")
    argv = python(
        """
        import os, sys
        print(sys.stdin.read(), os.environ.get("GIVEN"), "SERVERS_OWN" in os.environ, flush=True)
        sys.stderr.write("to stderr\\n")
        """
    )
    env = {**ENV, "GIVEN": "yes"}

    done = await run(argv, cwd=tmp_path, env=env, timeout_s=60, stdin=b"in", stderr_to_stdout=True)

    assert done.stdout_text == "in yes False\nto stderr\n"
    assert done.stderr == b""


async def test_a_missing_program_is_a_clear_error(tmp_path: Path) -> None:
    """A program that cannot start raises CannotStart naming the program and the directory."""
    with pytest.raises(CannotStart, match=r"cannot start /nonexistent/tool in .*No such file"):
        await run(["/nonexistent/tool"], cwd=tmp_path, env=ENV, timeout_s=60)


def test_a_group_whose_only_member_is_an_unreaped_zombie_counts_as_gone() -> None:
    """A zombie nobody reaps (orphans under an init that never reaps) is not a live group."""
    zombie = subprocess.Popen([sys.executable, "-c", "pass"], start_new_session=True)
    try:
        while process_alive(zombie.pid):
            time.sleep(0.01)
        os.killpg(zombie.pid, 0)  # the cheap check alone would call it alive
        assert not group_alive(zombie.pid)
    finally:
        zombie.wait()


def test_a_group_with_a_running_member_is_alive() -> None:
    """A running process keeps its group alive."""
    sleeper = subprocess.Popen([sys.executable, "-c", SLEEPER], start_new_session=True)
    try:
        assert group_alive(sleeper.pid)
    finally:
        sleeper.kill()
        sleeper.wait()
    assert not group_alive(sleeper.pid)
