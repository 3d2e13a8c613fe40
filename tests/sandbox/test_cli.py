"""`review-loop sandbox`: serve until Ctrl-C or SIGTERM, after printing how to configure the bot."""

import signal
import subprocess
import sys
from pathlib import Path

import httpx

from tests.support import interrupt

SCRIPT = (
    "from pathlib import Path\n"
    "from bot.sandbox import run_sandbox\n"
    "run_sandbox(host='127.0.0.1', port=0, data_dir=Path({data!r}),\n"
    "            webhook_url=None, webhook_secret='s')\n"
)


def _start(data: Path) -> tuple[subprocess.Popen[str], dict[str, str]]:
    """Start the sandbox; returns it once it has said how to configure the bot."""
    process = subprocess.Popen(
        [sys.executable, "-c", SCRIPT.format(data=str(data))], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    lines = {}
    for line in process.stdout:
        key, _, value = line.strip().partition("=")
        lines[key] = value
        if line.startswith("Press Ctrl-C"):
            break
    return process, lines


def test_run_sandbox_prints_the_bot_configuration_and_serves(tmp_path: Path) -> None:
    """It prints the API URL, App id and key path, answers on that URL and stops on Ctrl-C."""
    process, lines = _start(tmp_path)
    try:
        api = lines["REVIEW_LOOP_GITHUB_URL"]
        assert api.endswith("/api/v3")
        assert Path(lines["REVIEW_LOOP_PRIVATE_KEY_PATH"]).read_text().startswith("-----BEGIN")
        assert int(lines["REVIEW_LOOP_APP_ID"]) > 0
        assert httpx.get(api + "/app").status_code == 401
    finally:
        interrupt(process)


def test_ctrl_c_the_moment_it_says_so_stops_it_cleanly(tmp_path: Path) -> None:
    """Ctrl-C right after "Press Ctrl-C", before the main thread waits: a clean stop, no
    traceback (the signal is held until the wait collects it)."""
    process, _ = _start(tmp_path)
    interrupt(process)


def test_sigterm_stops_it_as_cleanly_as_ctrl_c(tmp_path: Path) -> None:
    """`docker stop` or systemd send SIGTERM: the sandbox stops and exits 0."""
    process, lines = _start(tmp_path)
    try:
        assert httpx.get(lines["REVIEW_LOOP_GITHUB_URL"] + "/app").status_code == 401
    finally:
        interrupt(process, signal.SIGTERM)
