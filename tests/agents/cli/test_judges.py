"""Each preset's judge on what the real CLI printed (recorded by tests/agents/cli/record.py):
success and failure come from the CLI's output, never from its exit code alone."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.agents.cli.base import Verdict
from bot.agents.cli.codex import LAST_MESSAGE
from bot.agents.cli.registry import PRESETS
from tests.cli_agents import ROOT

FIXTURES = ROOT / "tests" / "fixtures" / "cli"


def judge(preset: str, case: str, tmp_path: Path, *, exit_code: int | None = None) -> Verdict:
    data = json.loads((FIXTURES / preset / f"{case}.json").read_text())
    if data["last_message"] is not None:
        (tmp_path / LAST_MESSAGE).write_text(data["last_message"])
    code = data["exit_code"] if exit_code is None else exit_code
    return PRESETS[preset].judge(code, data["stdout"].encode(), data["stderr"].encode(), tmp_path)


def test_claude_code_success_reports_cost_tokens_turns_and_message(tmp_path: Path) -> None:
    """A finished run: its cost, tokens (cache reads included), turns and last message."""
    verdict = judge("claude-code", "success", tmp_path)
    assert verdict.ok, verdict.error
    assert verdict.cost_usd is not None and verdict.cost_usd > 0
    assert verdict.input_tokens and verdict.output_tokens
    assert verdict.turns == 3
    assert verdict.final_message == "Done."


@pytest.mark.parametrize(
    ("case", "said"),
    [
        pytest.param("unauthorized", "401 from the model service", id="401-says-success"),
        pytest.param("max_turns", "turn limit reached", id="max-turns"),
        pytest.param("max_budget", "budget limit reached", id="max-budget"),
    ],
)
def test_claude_code_failures_are_read_from_is_error(tmp_path: Path, case: str, said: str) -> None:
    """is_error decides (a 401 comes with subtype "success"), even if the exit code said 0."""
    for exit_code in (None, 0):
        verdict = judge("claude-code", case, tmp_path, exit_code=exit_code)
        assert not verdict.ok
        assert said in (verdict.error or "")


def test_claude_code_without_result_json_fails(tmp_path: Path) -> None:
    verdict = PRESETS["claude-code"].judge(0, b"Segmentation fault\n", b"boom", tmp_path)
    assert not verdict.ok
    assert "printed no result JSON (exit 0): boom" == verdict.error


def test_codex_success_despite_its_error_item(tmp_path: Path) -> None:
    """An `error` item about unknown model metadata is only a warning: turn.completed wins."""
    data = json.loads((FIXTURES / "codex" / "success.json").read_text())
    assert '"type":"error"' in data["stdout"]
    verdict = judge("codex", "success", tmp_path)
    assert verdict.ok, verdict.error
    assert verdict.input_tokens and verdict.output_tokens
    assert verdict.cost_usd is None
    assert verdict.final_message == "Done."


@pytest.mark.parametrize(
    ("case", "said"),
    [
        pytest.param("unauthorized", "401 Unauthorized", id="401"),
        pytest.param("server_error", "experiencing high demand", id="500"),
    ],
)
def test_codex_turn_failed_fails_the_run(tmp_path: Path, case: str, said: str) -> None:
    for exit_code in (None, 0):
        verdict = judge("codex", case, tmp_path, exit_code=exit_code)
        assert not verdict.ok
        assert said in (verdict.error or "")


def test_codex_killed_before_its_turn_completed_fails(tmp_path: Path) -> None:
    """Output that stops before turn.completed (a killed run) is no success."""
    data = json.loads((FIXTURES / "codex" / "success.json").read_text())
    cut = "\n".join(line for line in data["stdout"].splitlines() if "turn.completed" not in line)
    verdict = PRESETS["codex"].judge(0, cut.encode(), b"", tmp_path)
    assert not verdict.ok
    assert "the turn never completed" in (verdict.error or "")
