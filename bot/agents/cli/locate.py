"""Where a preset's CLI is: installed by `make agents` under the data directory, else on PATH."""

from __future__ import annotations

import shutil
from pathlib import Path

from bot.agents.cli.base import Install

NOT_INSTALLED = "{name} is not installed: run `make agents` (looked in {where} and on PATH)"


def agents_dir(data_dir: Path) -> Path:
    """The directory `make agents` installs into, under the server's data directory."""
    return data_dir / "agents"


def executable_path(name: str, install: Install, agents: Path) -> Path:
    """Where `make agents` puts preset `name`'s program (it may not be there): npm packages
    share one prefix, a PyPI package has its own venv."""
    if install.registry == "npm":
        return agents / "npm" / "node_modules" / ".bin" / install.executable
    return agents / name / "bin" / install.executable


def locate(name: str, install: Install, agents: Path | None, path: str | None) -> str | None:
    """The program to run for preset `name`: the installed one first, then `path`'s."""
    if agents is not None:
        installed = executable_path(name, install, agents)
        if installed.is_file():
            return str(installed.absolute())
    return shutil.which(install.executable, path=path)
