"""`make agents`: pinned CLIs into the data directory, idempotent, clear when offline."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from bot.agents.cli.install import InstallFailed, install_all, installed_version, main
from bot.agents.cli.pins import PINS
from tests.cli_agents import agents_dir, needs_cli


@needs_cli("claude-code")
@needs_cli("codex")
def test_a_cli_at_its_pin_is_not_installed_again() -> None:
    out = io.StringIO()
    assert install_all(agents_dir(), ["claude-code", "codex"], out=out) == []
    assert "claude-code: @anthropic-ai/claude-code 2.1.332 already installed" in out.getvalue()
    for name in ("claude-code", "codex"):
        assert installed_version(name, PINS[name], agents_dir()) == PINS[name].version


def test_an_unreachable_registry_is_a_clear_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """npm pointed at a registry nobody answers: exit 2, saying the registry is unreachable."""
    monkeypatch.setenv("npm_config_registry", "http://127.0.0.1:9/")
    monkeypatch.setenv("npm_config_cache", str(tmp_path / "npm-cache"))
    monkeypatch.setenv("npm_config_fetch_retries", "0")
    with pytest.raises(InstallFailed, match="the npm registry is unreachable from here"):
        install_all(tmp_path / "agents", ["codex"], out=io.StringIO())
    assert main(["--data-dir", str(tmp_path), "--only", "codex"]) == 2
    assert "make agents: cannot install @openai/codex@0.171.0" in capsys.readouterr().err


def test_unknown_preset_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--only", "goose"])
    assert (
        "unknown presets ['goose']; presets: aider, claude-code, codex" in capsys.readouterr().err
    )
