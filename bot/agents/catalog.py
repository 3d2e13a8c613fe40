"""The operator's agents catalog: what each named agent runs. Repositories only pick names."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from bot.agents.cli.registry import PRESETS

BUILTIN_NAMES = ("ruff-fix", "ruff-format")
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Never handed to an agent, whatever the catalog says: the App's own settings and secrets.
FORBIDDEN_ENV_PREFIXES = ("REVIEW_LOOP_", "GITHUB_", "GH_", "GIT_")


class CatalogError(Exception):
    """The agents catalog cannot be used; the message names the file and the entry."""


MODEL_KINDS = ("openai", "anthropic")
# Agents whose runs cost money: recorded in the model-call ledger, held by budgets.
PAID_KINDS = (*MODEL_KINDS, "cli")
_COMMAND_ONLY = ("argv", "env", "brief", "output")
_MODEL_ONLY = ("base_url", "model", "api_key_env", "max_output_tokens", "temperature",
               "max_retries", "price")  # fmt: skip
# What a `cli` agent (a preset) may set: the model settings it shares, and its own.
_CLI_SETTINGS = ("preset", "model", "base_url", "api_key_env", "max_turns", "max_budget_usd",
                 "extra_args", "argv", "env", "price")  # fmt: skip
_CLI_ONLY = ("preset", "max_turns", "max_budget_usd", "extra_args")
MODEL_TIMEOUT_S = 120.0


class Price(BaseModel):
    """What a model costs, in US dollars per million tokens."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    input_per_mtok: float = Field(ge=0)
    output_per_mtok: float = Field(ge=0)


class AgentSpec(BaseModel):
    """One agent: how to run it and what it may see.

    `command` agents run a program in the worktree; `openai` and `anthropic` agents are
    models called through the official SDKs (`openai`: any OpenAI-compatible chat completions
    service, such as OpenAI, Azure, vLLM, llama.cpp, Ollama's /v1 or OpenRouter).

    `cli` agents are coding-agent CLIs run from a preset (`preset = "claude-code"`, see
    bot.agents.cli): giving `preset` implies `kind = "cli"`. The preset builds the argv,
    environment and output parser from `model`, `base_url` (default: the real service),
    `api_key_env`, `max_turns`, `max_budget_usd` (only where the CLI enforces one),
    `timeout_s` and `extra_args` (appended to the preset's argv); `argv`, if given, replaces
    the preset's argv entirely (the output is still judged by the preset); `env` names more
    variables to pass through.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    kind: Literal["builtin", "command", "openai", "anthropic", "cli"]
    argv: list[str] = Field(default_factory=list)
    env: list[str] = Field(default_factory=list)
    timeout_s: float = Field(default=600.0, gt=0)
    brief: Literal["stdin", "file"] = "stdin"
    output: Literal["text", "json"] = "text"
    description: str = ""
    # model agents
    base_url: str | None = None  # default: the real service
    model: str | None = None
    api_key_env: str | None = None
    max_output_tokens: int = Field(default=4096, gt=0)
    temperature: float = Field(default=0.0, ge=0, le=2)  # openai only
    max_retries: int = Field(default=3, ge=0, le=10)
    price: Price | None = None  # unknown: calls count tokens only, flagged as unpriced
    # cli agents (presets)
    preset: str | None = None
    max_turns: int | None = Field(default=None, gt=0)
    max_budget_usd: float | None = Field(default=None, gt=0)
    extra_args: list[str] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _model_timeout(cls, data: Any) -> Any:
        """A model call is one request, not a whole agent run: a shorter default timeout.
        A `preset` implies `kind = "cli"`."""
        if isinstance(data, dict) and "preset" in data and "kind" not in data:
            data = {**data, "kind": "cli"}
        if isinstance(data, dict) and data.get("kind") in MODEL_KINDS and "timeout_s" not in data:
            return {**data, "timeout_s": MODEL_TIMEOUT_S}
        return data

    @field_validator("name")
    @classmethod
    def _name_is_simple(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError("use lower-case letters, digits, '.', '_' and '-' (e.g. 'claude-fix')")
        return value

    @field_validator("env")
    @classmethod
    def _env_names_are_allowed(cls, names: list[str]) -> list[str]:
        for name in names:
            _check_env_name(name)
        return names

    @field_validator("api_key_env")
    @classmethod
    def _key_variable_is_allowed(cls, name: str | None) -> str | None:
        if name is not None:
            _check_env_name(name)
        return name

    @field_validator("base_url")
    @classmethod
    def _base_url_is_http(cls, url: str | None) -> str | None:
        if url is not None and not url.startswith(("http://", "https://")):
            raise ValueError(f"{url!r} is not an http:// or https:// URL")
        return url

    @model_validator(mode="after")
    def _kind_has_what_it_needs(self) -> AgentSpec:
        if self.kind == "command" and not self.argv:
            raise ValueError("a command agent needs argv, e.g. ['claude', '-p']")
        if self.kind == "builtin" and self.name not in BUILTIN_NAMES:
            raise ValueError(
                f"there is no built-in agent {self.name!r}; built-ins: {BUILTIN_NAMES}"
            )
        given = self.model_fields_set
        if self.kind == "cli":
            self._check_cli(given)
            return self
        stray_cli = sorted(given & set(_CLI_ONLY))
        if stray_cli:
            raise ValueError(f"{', '.join(stray_cli)}: only for cli agents (a preset)")
        if self.kind in MODEL_KINDS:
            if not self.model:
                raise ValueError(f'an {self.kind} agent needs model, e.g. model = "..."')
            if self.base_url is None and self.api_key_env is None:
                raise ValueError(
                    f"an {self.kind} agent on the real service needs api_key_env (the name of "
                    "the environment variable holding its API key); a local server set with "
                    "base_url may do without"
                )
            if self.kind == "anthropic" and "temperature" in given:
                raise ValueError("temperature: the Anthropic Messages API takes none; drop it")
            stray = sorted(given & set(_COMMAND_ONLY))
            if stray:
                raise ValueError(f"{', '.join(stray)}: only for command agents")
        else:
            stray = sorted(given & set(_MODEL_ONLY))
            if stray:
                raise ValueError(f"{', '.join(stray)}: only for openai and anthropic agents")
        return self

    def _check_cli(self, given: set[str]) -> None:
        if self.preset is None:
            raise ValueError(f"a cli agent needs preset, one of: {', '.join(sorted(PRESETS))}")
        preset = PRESETS.get(self.preset)
        if preset is None:
            raise ValueError(
                f"there is no preset {self.preset!r}; presets: {', '.join(sorted(PRESETS))}"
            )
        stray = sorted(given - set(_CLI_SETTINGS) - {"name", "kind", "timeout_s", "description"})
        if stray:
            raise ValueError(f"{', '.join(stray)}: not a setting of a cli agent")
        if self.max_budget_usd is not None and not preset.has_budget_flag:
            raise ValueError(
                f"max_budget_usd: {self.preset} cannot enforce a budget itself; drop it (the "
                "repository's budget still counts what its runs report)"
            )
        if self.max_turns is not None and not getattr(preset, "has_turn_limit", True):
            raise ValueError(
                f"max_turns: {self.preset} has no turn limit; drop it (timeout_s bounds a run)"
            )
        if self.base_url is None and self.api_key_env is None:
            raise ValueError(
                f"a {self.preset} agent on the real service needs api_key_env (the name of "
                "the environment variable holding its API key)"
            )


def _check_env_name(name: str) -> None:
    if not _ENV_NAME.match(name):
        raise ValueError(f"{name!r} is not an environment variable name")
    if name.upper().startswith(FORBIDDEN_ENV_PREFIXES):
        raise ValueError(
            f"{name!r} cannot be passed to an agent: variables starting with "
            f"{', '.join(FORBIDDEN_ENV_PREFIXES)} belong to the bot and its git access"
        )


BUILTINS: dict[str, AgentSpec] = {
    "ruff-fix": AgentSpec(
        name="ruff-fix",
        kind="builtin",
        timeout_s=120,
        description="Applies ruff's safe autofix for the finding's rule to the finding's files.",
    ),
    "ruff-format": AgentSpec(
        name="ruff-format",
        kind="builtin",
        timeout_s=120,
        description="Formats the finding's files with ruff format.",
    ),
}


def load_catalog(path: Path | None) -> dict[str, AgentSpec]:
    """The built-in agents, overlaid with the agents defined in `path` (TOML or YAML).

    The file holds a table `agents` keyed by agent name, for example in TOML::

        [agents.claude]
        kind = "command"
        argv = ["claude", "-p", "--output-format", "json"]
        env = ["ANTHROPIC_API_KEY"]
        output = "json"

        [agents.gpt-review]
        kind = "openai"
        model = "gpt-4.1-mini"
        api_key_env = "OPENAI_API_KEY"
        price = { input_per_mtok = 0.4, output_per_mtok = 1.6 }
    """
    catalog = dict(BUILTINS)
    if path is None:
        return catalog
    for name, entry in _read_entries(path).items():
        if not isinstance(entry, dict):
            raise CatalogError(f"{path}: agent {name!r} must be a table of settings")
        if "name" in entry and entry["name"] != name:
            raise CatalogError(
                f"{path}: agent {name!r} has name {entry['name']!r}; drop 'name' or make it match"
            )
        try:
            catalog[name] = AgentSpec.model_validate({**entry, "name": name})
        except ValidationError as exc:
            raise CatalogError(f"{path}: agent {name!r}: {_describe(exc)}") from exc
    return catalog


def _read_entries(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise CatalogError(f"agents catalog {path} cannot be read: {exc}") from exc
    suffix = path.suffix.lower()
    try:
        if suffix == ".toml":
            data: Any = tomllib.loads(text)
        elif suffix in {".yml", ".yaml"}:
            data = yaml.safe_load(text)
        else:
            raise CatalogError(f"agents catalog {path}: use a .toml, .yml or .yaml file")
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
        raise CatalogError(
            f"agents catalog {path} is not valid {suffix[1:].upper()}: {exc}"
        ) from exc
    if data is None:
        return {}
    if not isinstance(data, dict) or not isinstance(data.get("agents", {}), dict):
        raise CatalogError(f"agents catalog {path}: expected a top-level table 'agents'")
    unknown = set(data) - {"agents"}
    if unknown:
        raise CatalogError(f"agents catalog {path}: unknown top-level keys {sorted(unknown)}")
    agents: dict[str, Any] = data.get("agents") or {}
    return agents


def _describe(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        parts.append(f"{where}: {message}" if where else message)
    return "; ".join(parts)
