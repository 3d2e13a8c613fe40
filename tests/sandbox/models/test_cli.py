"""`review-loop model-sandbox`: print the base URLs, serve, stop on Ctrl-C or SIGTERM."""

import json
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.support import interrupt


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_model_sandbox_prints_base_urls_and_serves_a_scenario(
    tmp_path: Path, stop: signal.Signals
) -> None:
    """It prints where to point each SDK or CLI, answers from the scenario file, and stops
    with exit 0 on Ctrl-C or SIGTERM."""
    scenario = tmp_path / "scenario.json"
    scenario.write_text(json.dumps({"turns": [{"say": "hello from the script"}]}))
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bot.cli",
            "model-sandbox",
            "--port",
            "0",
            "--scenario",
            str(scenario),
        ],
        stdout=subprocess.PIPE,
        text=True,
        env={
            "PATH": "/usr/bin:/bin",
            "REVIEW_LOOP_DATA_DIR": str(tmp_path / "data"),
            "PYTHONFAULTHANDLER": "1",
        },
    )
    try:
        assert process.stdout is not None
        urls = {}
        for line in process.stdout:
            if "base_url" in line or "BASE_URL" in line:
                urls[line.split(":", 1)[0].strip()] = line.rsplit(" ", 1)[-1].strip()
            if line.startswith("Press Ctrl-C"):
                break
        openai_url = urls["OpenAI chat completions / Responses base_url"]
        assert openai_url.endswith("/v1")
        response = httpx.post(
            openai_url + "/chat/completions",
            json={"model": "m", "messages": [{"role": "user", "content": "hi"}]},
        )
        assert response.json()["choices"][0]["message"]["content"] == "hello from the script"
    finally:
        interrupt(process, stop)
