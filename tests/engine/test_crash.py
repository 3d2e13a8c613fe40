"""A worker killed with SIGKILL mid-job: another worker finishes the job; nothing is lost. A
worker a peer took for dead (paused past the stalled timeout) keeps working when it wakes."""

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.engine.reaper import reap_once
from bot.runtime import open_runtime
from bot.webhooks.deliveries import Delivery, store_deliveries
from tests.conftest import make_settings
from tests.engine.slow_worker import CRASH_SETTINGS, SLOW

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


@pytest.mark.server_db
async def test_a_dispatch_batch_cut_by_sigkill_leaves_no_delivery_undone(
    tmp_path: Path, server_db_url: str, start_worker: object
) -> None:
    """One intake batch: a delivery no handler wants (stored ignored, no job), one whose
    handler hangs, and two more behind it. SIGKILL during the hang; the second worker
    dispatches every queued one of the batch, and the ignored one stays as it was."""
    settings = make_settings(tmp_path, server_db_url)
    marker = str(tmp_path / "handler")
    body = json.dumps({"marker": marker}).encode()
    batch = [
        Delivery.of("b-ignored", "gollum", b"{}", {}, ignored="no handler for gollum"),
        Delivery.of("b-slow", "slow_event", body, {"marker": marker}),
        Delivery.of("b-after-1", "unhandled", b"{}", {}),
        Delivery.of("b-after-2", "slow_event", body, {"marker": marker}),
    ]
    async with open_runtime(settings) as runtime:
        async with runtime.pool.connection() as conn:
            assert await store_deliveries(conn, batch) == [True] * 4
        first = start_worker()  # type: ignore[operator]
        assert wait_for(Path(marker + ".started")).split() == [str(first.pid)]
        os.kill(first.pid, signal.SIGKILL)
        first.wait()
        start_worker()  # type: ignore[operator]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            async with runtime.pool.connection() as conn:
                cur = await conn.execute(
                    "SELECT id, status, attempts FROM review_loop_deliveries ORDER BY id"
                )
                rows = {r["id"]: (r["status"], r["attempts"]) for r in await cur.fetchall()}
            if all(status != "queued" for status, _ in rows.values()):
                break
            await asyncio.sleep(0.1)
        assert rows == {
            "b-ignored": ("ignored", 0),  # decided by the intake: never claimed
            "b-slow": ("done", 2),  # claimed by the killed worker, then by the second
            "b-after-1": ("ignored", 2),
            "b-after-2": ("done", 2),
        }
        assert Path(marker + ".started").read_text().split()[0] == str(first.pid)


@pytest.mark.server_db
async def test_worker_pruned_while_paused_keeps_running_jobs(
    tmp_path: Path, server_db_url: str, start_worker: object
) -> None:
    """The worker is paused (SIGSTOP) past the stalled timeout and a peer's reaper prunes it
    and retries its job; resumed, it finishes that job and runs the next one, still alive."""
    settings = make_settings(tmp_path, server_db_url)
    async with open_runtime(settings) as runtime:
        first = tmp_path / "first"
        await runtime.queue.defer(SLOW, marker=str(first), seconds=1.0)
        worker = start_worker()  # type: ignore[operator]
        assert wait_for(Path(f"{first}.started")).split() == [str(worker.pid)]
        os.kill(worker.pid, signal.SIGSTOP)
        try:
            deadline = time.monotonic() + 60
            retried: list[int] = []
            while not retried and time.monotonic() < deadline:
                retried = await reap_once(
                    runtime.queue.app, runtime.pool, CRASH_SETTINGS["stalled_after_s"]
                )
                await asyncio.sleep(0.5)
            assert retried, "the paused worker's job was taken for stalled"
        finally:
            os.kill(worker.pid, signal.SIGCONT)
        second = tmp_path / "second"
        await runtime.queue.defer(SLOW, marker=str(second), seconds=0)
        wait_for(Path(f"{second}.done"))
        assert worker.poll() is None, "the worker is still running"
