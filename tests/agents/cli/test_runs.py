"""The real Claude Code and Codex CLIs, run by their presets in a real worktree against the
model sandbox: what they change, what they report, and every way a run is refused."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bot.agents.catalog import AgentSpec
from bot.agents.diffcheck import check_change
from bot.agents.runner import AgentTask, FixTarget, run_agent
from bot.git.cmd import git
from bot.git.worktrees import Worktree, snapshot
from bot.sandbox.models import ModelFault, ModelSandbox, Scenario
from tests.cli_agents import (
    COMMIT,
    EDIT,
    MAY_COMMIT,
    SHELL,
    WRITE,
    agents_dir,
    claude_edit,
    cli_environ,
    cli_spec,
    needs_cli,
)

PRESETS = [
    pytest.param("claude-code", marks=needs_cli("claude-code"), id="claude-code"),
    pytest.param("codex", marks=needs_cli("codex"), id="codex"),
]
FILE = "src/app.py"  # "def main() -> int:\n    return 0\n" in the test remote
BRIEF = f"Make main return 1.\n\nFile: {FILE}\n"
TASK = AgentTask(targets=[FixTarget("X1", FILE)], task_id="1")


async def run(sandbox: ModelSandbox, wt: Worktree, preset: str, **settings: object):  # type: ignore[no-untyped-def]
    spec = cli_spec(sandbox, preset, **settings)
    return await run_agent(
        spec, wt.path, BRIEF, task=TASK, environ=cli_environ(), agents_dir=agents_dir(),
        kill_grace_s=1.0,
    )  # fmt: skip


async def head(wt: Worktree) -> str:
    return (await git("rev-parse", "HEAD", cwd=wt.path)).strip()


@pytest.mark.parametrize("preset", PRESETS)
async def test_preset_edits_the_worktree_and_reports_what_it_did(
    models: ModelSandbox, worktree: Worktree, preset: str
) -> None:
    """The CLI edits the file the brief names; tokens, turns and its last message come back,
    the brief went in on stdin (never argv) and the key only as the sandbox expects it."""
    models.scenario = Scenario(turns=EDIT[preset]("    return 0", "    return 1", "Now returns 1."))
    before = await head(worktree)
    result = await run(models, worktree, preset)
    assert result.ok, result.error
    assert (worktree.path / FILE).read_text() == "def main() -> int:\n    return 1\n"
    assert await head(worktree) == before
    assert result.final_message == "Now returns 1."
    assert result.input_tokens and result.output_tokens
    assert result.version is not None
    if preset == "claude-code":
        assert result.cost_usd is not None and result.cost_usd > 0
        assert result.turns == 3
    else:
        assert result.cost_usd is None  # Codex reports tokens only
    asked = [r for r in models.requests if r.tools]
    assert asked and all(r.authorized for r in asked)
    assert any("Make main return 1." in r.prompt for r in asked)


@pytest.mark.parametrize("preset", PRESETS)
async def test_wrong_key_fails_with_the_401_said_plainly(
    models: ModelSandbox, worktree: Worktree, preset: str
) -> None:
    """The service refusing the key fails the run at once (no retries), saying 401."""
    models.scenario = Scenario(turns=EDIT[preset]("    return 0", "    return 1"))
    spec_env = {"api_key_env": "OTHER_KEY"}
    environ = cli_environ() | {"OTHER_KEY": "sk-not-the-sandbox-key"}
    spec = cli_spec(models, preset, **spec_env)
    result = await run_agent(
        spec, worktree.path, BRIEF, task=TASK, environ=environ, agents_dir=agents_dir(),
        kill_grace_s=1.0,
    )  # fmt: skip
    assert not result.ok
    assert "401" in (result.error or "")
    assert (worktree.path / FILE).read_text().endswith("return 0\n")
    assert "sk-not-the-sandbox-key" not in result.stdout_tail + result.stderr_tail
    refused = [r for r in models.requests if not r.authorized]
    assert 1 <= len(refused) <= 2  # retries are off


@pytest.mark.parametrize("preset", PRESETS)
async def test_a_stalled_model_ends_in_the_timeout(
    models: ModelSandbox, worktree: Worktree, preset: str
) -> None:
    """A model that never answers: the run is killed at timeout_s and says so."""
    models.scenario = Scenario(turns=EDIT[preset]("    return 0", "    return 1"))
    models.set_faults(ModelFault("timeout", route="*", delay_s=60))
    result = await run(models, worktree, preset, timeout_s=3.0)
    assert not result.ok
    assert result.timed_out
    assert "timed out after 3 s" in (result.error or "")


@pytest.mark.parametrize("preset", PRESETS)
async def test_an_agent_that_commits_is_refused_and_its_commit_dropped(
    models: ModelSandbox, worktree: Worktree, preset: str
) -> None:
    """Allowed git by its extra_args, the CLI commits: the run fails, HEAD is put back and
    none of its work is kept."""
    models.scenario = Scenario(turns=SHELL[preset](f"echo changed > {FILE} && {COMMIT}"))
    before = await head(worktree)
    result = await run(models, worktree, preset, extra_args=MAY_COMMIT[preset])
    assert not result.ok
    assert "the agent committed" in (result.error or "")
    assert await head(worktree) == before
    assert (worktree.path / FILE).read_text().endswith("return 0\n")
    assert (await git("status", "--porcelain", cwd=worktree.path)).strip() == ""


@pytest.mark.parametrize("preset", PRESETS)
async def test_an_edit_to_a_workflow_is_refused_by_the_change_check(
    models: ModelSandbox, worktree: Worktree, preset: str
) -> None:
    """The CLI happily writes .github/workflows/; the bot's check of the change refuses it."""
    models.scenario = Scenario(turns=WRITE[preset](".github/workflows/x.yml", "on: push\n"))
    since = await snapshot(worktree.path)
    result = await run(models, worktree, preset)
    assert result.ok, result.error  # the CLI did what it was told ...
    problems = await check_change(worktree.path, since)
    assert any(".github/workflows/x.yml" in p for p in problems)  # ... and it is refused


@needs_cli("claude-code")
async def test_claude_code_turn_limit_fails_the_run(
    models: ModelSandbox, worktree: Worktree
) -> None:
    """max_turns 1 ends Claude Code after its Read: error_max_turns, said as a turn limit."""
    models.scenario = Scenario(turns=claude_edit("    return 0", "    return 1"))
    result = await run(models, worktree, "claude-code", max_turns=1)
    assert not result.ok
    assert "turn limit reached" in (result.error or "")
    assert (worktree.path / FILE).read_text().endswith("return 0\n")


@needs_cli("claude-code")
async def test_claude_code_budget_limit_fails_the_run(
    models: ModelSandbox, worktree: Worktree
) -> None:
    """max_budget_usd below one turn's cost stops Claude Code, said as a budget limit."""
    models.scenario = Scenario(turns=claude_edit("    return 0", "    return 1"))
    result = await run(models, worktree, "claude-code", max_budget_usd=0.0001)
    assert not result.ok
    assert "budget limit reached" in (result.error or "")
    assert result.cost_usd is not None


@needs_cli("codex")
async def test_codex_cannot_commit_inside_its_own_sandbox(
    models: ModelSandbox, worktree: Worktree
) -> None:
    """With the preset's workspace-write sandbox, Codex's git commit fails (the worktree's git
    directory is outside the workspace): nothing moves, the run itself succeeds."""
    models.scenario = Scenario(turns=SHELL["codex"](COMMIT + " --allow-empty"))
    before = await head(worktree)
    result = await run(models, worktree, "codex")
    assert result.ok, result.error
    assert await head(worktree) == before


@needs_cli("codex")
async def test_codex_server_error_is_a_failed_turn_without_retries(
    models: ModelSandbox, worktree: Worktree
) -> None:
    """A 500 ends Codex's turn (turn.failed, in Codex's own words) after one request: its
    retries are off."""
    models.scenario = Scenario(turns=EDIT["codex"]("    return 0", "    return 1"))
    models.set_faults(ModelFault("server_error", route="openai.*"))
    result = await run(models, worktree, "codex")
    assert not result.ok
    assert "experiencing high demand" in (result.error or "")  # how Codex words a 500
    assert len([r for r in models.requests if r.route.startswith("openai")]) == 1


@needs_cli("codex")
async def test_codex_config_is_private_to_the_run(models: ModelSandbox, worktree: Worktree) -> None:
    """Codex's config.toml is written 0600 into the run's fresh HOME, not the worktree; the
    server's own HOME is not the agent's."""
    probe = 'stat -c "%a %n" "$CODEX_HOME/config.toml"; echo "home=$HOME"'
    models.scenario = Scenario(turns=SHELL["codex"](probe))
    result = await run(models, worktree, "codex")
    assert result.ok, result.error
    seen = "\n".join(r.body for r in models.requests if r.tool_results)
    assert "600 /" in seen and "/home/.codex/config.toml" in seen
    assert f"home={os.environ.get('HOME')}\\n" not in seen
    assert (await git("status", "--porcelain", cwd=worktree.path)).strip() == ""


async def test_missing_cli_is_a_clear_failure(tmp_path: Path) -> None:
    """No CLI in the agents directory nor on PATH: the run fails saying `make agents`."""
    spec = AgentSpec.model_validate(
        {"name": "c", "preset": "claude-code", "base_url": "http://127.0.0.1:9"}
    )
    result = await run_agent(
        spec, tmp_path, BRIEF, task=TASK, environ={"PATH": str(tmp_path)},
        agents_dir=tmp_path / "agents",
    )  # fmt: skip
    assert not result.ok
    assert "claude-code is not installed: run `make agents`" in (result.error or "")
