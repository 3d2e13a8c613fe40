"""The operator's agents catalog: built-ins, TOML and YAML files, and readable errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

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
        pytest.param('kind = "http"\nurl = "http://x"', "kind", id="http-is-gone"),
        pytest.param('kind = "openai"\napi_key_env = "K"', "needs model", id="model-missing"),
        pytest.param('kind = "anthropic"\nmodel = "m"', "api_key_env",
                     id="real-service-without-key"),
        pytest.param('kind = "openai"\nmodel = "m"\napi_key_env = "GITHUB_TOKEN"', "GITHUB_TOKEN",
                     id="bot-token-as-api-key"),
        pytest.param('kind = "openai"\nmodel = "m"\napi_key_env = "REVIEW_LOOP_X"', "REVIEW_LOOP_X",
                     id="bot-setting-as-api-key"),
        pytest.param('kind = "openai"\nmodel = "m"\napi_key_env = "K"\nbase_url = "ftp://h"',
                     "base_url", id="base-url-not-http"),
        pytest.param('kind = "openai"\nmodel = "m"\napi_key_env = "K"\nargv = ["x"]',
                     "only for command agents", id="argv-on-a-model"),
        pytest.param('kind = "command"\nargv = ["x"]\nmodel = "m"',
                     "only for openai and anthropic", id="model-on-a-command"),
        pytest.param('kind = "openai"\nmodel = "m"\napi_key_env = "K"\n'
                     'price = {input_per_mtok = 1}', "output_per_mtok", id="half-a-price"),
        pytest.param('kind = "openai"\nmodel = "m"\napi_key_env = "K"\ntemperature = 3',
                     "temperature", id="temperature-out-of-range"),
        pytest.param('kind = "anthropic"\nmodel = "m"\napi_key_env = "K"\ntemperature = 0.5',
                     "takes none", id="temperature-on-anthropic"),
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


MODELS_TOML = """
[agents.gpt-review]
kind = "openai"
model = "gpt-4.1-mini"
api_key_env = "OPENAI_API_KEY"
max_retries = 2
price = { input_per_mtok = 0.4, output_per_mtok = 1.6 }

[agents.local-fix]
kind = "openai"
base_url = "http://127.0.0.1:11434/v1"
model = "qwen2.5-coder"

[agents.claude-verify]
kind = "anthropic"
model = "claude-sonnet-4-5"
api_key_env = "ANTHROPIC_API_KEY"
timeout_s = 30
"""


def test_model_agents_name_a_model_a_key_variable_and_a_price(tmp_path: Path) -> None:
    """openai and anthropic entries carry their model settings, with defaults for the rest."""
    path = tmp_path / "agents.toml"
    path.write_text(MODELS_TOML)
    catalog = load_catalog(path)

    gpt = catalog["gpt-review"]
    assert (gpt.kind, gpt.model, gpt.api_key_env, gpt.base_url) == (
        "openai",
        "gpt-4.1-mini",
        "OPENAI_API_KEY",
        None,
    )
    assert gpt.price is not None and (gpt.price.input_per_mtok, gpt.price.output_per_mtok) == (
        0.4,
        1.6,
    )
    assert (gpt.max_retries, gpt.temperature, gpt.timeout_s) == (2, 0.0, 120.0)
    local = catalog["local-fix"]
    assert (local.base_url, local.api_key_env, local.price) == (
        "http://127.0.0.1:11434/v1",
        None,
        None,
    )
    claude = catalog["claude-verify"]
    assert (claude.kind, claude.timeout_s) == ("anthropic", 30)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        pytest.param({"preset": "goose"}, "there is no preset 'goose'; presets: ", id="unknown"),
        pytest.param({"kind": "cli"}, "a cli agent needs preset", id="no-preset"),
        pytest.param({"preset": "codex"}, "needs api_key_env", id="real-service-no-key"),
        pytest.param(
            {"preset": "codex", "base_url": "http://127.0.0.1:1", "max_budget_usd": 1.0},
            "codex cannot enforce a budget itself",
            id="codex-budget",
        ),
        pytest.param(
            {"preset": "codex", "base_url": "http://127.0.0.1:1", "max_turns": 3},
            "codex has no turn limit",
            id="codex-turns",
        ),
        pytest.param(
            {"preset": "claude-code", "api_key_env": "K", "temperature": 0.2},
            "temperature: not a setting of a cli agent",
            id="stray",
        ),
        pytest.param(
            {"kind": "command", "argv": ["x"], "max_turns": 3},
            "max_turns: only for cli agents",
            id="command-max-turns",
        ),
    ],
)
def test_cli_entries_are_validated(tmp_path: Path, entry: dict[str, Any], message: str) -> None:
    """A preset entry names a known preset and only settings its CLI has."""
    path = tmp_path / "agents.toml"
    lines = [f"{key} = {json.dumps(value)}" for key, value in entry.items()]
    path.write_text("[agents.fixer]\n" + "\n".join(lines) + "\n")
    with pytest.raises(CatalogError, match="agent 'fixer'") as error:
        load_catalog(path)
    assert message in str(error.value)


def test_a_preset_entry_implies_kind_cli(tmp_path: Path) -> None:
    path = tmp_path / "agents.toml"
    path.write_text(
        '[agents.claude]\npreset = "claude-code"\nmodel = "claude-sonnet-4-5"\n'
        'api_key_env = "ANTHROPIC_API_KEY"\nmax_turns = 20\nmax_budget_usd = 0.5\n'
        'extra_args = ["--verbose"]\n'
    )
    spec = load_catalog(path)["claude"]
    assert (spec.kind, spec.preset, spec.max_turns, spec.max_budget_usd) == (
        "cli", "claude-code", 20, 0.5,
    )  # fmt: skip
    assert spec.extra_args == ["--verbose"]
