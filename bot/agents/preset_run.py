"""Run a coding-agent CLI from its preset: contained, judged by its output, HEAD kept still.

The run is a `command` agent's (own process group, timeout, fresh private HOME, allow-listed
environment) plus what the preset asks for: its config files written 0600 into that HOME or
a private scratch directory, its environment, the brief on stdin. The verdict comes from the
preset's `judge`, never from the exit code alone. An agent that commits is refused: the
worktree goes back to the commit it started from, with none of the agent's work kept.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

from bot.agents.catalog import AgentSpec
from bot.agents.cli.base import Invocation, RunSettings
from bot.agents.cli.locate import NOT_INSTALLED, executable_path, locate
from bot.agents.cli.registry import PRESETS
from bot.agents.contained import AgentResult, agent_env, contained, tail
from bot.agents.diffcheck import git_tampering
from bot.git.cmd import GitError, git, redact
from bot.git.worktrees import clean_keeping_setup_output


async def run_preset(
    spec: AgentSpec,
    worktree: Path,
    brief: str,
    *,
    files: list[str],
    source_env: Mapping[str, str],
    agents_dir: Path | None,
    kill_grace_s: float,
) -> AgentResult:
    """Run cli agent `spec` in `worktree`; never raises for a failing agent."""
    assert spec.preset is not None
    preset = PRESETS[spec.preset]
    label = f"agent {spec.name!r} ({spec.preset})"
    executable = locate(spec.preset, preset.install, agents_dir, source_env.get("PATH"))
    if executable is None:
        where = executable_path(spec.preset, preset.install, agents_dir) if agents_dir else "-"
        error = NOT_INSTALLED.format(name=spec.preset, where=where)
        return AgentResult(False, None, False, 0.0, error=f"{label}: {error}")
    key = source_env.get(spec.api_key_env) if spec.api_key_env else None
    secrets = [v for v in [key, *(source_env.get(n) for n in spec.env)] if v]
    settings = RunSettings(
        model=spec.model,
        base_url=spec.base_url,
        api_key=key,
        max_turns=spec.max_turns,
        max_budget_usd=spec.max_budget_usd,
        timeout_s=spec.timeout_s,
        extra_args=tuple(spec.extra_args),
    )
    head = await _head(worktree)
    with tempfile.TemporaryDirectory(prefix="review-loop-agent-") as tmp:
        home, scratch = Path(tmp) / "home", Path(tmp) / "scratch"
        home.mkdir(mode=0o700)
        scratch.mkdir(mode=0o700)
        invocation = preset.prepare(
            executable, settings, worktree=worktree, home=home, scratch=scratch, brief=brief,
            files=files,
        )  # fmt: skip
        _write_files(invocation, (home, scratch))
        env = agent_env(spec.env, source_env, home) | invocation.env
        argv = _argv(spec, invocation, preset.install.executable, executable)
        run = await contained(argv, worktree, env, invocation.stdin, spec.timeout_s, kill_grace_s)
        verdict = preset.judge(run.exit_code, run.stdout, run.stderr, scratch)
    result = AgentResult(
        ok=verdict.ok,
        exit_code=run.exit_code,
        timed_out=run.timed_out,
        duration_s=run.duration_s,
        stdout_tail=tail(run.stdout, secrets),
        stderr_tail=tail(run.stderr, secrets),
        error=None if verdict.ok else f"{label}: {redact(verdict.error or 'failed', secrets)}",
        cost_usd=verdict.cost_usd,
        input_tokens=verdict.input_tokens,
        output_tokens=verdict.output_tokens,
        turns=verdict.turns,
        final_message=redact(verdict.final_message, secrets),
        version=preset.install.version,
    )
    if run.error:
        return replace(result, ok=False, error=f"{label}: {run.error}")
    if run.timed_out:
        return replace(result, ok=False, error=f"{label}: timed out after {spec.timeout_s:g} s")
    moved = await _head_moved(worktree, head)
    if moved:
        return replace(result, ok=False, error=f"{label}: {moved}")
    return result


def _argv(spec: AgentSpec, invocation: Invocation, name: str, executable: str) -> list[str]:
    """The preset's argv, or the operator's own (its program resolved like the preset's)."""
    if not spec.argv:
        return invocation.argv
    program = executable if spec.argv[0] == name else spec.argv[0]
    return [program, *spec.argv[1:]]


def _write_files(invocation: Invocation, roots: tuple[Path, ...]) -> None:
    """The preset's config files, each private to the run (0600, inside HOME or scratch)."""
    for path, text in invocation.files.items():
        if not any(path.is_relative_to(root) for root in roots):
            raise ValueError(f"a preset may write only into the run's HOME or scratch: {path}")
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as file:
            file.write(text)


async def _head(worktree: Path) -> str:
    return (await git("rev-parse", "HEAD", cwd=worktree)).strip()


async def _head_moved(worktree: Path, head: str) -> str | None:
    """None if HEAD is still `head`; else why the run is refused, after putting the worktree
    back at `head` with nothing of the agent's kept (its commits, changes, new files)."""
    tampering = await git_tampering(worktree)
    if tampering:  # running git here could run the agent's code; the fix runner refuses it
        return "; ".join(tampering)
    try:
        now = await _head(worktree)
    except GitError as exc:
        return f"git cannot read the worktree after the run: {exc}"
    if now == head:
        return None
    await git("reset", "--hard", "--quiet", head, cwd=worktree)
    await clean_keeping_setup_output(worktree)
    return (
        f"the agent committed (HEAD moved from {head[:12]} to {now[:12]}); agents must not "
        "commit, the bot does after verifying: its commits were dropped and nothing was kept"
    )
