"""The operator's agents catalog: built-ins, TOML and YAML files, and readable errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.agents.catalog import CatalogError, load_catalog

TOML = """
[agents.claude-fix]
kind = "command"
argv = ["claude", "-p", "--output-format", "json"]
env = ["ANTHROPIC_API_KEY"]
output = "json"
timeout_s = 900
description = "Claude Code, one finding at a time"

[agents.ruff-fix]
kind = "builtin"
timeout_s = 30
"""

YAML = """
agents:
  aider:
    kind: command
    argv: [aider, --yes-always, --no-auto-commits]
    brief: file
    env: [OPENAI_API_KEY]
"""


def test_no_catalog_file_gives_the_builtin_agents() -> None:
    """Out of the box the ruff fixers exist and need nothing."""
    catalog = load_catalog(None)
    assert set(catalog) == {"ruff-fix", "ruff-format"}
    assert all(spec.kind == "builtin" for spec in catalog.values())


def test_toml_catalog_adds_agents_and_overrides_builtins(tmp_path: Path) -> None:
    """Entries are keyed by name; a built-in can be re-declared to tune it."""
    path = tmp_path / "agents.toml"
    path.write_text(TOML)
    catalog = load_catalog(path)

    claude = catalog["claude-fix"]
    assert claude.argv == ["claude", "-p", "--output-format", "json"]
    assert (claude.output, claude.brief, claude.timeout_s) == ("json", "stdin", 900)
    assert catalog["ruff-fix"].timeout_s == 30
    assert "ruff-format" in catalog


def test_yaml_catalog_is_read_by_suffix(tmp_path: Path) -> None:
    """A .yml file works the same way."""
    path = tmp_path / "agents.yml"
    path.write_text(YAML)
    assert load_catalog(path)["aider"].brief == "file"


@pytest.mark.parametrize(
    ("entry", "complaint"),
    [
        pytest.param('kind = "command"', "argv", id="command-without-argv"),
        pytest.param('kind = "robot"', "kind", id="unknown-kind"),
        pytest.param('kind = "command"\nargv = ["x"]\nenv = ["REVIEW_LOOP_WEBHOOK_SECRET"]',
                     "REVIEW_LOOP_WEBHOOK_SECRET", id="app-secret-in-env"),
        pytest.param('kind = "command"\nargv = ["x"]\nenv = ["GITHUB_TOKEN"]', "GITHUB_TOKEN",
                     id="token-in-env"),
        pytest.param('kind = "command"\nargv = ["x"]\nshell = true', "shell", id="unknown-field"),
        pytest.param('kind = "command"\nargv = ["x"]\ntimeout_s = 0', "timeout_s",
                     id="zero-timeout"),
        pytest.param('kind = "builtin"', "no built-in agent", id="unknown-builtin"),
        pytest.param('kind = "http"', "url", id="http-without-url"),
    ],
)  # fmt: skip
def test_bad_entry_is_reported_with_file_and_agent_name(
    tmp_path: Path, entry: str, complaint: str
) -> None:
    """A bad entry stops loading with a message naming the file, the agent and the problem."""
    path = tmp_path / "agents.toml"
    path.write_text(f"[agents.broken]\n{entry}\n")
    with pytest.raises(CatalogError) as caught:
        load_catalog(path)
    message = str(caught.value)
    assert str(path) in message and "'broken'" in message and complaint in message


@pytest.mark.parametrize(
    ("name", "text", "complaint"),
    [
        pytest.param("agents.toml", "[agents\n", "not valid TOML", id="bad-toml"),
        pytest.param("agents.yaml", "agents: [\n", "not valid YAML", id="bad-yaml"),
        pytest.param("agents.json", "{}", ".toml, .yml or .yaml", id="unknown-suffix"),
        pytest.param("agents.yaml", "- a\n", "top-level table 'agents'", id="not-a-table"),
        pytest.param("agents.toml", "[agent.x]\n", "unknown top-level keys", id="typo-in-key"),
        pytest.param("missing.toml", None, "cannot be read", id="missing-file"),
    ],
)
def test_unusable_catalog_file_is_reported_with_its_path(
    tmp_path: Path, name: str, text: str | None, complaint: str
) -> None:
    """A file that cannot be read or parsed names itself and what is wrong."""
    path = tmp_path / name
    if text is not None:
        path.write_text(text)
    with pytest.raises(CatalogError, match=complaint) as caught:
        load_catalog(path)
    assert str(path) in str(caught.value)
