"""A worker killed with SIGKILL mid-job: another worker finishes the job; nothing is lost."""

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.runtime import open_runtime
from tests.conftest import make_settings
from tests.engine.slow_worker import SLOW

ROOT = Path(__file__).parents[2]


def wait_for(path: Path, timeout: float = 30) -> str:
    """The file's text once it exists (polling; fails after `timeout`)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().strip():
            return path.read_text()
        time.sleep(0.05)
    raise AssertionError(f"{path} did not appear within {timeout} s")


@pytest.fixture
def start_worker(server_db_url: str) -> Iterator[object]:
    procs: list[subprocess.Popen[bytes]] = []

    def start() -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.engine.slow_worker", server_db_url], cwd=ROOT
        )
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


@pytest.mark.server_db
async def test_job_of_a_killed_worker_is_finished_by_another(
    tmp_path: Path, server_db_url: str, start_worker: object
) -> None:
    """SIGKILL in the middle of a job; a second worker picks it up and runs it to the end."""
    settings = make_settings(tmp_path, server_db_url)
    async with open_runtime(settings) as runtime:
        marker = tmp_path / "job"
        job_id = await runtime.queue.defer(SLOW, marker=str(marker), seconds=60)
        first = start_worker()  # type: ignore[operator]
        assert wait_for(Path(str(marker) + ".started")).split() == [str(first.pid)]
        os.kill(first.pid, signal.SIGKILL)
        first.wait()
        async with runtime.pool.connection() as conn:  # the next run should be short
            await conn.execute(
                """UPDATE procrastinate_jobs SET args = jsonb_set(args, '{seconds}', '0.5')
                    WHERE id = %s""",
                (job_id,),
            )
        second = start_worker()  # type: ignore[operator]
        done = wait_for(Path(str(marker) + ".done"))
        assert done.split() == [str(second.pid)]
        assert Path(str(marker) + ".started").read_text().split() == [
            str(first.pid),
            str(second.pid),
        ]
        # The task writes its done file just before the worker records the job's end.
        deadline = time.monotonic() + 30
        status = await runtime.queue.app.job_manager.get_job_status_async(job_id)
        while status.value == "doing" and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
            status = await runtime.queue.app.job_manager.get_job_status_async(job_id)
        assert status.value == "succeeded"
