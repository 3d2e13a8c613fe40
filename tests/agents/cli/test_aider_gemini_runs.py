"""The real aider and Gemini CLI, run by their presets in a real worktree against the model
sandbox: what they change and report, and each way a run fails or is refused."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from bot.agents.catalog import AgentSpec
from bot.agents.contained import AgentResult
from bot.agents.diffcheck import check_change
from bot.agents.runner import AgentTask, FixTarget, run_agent
from bot.git.cmd import git
from bot.git.worktrees import Worktree, snapshot
from bot.sandbox.models import Call, ModelFault, ModelSandbox, Say, Scenario
from tests.cli_agents import agents_dir, needs_cli
from tests.modelsandbox import API_KEY, KEY_VAR

FILE = "src/app.py"  # "def main() -> int:\n    return 0\n" in the test remote
BRIEF = (
    "Fix 1 finding in the repository checked out in the current directory.\n\nMake main return 1.\n"
)
TASK = AgentTask(targets=[FixTarget("X1", FILE)], task_id="1")
BEFORE, AFTER = "def main() -> int:\n    return 0\n", "def main() -> int:\n    return 1\n"
COMMIT = "git add -A && git -c user.name=x -c user.email=x@example.com commit -qm agent"
WORKFLOW = ".github/workflows/x.yml"


def aider_block(path: str, search: str, replace: str) -> str:
    return f"{path}\n```\n<<<<<<< SEARCH\n{search}=======\n{replace}>>>>>>> REPLACE\n```\n"


def gemini_edit(search: str, replace: str, said: str) -> list[Say | Call]:
    arguments = {
        "file_path": "{cwd}/" + FILE,
        "old_string": search,
        "new_string": replace,
        "instruction": "Make main return 1.",
        "allow_multiple": False,
    }
    return [Call("replace", arguments), Say(said)]


EDIT: dict[str, list[Say | Call]] = {
    "aider": [Say("Returning 1 now.\n\n" + aider_block(FILE, "    return 0\n", "    return 1\n"))],
    "gemini-cli": gemini_edit("    return 0", "    return 1", "Now returns 1."),
}
WORKFLOW_WRITE = Call("write_file", {"file_path": "{cwd}/" + WORKFLOW, "content": "on: push\n"})
# The edit and, in the same run, a workflow the bot's check of the change must refuse.
EDIT_AND_WORKFLOW: dict[str, list[Say | Call]] = {
    "aider": [
        Say(
            "Returning 1 now.\n\n"
            + aider_block(FILE, "    return 0\n", "    return 1\n")
            + aider_block(WORKFLOW, "", "on: push\n")
        )
    ],
    "gemini-cli": [*EDIT["gemini-cli"][:-1], WORKFLOW_WRITE, EDIT["gemini-cli"][-1]],
}
PRESETS = [
    pytest.param("aider", marks=needs_cli("aider"), id="aider"),
    pytest.param("gemini-cli", marks=needs_cli("gemini-cli"), id="gemini-cli"),
]


def spec(models: ModelSandbox, preset: str, **settings: Any) -> AgentSpec:
    entry: dict[str, Any] = {
        "name": f"{preset}-agent",
        "preset": preset,
        "model": f"{preset}-scripted",
        "base_url": models.openai_base_url if preset == "aider" else models.gemini_base_url,
        "api_key_env": KEY_VAR,
        "timeout_s": 60.0,
    }
    return AgentSpec.model_validate(entry | settings)


def environ(**more: str) -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", os.defpath), KEY_VAR: API_KEY, **more}


async def run(
    models: ModelSandbox,
    wt: Worktree,
    preset: str,
    env: dict[str, str] | None = None,
    **settings: Any,
) -> AgentResult:
    return await run_agent(
        spec(models, preset, **settings), wt.path, BRIEF, task=TASK, environ=env or environ(),
        agents_dir=agents_dir(), kill_grace_s=1.0,
    )  # fmt: skip


async def head(wt: Worktree) -> str:
    return (await git("rev-parse", "HEAD", cwd=wt.path)).strip()


def app(wt: Worktree) -> str:
    return (wt.path / FILE).read_text()


@pytest.mark.parametrize("preset", PRESETS)
async def test_preset_edits_the_worktree_and_reports_what_it_did(
    models: ModelSandbox, worktree: Worktree, preset: str
) -> None:
    """The CLI edits the file and, told to, writes a workflow; tokens, turns and its last
    message come back; the brief went in on stdin, the key only where the sandbox expects it;
    nothing of the CLI's own lands in the worktree; the bot's check of the change refuses the
    workflow and only it. (One run for both: each start of these CLIs costs seconds.)"""
    models.scenario = Scenario(agents={f"{preset}-scripted": EDIT_AND_WORKFLOW[preset]})
    before = await head(worktree)
    since = await snapshot(worktree.path)
    result = await run(models, worktree, preset)
    assert result.ok, result.error  # the CLI did what it was told ...
    assert app(worktree) == AFTER
    assert (worktree.path / WORKFLOW).read_text() == "on: push\n"
    assert await head(worktree) == before
    status = await git(
        "status", "--porcelain", "--ignored", "--untracked-files=all", cwd=worktree.path
    )
    changed = sorted(line[3:] for line in status.splitlines())
    assert changed == [WORKFLOW, FILE]  # no .aider* or .gemini files (aider stages new ones)
    assert result.input_tokens and result.output_tokens and result.turns
    assert result.cost_usd is None  # neither CLI prices the sandbox's model
    if preset == "aider":
        assert result.final_message.startswith("Returning 1 now.")
        assert result.turns == 1
    else:
        assert result.final_message == "Now returns 1."
        assert result.turns == 3
    asked = models.requests
    assert asked and all(r.authorized for r in asked)
    assert all("Make main return 1." in r.prompt for r in asked)
    problems = await check_change(worktree.path, since)  # ... and the workflow is refused
    assert any(WORKFLOW in p and "workflow" in p for p in problems)
    assert not [p for p in problems if FILE in p]


@pytest.mark.parametrize("preset", PRESETS)
async def test_wrong_key_fails_with_the_401_said_plainly(
    models: ModelSandbox, worktree: Worktree, preset: str
) -> None:
    """A refused key fails the run (aider exits 0 then: its output decides), saying 401."""
    models.scenario = Scenario(agents={f"{preset}-scripted": EDIT[preset]})
    env = environ(OTHER_KEY="sk-not-the-sandbox-key-0123")
    result = await run(models, worktree, preset, env=env, api_key_env="OTHER_KEY")
    assert not result.ok
    assert "401 from the model service" in (result.error or "")
    assert app(worktree) == BEFORE
    assert "sk-not-the-sandbox-key-0123" not in result.stdout_tail + result.stderr_tail
    assert len([r for r in models.requests if not r.authorized]) == 1  # not retried


@pytest.mark.parametrize("preset", PRESETS)
async def test_a_stalled_model_ends_in_the_timeout(
    models: ModelSandbox, worktree: Worktree, preset: str
) -> None:
    """A model that never answers: the run is killed at timeout_s and says so."""
    models.scenario = Scenario(agents={f"{preset}-scripted": EDIT[preset]})
    models.set_faults(ModelFault("timeout", delay_s=60))
    result = await run(models, worktree, preset, timeout_s=8.0)
    assert not result.ok and result.timed_out
    assert "timed out after 8 s" in (result.error or "")
    assert app(worktree) == BEFORE


@needs_cli("aider")
async def test_aider_told_to_commit_is_refused_and_its_commit_dropped(
    models: ModelSandbox, worktree: Worktree
) -> None:
    """An operator's extra_args turning aider's auto-commits back on: aider commits its edit,
    the run fails, HEAD is put back and none of its work is kept."""
    models.scenario = Scenario(agents={"aider-scripted": EDIT["aider"]})
    before = await head(worktree)
    result = await run(models, worktree, "aider", extra_args=["--auto-commits"])
    assert not result.ok
    assert "the agent committed" in (result.error or "")
    assert await head(worktree) == before
    assert app(worktree) == BEFORE
    assert (await git("status", "--porcelain", cwd=worktree.path)).strip() == ""


@needs_cli("gemini-cli")
async def test_gemini_allowed_a_shell_commits_and_is_refused(
    models: ModelSandbox, worktree: Worktree
) -> None:
    """With yolo approval from extra_args, Gemini runs `git commit`: refused, HEAD put back."""
    turns = [
        Call("run_shell_command", {"command": f"echo changed > {FILE} && {COMMIT}"}),
        Say("Committed."),
    ]
    models.scenario = Scenario(agents={"gemini-cli-scripted": turns})
    before = await head(worktree)
    result = await run(models, worktree, "gemini-cli", extra_args=["--approval-mode", "yolo"])
    assert not result.ok
    assert "the agent committed" in (result.error or "")
    assert await head(worktree) == before
    assert app(worktree) == BEFORE


@needs_cli("gemini-cli")
async def test_gemini_turn_limit_fails_the_run(models: ModelSandbox, worktree: Worktree) -> None:
    """max_turns 1 (model.maxSessionTurns): the edit runs, the next turn hits the limit, exit
    53, said as a turn limit."""
    models.scenario = Scenario(agents={"gemini-cli-scripted": EDIT["gemini-cli"]})
    result = await run(models, worktree, "gemini-cli", max_turns=1)
    assert not result.ok
    assert result.exit_code == 53
    assert "turn limit reached" in (result.error or "")


@needs_cli("gemini-cli")
async def test_gemini_server_error_is_not_retried(models: ModelSandbox, worktree: Worktree) -> None:
    """A 500 fails the run after one request (general.maxAttempts = 1), in the service's words."""
    models.scenario = Scenario(agents={"gemini-cli-scripted": EDIT["gemini-cli"]})
    models.set_faults(ModelFault("server_error"))
    result = await run(models, worktree, "gemini-cli")
    assert not result.ok
    assert "500 from the model service" in (result.error or "")
    assert len(models.requests) == 1


def test_aider_takes_no_max_turns(tmp_path: Path) -> None:
    """aider has no turn limit: the catalog refuses max_turns for it rather than ignore it."""
    with pytest.raises(ValueError, match="aider has no turn limit"):
        AgentSpec.model_validate(
            {"name": "a", "preset": "aider", "base_url": "http://x/v1", "max_turns": 3}
        )
