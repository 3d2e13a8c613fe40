"""`make agents`: install the pinned coding-agent CLIs into the data directory.

npm packages go under `<data_dir>/agents/npm` (`npm install --prefix`, never global); a PyPI
package gets its own venv, `<data_dir>/agents/<preset>`. A CLI already at its pin is skipped,
so a second run does nothing. A registry that cannot be reached is a clear message and exit
status 2; nothing half-installed is reported as installed.

    python -m bot.agents.cli.install [--data-dir DIR] [--only claude-code,codex]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from bot.agents.cli.base import Install
from bot.agents.cli.locate import agents_dir, executable_path
from bot.agents.cli.pins import PINS

UNREACHABLE = ("ENOTFOUND", "EAI_AGAIN", "ETIMEDOUT", "ECONNREFUSED", "ECONNRESET",
               "Temporary failure in name resolution", "Network is unreachable",
               "No matching distribution found", "Could not find a version")  # fmt: skip
INSTALL_TIMEOUT_S = 1800


class InstallFailed(Exception):
    """A CLI could not be installed; the message says why and what to do."""


def installed_version(name: str, install: Install, agents: Path) -> str | None:
    """The version of preset `name`'s package installed under `agents` (None: not there)."""
    if not executable_path(name, install, agents).exists():
        return None
    if install.registry == "npm":
        manifest = agents / "npm" / "node_modules" / install.package / "package.json"
        try:
            version = json.loads(manifest.read_text()).get("version")
        except (OSError, ValueError):
            return None
        return version if isinstance(version, str) else None
    python = agents / name / "bin" / "python"
    script = f"import importlib.metadata as m; print(m.version({install.package!r}))"
    probe = subprocess.run(
        [str(python), "-c", script],
        capture_output=True,
        text=True,
        check=False,
    )
    return probe.stdout.strip() or None if probe.returncode == 0 else None


def install_all(agents: Path, names: Sequence[str], *, out: object = sys.stdout) -> list[str]:
    """Install the presets `names` at their pins under `agents`; the names it installed."""
    wanted = {name: PINS[name] for name in names}
    todo = {n: i for n, i in wanted.items() if installed_version(n, i, agents) != i.version}
    for name, install in wanted.items():
        if name not in todo:
            print(f"{name}: {install.package} {install.version} already installed", file=out)  # type: ignore[call-overload]
    npm = {n: i for n, i in todo.items() if i.registry == "npm"}
    if npm:
        _npm_install(agents / "npm", list(npm.values()))
    for name, install in todo.items():
        if install.registry == "pypi":
            _venv_install(agents / name, install)
    for name, install in todo.items():
        got = installed_version(name, install, agents)
        if got != install.version:
            raise InstallFailed(
                f"{name}: {install.package} is at {got or 'nothing'} after installing, "
                f"expected {install.version}"
            )
        print(f"{name}: installed {install.package} {install.version}", file=out)  # type: ignore[call-overload]
    return list(todo)


def _npm_install(prefix: Path, installs: Sequence[Install]) -> None:
    npm = shutil.which("npm")
    if npm is None:
        raise InstallFailed("npm is not installed: install Node.js 20 or newer (with npm)")
    prefix.mkdir(parents=True, exist_ok=True)
    specs = [f"{i.package}@{i.version}" for i in installs]
    _run([npm, "install", "--prefix", str(prefix), "--save-exact", "--no-audit", "--no-fund",
          "--no-update-notifier", *specs], "the npm registry", specs)  # fmt: skip


def _venv_install(venv: Path, install: Install) -> None:
    if not (venv / "bin" / "python").exists():
        _run([sys.executable, "-m", "venv", str(venv)], "venv", [str(venv)])
    spec = f"{install.package}=={install.version}"
    _run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet",
          "--disable-pip-version-check", spec], "the Python package index", [spec])  # fmt: skip


def _run(argv: Sequence[str], source: str, what: Sequence[str]) -> None:
    env = {**os.environ, "npm_config_update_notifier": "false"}
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S, env=env, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise InstallFailed(f"installing {', '.join(what)} took over {exc.timeout:g} s") from exc
    if done.returncode == 0:
        return
    output = (done.stderr + done.stdout).strip()
    tail = "\n".join(output.splitlines()[-15:])
    if any(sign in output for sign in UNREACHABLE):
        raise InstallFailed(
            f"cannot install {', '.join(what)}: {source} is unreachable from here (offline?). "
            f"Run `make agents` again with network access.\n{tail}"
        )
    raise InstallFailed(f"installing {', '.join(what)} failed (exit {done.returncode}):\n{tail}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot.agents.cli.install", description=__doc__)
    parser.add_argument(
        "--data-dir", type=Path, help="default: the server's agents_dir or data_dir setting"
    )
    parser.add_argument("--only", default="", help=f"comma-separated presets of {sorted(PINS)}")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.only.split(",") if n.strip()] or list(PINS)
    unknown = sorted(set(names) - set(PINS))
    if unknown:
        parser.error(f"unknown presets {unknown}; presets: {', '.join(sorted(PINS))}")
    if args.data_dir is None:
        from bot.config import Settings

        agents = Settings().installed_agents_dir
    else:
        agents = agents_dir(args.data_dir)
    try:
        install_all(agents.absolute(), names)
    except InstallFailed as exc:
        print(f"make agents: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
