"""A `review-loop worker` process on its own serves its histograms on
REVIEW_LOOP_WORKER_METRICS_PORT: the jobs it ran show there, and the fleet's counts do not."""

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.runtime import Runtime
from bot.webhooks.dispatch import DISPATCH_DELIVERIES
from tests.e2e.scenario import poll
from tests.support import free_port

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def job_counts(url: str) -> dict[tuple[str, str], float] | None:
    """`(task, outcome)` -> runs, from the worker's page; None while it does not answer."""
    try:
        page = httpx.get(url, timeout=5)
    except httpx.HTTPError:
        return None
    families = {f.name: f for f in text_string_to_metric_families(page.text)}
    assert "review_loop_deliveries" not in families  # counts are the web process's
    return {
        (s.labels["task"], s.labels["outcome"]): s.value
        for s in families["review_loop_job_seconds"].samples
        if s.name == "review_loop_job_seconds_count"
    }


async def test_a_lone_worker_serves_its_histograms(
    runtime: Runtime, db_url: str, workdir: Path
) -> None:
    """The worker ran a dispatch job, and its own page counts that run."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("REVIEW_LOOP_")} | {
        "REVIEW_LOOP_DATABASE_URL": db_url,
        "REVIEW_LOOP_DATA_DIR": str(workdir / "worker"),
        "REVIEW_LOOP_WORKER_METRICS_PORT": str(port),
        "REVIEW_LOOP_JOB_POLL_INTERVAL_S": "0.5",
    }
    log = (workdir / "worker.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "worker"], cwd=ROOT, env=env, stdout=log, stderr=log
    )
    log.close()
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        assert await poll(lambda: job_counts(url) is not None, what="the worker's page") is True
        await runtime.queue.defer(DISPATCH_DELIVERIES, delivery_ids=["never-stored"])
        counts = await poll(lambda: job_counts(url), what="the dispatch job on the worker's page")
        assert counts == {("dispatch_deliveries", "succeeded"): 1}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
