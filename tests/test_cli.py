"""The `review-loop` command as an operator runs it: serve, replay, status, migrate."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.support import FIXTURES, SECRET, free_port

CLI = [sys.executable, "-m", "bot.cli"]


@pytest.fixture
def data_dir(workdir: Path) -> Path:
    return workdir


def cli_env(data_dir: Path, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REVIEW_LOOP_")}
    env.update(
        REVIEW_LOOP_DATA_DIR=str(data_dir),
        REVIEW_LOOP_WEBHOOK_SECRET=SECRET,
        REVIEW_LOOP_PORT=str(port),
        REVIEW_LOOP_APP_SLUG="review-loop-test",
        REVIEW_LOOP_STATUS_PAGE="true",
    )
    return env


def wait_ready(port: int, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"serve exited early with {proc.returncode}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError("serve did not become ready")


def stop(proc: subprocess.Popen[bytes]) -> int:
    proc.send_signal(signal.SIGTERM)
    return proc.wait(30)


def test_serve_on_the_embedded_database_keeps_deliveries_across_restarts(data_dir: Path) -> None:
    """A delivery replayed to `serve` is still listed by `status` after a restart."""
    port = free_port()
    env = cli_env(data_dir, port)
    serve = subprocess.Popen([*CLI, "serve"], env=env)
    try:
        wait_ready(port, serve)
        replay = subprocess.run(
            [
                *CLI,
                "replay",
                str(FIXTURES / "webhooks" / "issues.labeled.json"),
                "--event",
                "issues",
                "--delivery",
                "restart-1",
            ],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert replay.returncode == 0, replay.stdout + replay.stderr
        assert replay.stdout.startswith("202")
    finally:
        assert stop(serve) == 0
    serve = subprocess.Popen([*CLI, "serve"], env=env)
    try:
        wait_ready(port, serve)
        report = httpx.get(f"http://127.0.0.1:{port}/status", timeout=5).json()
    finally:
        assert stop(serve) == 0
    ids = [d["id"] for d in report["deliveries"]]
    assert ids == ["restart-1"]
    status = subprocess.run(
        [*CLI, "status", "--json"], env=env, capture_output=True, text=True, check=True
    )
    assert [d["id"] for d in json.loads(status.stdout)["deliveries"]] == ["restart-1"]


def test_web_refuses_to_start_without_a_webhook_secret(data_dir: Path) -> None:
    """`review-loop web` with no secret exits 2 and says which variable to set."""
    env = cli_env(data_dir, free_port())
    del env["REVIEW_LOOP_WEBHOOK_SECRET"]
    result = subprocess.run([*CLI, "web"], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "REVIEW_LOOP_WEBHOOK_SECRET" in result.stderr


def healthcheck(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, "healthcheck"], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def test_healthcheck_passes_while_serve_runs_and_fails_once_it_stops(data_dir: Path) -> None:
    """`review-loop healthcheck` (the containers' liveness probe) exits 0 only while a process
    on its data dir is running."""
    port = free_port()
    env = cli_env(data_dir, port)
    before = healthcheck(env)
    assert before.returncode == 1
    assert "no heartbeat" in before.stderr
    serve = subprocess.Popen([*CLI, "serve"], env=env)
    try:
        wait_ready(port, serve)
        running = healthcheck(env)
    finally:
        assert stop(serve) == 0
    assert running.returncode == 0, running.stderr
    assert healthcheck(env).returncode == 1


def test_a_misspelt_setting_is_warned_about_at_start_up(data_dir: Path, tmp_path: Path) -> None:
    """`REVIEW_LOOP_WORKER_CONCURENCY=99` (in the environment, or in ./.env) is not ignored
    in silence: the command logs a warning naming the setting that was meant."""
    env = {**cli_env(data_dir, free_port()), "REVIEW_LOOP_WORKER_CONCURENCY": "99"}
    (tmp_path / ".env").write_text("REVIEW_LOOP_RESYNC_QUIETS=5\n")
    done = subprocess.run(
        [*CLI, "healthcheck"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (
        "REVIEW_LOOP_WORKER_CONCURENCY is not a review-loop setting and is ignored; did you "
        "mean REVIEW_LOOP_WORKER_CONCURRENCY?"
    ) in done.stderr
    assert "did you mean REVIEW_LOOP_RESYNC_QUIET_S?" in done.stderr
