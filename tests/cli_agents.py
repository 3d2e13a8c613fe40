"""The coding-agent CLIs for tests: where `make agents` put them, and a skip when it has not.

Tests find the CLIs in REVIEW_LOOP_AGENTS_DIR, else in this checkout's `.review-loop/agents`
(where `make agents` installs them), else on PATH. Only the pinned version is used.
"""

from __future__ import annotations

import os
import subprocess
from functools import cache
from pathlib import Path

import pytest

from bot.agents.cli.locate import locate
from bot.agents.cli.pins import PINS

ROOT = Path(__file__).resolve().parent.parent


def agents_dir() -> Path:
    return Path(os.environ.get("REVIEW_LOOP_AGENTS_DIR") or ROOT / ".review-loop" / "agents")


@cache
def cli_path(name: str) -> str | None:
    """The pinned CLI of preset `name`, or None when it is not installed at its pin."""
    install = PINS[name]
    found = locate(name, install, agents_dir(), os.environ.get("PATH"))
    if found is None:
        return None
    probe = subprocess.run(
        [found, "--version"], capture_output=True, text=True, timeout=60, check=False
    )
    return found if install.version in probe.stdout + probe.stderr else None


def needs_cli(name: str) -> pytest.MarkDecorator:
    """Skip unless preset `name`'s CLI is installed at its pin."""
    install = PINS[name]
    return pytest.mark.skipif(
        cli_path(name) is None,
        reason=f"{name} ({install.package} {install.version}) is not installed: run make agents",
    )
