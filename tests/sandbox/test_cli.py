"""`review-loop sandbox`: serve until interrupted, after printing how to configure the bot."""

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


def test_run_sandbox_prints_the_bot_configuration_and_serves(tmp_path: Path) -> None:
    """It prints the API URL, App id and key path, answers on that URL and stops on Ctrl-C."""
    process = subprocess.Popen(
        [sys.executable, "-c", SCRIPT.format(data=str(tmp_path))],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        lines = {}
        for line in process.stdout:
            key, _, value = line.strip().partition("=")
            lines[key] = value
            if line.startswith("Press Ctrl-C"):
                break
        api = lines["REVIEW_LOOP_GITHUB_URL"]
        assert api.endswith("/api/v3")
        assert Path(lines["REVIEW_LOOP_PRIVATE_KEY_PATH"]).read_text().startswith("-----BEGIN")
        assert int(lines["REVIEW_LOOP_APP_ID"]) > 0
        assert httpx.get(api + "/app").status_code == 401
    finally:
        interrupt(process)
