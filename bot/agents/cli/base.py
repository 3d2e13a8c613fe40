"""What a coding-agent CLI preset provides: its install pin, its invocation, its verdict.

A preset never runs anything itself. `prepare` writes the CLI's private configuration into
the run's fresh HOME and returns the argv, environment and stdin to run; `judge` reads the
exit code and output after the run. Success is judged from the CLI's machine output (several
CLIs exit 0 after failing) -- the runner also checks the diff and that HEAD did not move.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol


@dataclass(frozen=True)
class Install:
    """Where `make agents` gets the CLI: a pinned npm package or a pinned PyPI package (the
    latter in its own venv). `executable` is the program the package puts on its bin dir."""

    registry: Literal["npm", "pypi"]
    package: str
    version: str
    executable: str


@dataclass(frozen=True)
class RunSettings:
    """What the catalog entry says about this run (see bot.agents.catalog.AgentSpec)."""

    model: str | None
    base_url: str | None  # None: the real service
    api_key: str | None  # the value of the entry's api_key_env, if set in the environment
    max_turns: int | None
    max_budget_usd: float | None
    timeout_s: float
    extra_args: Sequence[str] = ()


@dataclass(frozen=True)
class Invocation:
    """What to run: argv (argv[0] is the resolved executable), extra environment on top of the
    runner's contained one (HOME etc. are set by the runner), the brief on stdin, and files
    the preset wants written before the run (absolute path -> text, mode 0600)."""

    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    stdin: bytes | None = None
    files: Mapping[Path, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Verdict:
    """What the CLI's output says. `ok` False carries a readable `error` (e.g. "401 from the
    model service", "turn limit reached"). Costs and tokens are None when not reported."""

    ok: bool
    error: str | None = None
    cost_usd: float | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    turns: int | None = None
    final_message: str = ""  # the agent's last message, kept for the issue / fix PR


class Preset(Protocol):
    """A preset. Optional attribute, read with getattr: `has_turn_limit: bool` (default True),
    False when the CLI has no turn limit, so the catalog refuses `max_turns` for it."""

    name: str  # the catalog's preset = "..."
    install: Install
    has_budget_flag: bool  # whether the CLI itself enforces max_budget_usd

    def prepare(
        self,
        executable: str,
        settings: RunSettings,
        *,
        worktree: Path,
        home: Path,
        scratch: Path,
        brief: str,
        files: Sequence[str],
    ) -> Invocation:
        """The invocation for one run; `home` is a fresh empty HOME, `scratch` a private
        directory outside the worktree (history files, last-message files), `files` the
        worktree-relative paths the agent is asked to fix (aider needs them in argv)."""
        ...

    def judge(self, exit_code: int | None, stdout: bytes, stderr: bytes, scratch: Path) -> Verdict:
        """The verdict from what the CLI printed (and left in `scratch`)."""
        ...
