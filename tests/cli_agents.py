"""The coding-agent CLIs for tests: where `make agents` put them, and a skip when it has not.

Tests find the CLIs in REVIEW_LOOP_AGENTS_DIR, else in this checkout's `.review-loop/agents`
(where `make agents` installs them), else on PATH. Only the pinned version is used.
"""

from __future__ import annotations

import os
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from bot.agents.catalog import AgentSpec
from bot.agents.cli.locate import locate
from bot.agents.cli.pins import PINS
from bot.sandbox.models import Call, ModelSandbox, Say
from tests.modelsandbox import API_KEY, KEY_VAR

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


# -- the scripted turns each CLI is driven by on the model sandbox ---------------------------
# `{cwd}` and `{file}` are filled in by the sandbox from the request (see Call.filled).


def claude_edit(search: str, replace: str, said: str = "Fixed it.") -> list[Say | Call]:
    """Claude Code Reads the brief's file, then Edits it (Edit fails unless Read first)."""
    path = "{cwd}/{file}"
    return [
        Call("Read", {"file_path": path}),
        Call(
            "Edit",
            {"file_path": path, "old_string": search, "new_string": replace, "replace_all": False},
        ),
        Say(said),
    ]


def claude_write(path: str, text: str, said: str = "Wrote it.") -> list[Say | Call]:
    """Claude Code creates the file `path` (relative to its working directory): an Edit with
    an empty old_string (2.1.x offers no Write tool of its own in --bare mode)."""
    edit = {"file_path": "{cwd}/" + path, "old_string": "", "new_string": text}
    return [Call("Edit", {**edit, "replace_all": False}), Say(said)]


def claude_bash(command: str, said: str = "Ran it.") -> list[Say | Call]:
    return [Call("Bash", {"command": command, "description": "scripted"}), Say(said)]


def apply_patch(body: str) -> str:
    return f"apply_patch <<'EOF'\n*** Begin Patch\n{body}*** End Patch\nEOF\n"


def codex_edit(search: str, replace: str, said: str = "Fixed it.") -> list[Say | Call]:
    """Codex edits the brief's file with apply_patch, run through exec_command."""
    lines = "".join(f"-{line}\n" for line in search.splitlines())
    lines += "".join(f"+{line}\n" for line in replace.splitlines())
    patch = apply_patch(f"*** Update File: {{file}}\n@@\n{lines}")
    return [Call("exec_command", {"cmd": patch}), Say(said)]


def codex_write(path: str, text: str, said: str = "Wrote it.") -> list[Say | Call]:
    added = "".join(f"+{line}\n" for line in text.splitlines())
    return [Call("exec_command", {"cmd": apply_patch(f"*** Add File: {path}\n{added}")}), Say(said)]


def codex_shell(command: str, said: str = "Ran it.") -> list[Say | Call]:
    return [Call("exec_command", {"cmd": command}), Say(said)]


COMMIT = "git add -A && git -c user.name=x -c user.email=x@example.com commit -qm agent"
# What lets each CLI run git at all: an operator's extra_args opening up the preset.
MAY_COMMIT = {
    "claude-code": ["--tools", "Read,Edit,Write,Bash", "--allowedTools", "Bash"],
    "codex": ["--sandbox", "danger-full-access"],
}
EDIT = {"claude-code": claude_edit, "codex": codex_edit}
WRITE = {"claude-code": claude_write, "codex": codex_write}
SHELL = {"claude-code": claude_bash, "codex": codex_shell}


def cli_spec(sandbox: ModelSandbox, preset: str, **settings: Any) -> AgentSpec:
    """A catalog entry for `preset` on the model sandbox."""
    entry: dict[str, Any] = {
        "name": f"{preset}-agent",
        "preset": preset,
        "model": f"{preset}-scripted",
        "base_url": sandbox.openai_base_url if preset == "codex" else sandbox.anthropic_base_url,
        "api_key_env": KEY_VAR,
        "timeout_s": 60.0,
    }
    return AgentSpec.model_validate(entry | settings)


def cli_environ() -> dict[str, str]:
    """What the runner takes allow-listed variables from: PATH (node) and the sandbox key."""
    return {"PATH": os.environ.get("PATH", os.defpath), KEY_VAR: API_KEY}
