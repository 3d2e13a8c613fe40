"""What each preset asks to run: argv, environment, files; the brief only ever on stdin."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from bot.agents.cli.base import RunSettings
from bot.agents.cli.registry import PRESETS

BRIEF = "Fix 1 finding.\n\n## Rules\n- Do not commit.\n"
SETTINGS = RunSettings("m-1", "http://127.0.0.1:9", "sk-key", 7, 0.5, 60.0, ("--extra",))


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_the_brief_goes_on_stdin_never_in_argv(tmp_path: Path, name: str) -> None:
    preset = PRESETS[name]
    settings = SETTINGS if preset.has_budget_flag else RunSettings(
        "m-1", "http://127.0.0.1:9", "sk-key", None, None, 60.0, ("--extra",)
    )  # fmt: skip
    inv = preset.prepare(
        "/bin/cli",
        settings,
        worktree=tmp_path,
        home=tmp_path / "h",
        scratch=tmp_path / "s",
        brief=BRIEF,
        files=["a.py"],
    )
    assert inv.stdin == BRIEF.encode()
    assert not any("Fix 1 finding" in arg for arg in inv.argv)
    assert "sk-key" not in " ".join(inv.argv)
    assert inv.argv[0] == "/bin/cli" and "--extra" in inv.argv


def test_claude_code_flags_and_environment(tmp_path: Path) -> None:
    inv = PRESETS["claude-code"].prepare(
        "/bin/claude",
        SETTINGS,
        worktree=tmp_path,
        home=tmp_path,
        scratch=tmp_path,
        brief=BRIEF,
        files=[],
    )
    assert inv.argv[:5] == ["/bin/claude", "-p", "--bare", "--output-format", "json"]
    assert ["--max-turns", "7"] == inv.argv[inv.argv.index("--max-turns") :][:2]
    assert ["--max-budget-usd", "0.5"] == inv.argv[inv.argv.index("--max-budget-usd") :][:2]
    assert ["--model", "m-1"] == inv.argv[inv.argv.index("--model") :][:2]
    assert inv.env["ANTHROPIC_BASE_URL"] == "http://127.0.0.1:9"
    assert inv.env["ANTHROPIC_API_KEY"] == "sk-key"
    assert inv.env["CLAUDE_CODE_MAX_RETRIES"] == "0"
    assert inv.env["DISABLE_AUTOUPDATER"] == "1"


def test_codex_config_has_its_own_provider_with_retries_off(tmp_path: Path) -> None:
    settings = RunSettings("m-1", "http://127.0.0.1:9/v1", "sk-key", None, None, 60.0)
    inv = PRESETS["codex"].prepare(
        "/bin/codex",
        settings,
        worktree=tmp_path,
        home=tmp_path / "h",
        scratch=tmp_path / "s",
        brief=BRIEF,
        files=[],
    )
    ((path, text),) = inv.files.items()
    assert path == tmp_path / "h" / ".codex" / "config.toml"
    assert inv.env["CODEX_HOME"] == str(tmp_path / "h" / ".codex")
    config = tomllib.loads(text)
    assert (config["model"], config["approval_policy"], config["sandbox_mode"]) == (
        "m-1", "never", "workspace-write",
    )  # fmt: skip
    provider = config["model_providers"][config["model_provider"]]
    assert provider["base_url"] == "http://127.0.0.1:9/v1"
    assert provider["wire_api"] == "responses"
    assert provider["request_max_retries"] == provider["stream_max_retries"] == 0
    assert inv.env[provider["env_key"]] == "sk-key"
    assert inv.argv[-1] == "-" and "--ephemeral" in inv.argv
