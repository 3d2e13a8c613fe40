"""`.github/review-loop.yml`: what a repository asks of the loop, validated strictly.

It is read from the default branch only: a pull request cannot change the rules it is judged
by. The organisation's `.github` repository may hold one too, as GitHub does for community
files: a repository's file is laid over it key by key (each top-level key the repository sets
replaces the organisation's; `extends: false` ignores the organisation's file).
"""

from __future__ import annotations

import difflib
import json
from typing import Any, Literal, Protocol

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

__all__ = [
    "BUILTIN_AUDITORS",
    "CONFIG_PATH",
    "ORG_CONFIG_REPO",
    "SEVERITIES",
    "Budget",
    "RepoConfig",
    "RepoConfigError",
    "Route",
    "load_repo_config",
    "parse_repo_config",
    "render_json_schema",
    "repo_config_json_schema",
]

CONFIG_PATH = ".github/review-loop.yml"
ORG_CONFIG_REPO = ".github"  # the organisation's repository whose config others inherit
DEFAULT_AUDITORS = ("ruff", "ruff-format")
# The analyzers the bot runs itself; any other auditor name is a model entry of the catalog.
BUILTIN_AUDITORS = ("ruff", "ruff-format")
SEVERITIES = ("low", "medium", "high", "critical")  # of model findings, lowest first
Severity = Literal["low", "medium", "high", "critical"]


class RepoConfigError(ValueError):
    """The repository's config cannot be used; the message names the key and line to fix."""


class Route(BaseModel):
    """Send findings that match every given matcher to `agent`; globs are allowed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    analyzer: str | None = Field(default=None, description="Analyzer name, e.g. ruff.")
    rule: str | None = Field(default=None, description='Rule id or glob, e.g. "F401" or "E*".')
    category: str | None = Field(default=None, description="Finding category, e.g. lint.")
    path: str | None = Field(default=None, description='Path glob, e.g. "src/**/*.py".')
    label: str | None = Field(default=None, description="An issue label the issue must carry.")
    severity: str | None = Field(
        default=None,
        description='Severity of a model finding, or a glob, e.g. "high" or "*"; findings '
        "of the built-in analyzers have none and never match.",
    )
    agent: str = Field(min_length=1, description="Agent name from the server's catalog.")


class Budget(BaseModel):
    """Caps on what the model agents may spend (USD, as the ledger counts it); unset: none."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    per_pr_usd: float | None = Field(
        default=None,
        gt=0,
        description="Model runs on one pull request (its audits, fixes and verifications) "
        "stop once they have cost this much; a person is asked.",
    )
    per_round_usd: float | None = Field(
        default=None,
        gt=0,
        description="At most this much per round of fixes (and the audit of its result).",
    )


class RepoConfig(BaseModel):
    """The loop's settings for one repository (read from its default branch)."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, title="review-loop repository configuration"
    )

    extends: bool = Field(
        default=True,
        description="Inherit the organisation's `.github` repository's config: each top-level "
        "key set here replaces the organisation's; false ignores the organisation's file.",
    )
    enabled: bool = Field(default=True, description="Run the loop on this repository's PRs.")
    drafts: bool = Field(default=False, description="Also run on draft pull requests.")
    auditors: list[str] = Field(
        default_factory=lambda: list(DEFAULT_AUDITORS),
        description="Auditors to run: the built-ins ruff and ruff-format, SARIF analyzers "
        "by their name in the server's catalog (its `auditors` table), and model reviewers "
        "by their name in it (agents of kind openai or anthropic).",
    )
    min_level: dict[str, Literal["none", "note", "warning", "error"]] = Field(
        default_factory=dict,
        description="Per SARIF auditor, the lowest SARIF level kept, e.g. `{bandit: "
        "warning}`: its findings below it are dropped.",
    )
    min_severity: Severity = Field(
        default="low",
        description="Model reviewers' findings below this severity are dropped.",
    )
    max_findings: int = Field(
        default=20,
        ge=0,
        description="At most this many model findings per audit, the most severe first.",
    )
    changed_lines_only: bool = Field(
        default=True, description="Keep only findings on lines the pull request changed."
    )
    routes: list[Route] = Field(
        default_factory=list,
        description="Routing rules, first match wins; the defaults send ruff findings to "
        "ruff-fix and format findings to ruff-format.",
    )
    ignore: list[str] = Field(
        default_factory=list, description="Path globs whose findings are dropped."
    )
    max_rounds: int = Field(
        default=5,
        ge=0,
        description="Rounds of fixes before a person is asked; 0 files issues but never fixes.",
    )
    max_parallel: int = Field(default=4, ge=1, description="Fix tasks run at once for one PR.")
    merge_fixes: Literal["auto", "manual"] = Field(
        default="auto", description="Merge verified fix PRs into the PR branch automatically."
    )
    merge_method: Literal["merge", "squash", "rebase"] | None = Field(
        default=None,
        description="How fix PRs are merged into the PR branch through GitHub's merge API; "
        "unset: they land by a push onto the PR branch (no merge request), or through the "
        "API with the first the repository allows of merge, squash, rebase where the branch "
        "refuses pushes.",
    )
    reviewers: list[str] = Field(
        default_factory=list, description="Users asked for review when the PR is ready."
    )
    team_reviewers: list[str] = Field(
        default_factory=list, description="Team slugs asked for review when the PR is ready."
    )
    group_threshold: int = Field(
        default=3,
        ge=1,
        description="More than this many same-rule findings in the PR become one issue.",
    )
    max_open_issues: int = Field(
        default=10,
        ge=1,
        description="At most this many of a PR's finding issues are open at once: the most "
        "severe are filed first, the rest wait (listed in the summary) until fixes close some.",
    )
    max_depth: int = Field(
        default=1, ge=0, description="How deep the bot audits its own fix PRs (0: not at all)."
    )
    setup: str | None = Field(
        default=None, description="Shell command preparing a worktree (no tokens, no keys)."
    )
    test: str | None = Field(
        default=None, description="Shell command a fix must pass (no tokens, no keys)."
    )
    budget: Budget | None = Field(
        default=None,
        description="What model runs may cost: `per_pr_usd` and `per_round_usd`. At the cap "
        "no new model run starts and the PR goes to needs-human; the built-in analyzers and "
        "deterministic agents go on. Raise it and say `@review-loop resume`.",
    )

    @property
    def builtin_auditors(self) -> list[str]:
        """The auditors the bot runs itself (ruff, ruff-format), in the configured order."""
        return [name for name in self.auditors if name in BUILTIN_AUDITORS]

    @property
    def model_auditors(self) -> list[str]:
        """The other auditors: model reviewers named in the server's catalog."""
        return [name for name in dict.fromkeys(self.auditors) if name not in BUILTIN_AUDITORS]


class ConfigFiles(Protocol):
    """Where the config is read from (the GitHub adapter's `RepoAPI`)."""

    async def read_file(self, path: str, ref: str | None = None) -> str | None: ...

    async def read_org_file(self, path: str) -> str | None: ...


async def load_repo_config(files: ConfigFiles, default_branch: str) -> RepoConfig:
    """The repository's config from its default branch, laid over its organisation's."""
    own = _settings(await files.read_file(CONFIG_PATH, ref=default_branch), CONFIG_PATH)
    config = _validated(own, CONFIG_PATH)  # its mistakes are named in its own lines
    if not config.extends:
        return config
    org_source = f"the organisation's {ORG_CONFIG_REPO} repository's {CONFIG_PATH}"
    inherited = _settings(await files.read_org_file(CONFIG_PATH), org_source)
    inherited.pop("extends", None)  # an organisation's file has nothing to extend
    if inherited:
        _validated(inherited, org_source)
    return _validated({**inherited, **own}, CONFIG_PATH) if inherited else config


def parse_repo_config(text: str | None, source: str = CONFIG_PATH) -> RepoConfig:
    """The config from the YAML text of `.github/review-loop.yml`; None or empty: defaults."""
    return _validated(_settings(text, source), source)


class _Settings(dict[str, Any]):
    """A config file's top-level mapping, with its YAML tree for pointing at lines."""

    root: yaml.Node | None = None


def _settings(text: str | None, source: str) -> _Settings:
    """The mapping a config file holds ({} for none or an empty one), checked as YAML."""
    found = _Settings()
    if text is None or not text.strip():
        return found
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RepoConfigError(f"{source} is not valid YAML: {_yaml_problem(exc)}") from exc
    if data is None:
        return found
    if not isinstance(data, dict):
        raise RepoConfigError(
            f"{source} line 1: the file must be a mapping of settings "
            f"(like `enabled: true`), not a {type(data).__name__}"
        )
    duplicate = _first_duplicate_key(root)
    if duplicate is not None:
        key, line = duplicate
        raise RepoConfigError(f"{source} line {line}: `{key}` is set twice; keep one")
    found.update(data)
    found.root = root
    return found


def _validated(data: dict[str, Any], source: str) -> RepoConfig:
    try:
        return RepoConfig.model_validate(data)
    except ValidationError as exc:
        root = getattr(data, "root", None)
        problems = sorted(_describe(error, root) for error in exc.errors())
        raise RepoConfigError(
            f"{source} has {len(problems)} problem(s):\n" + "\n".join(text for _, text in problems)
        ) from None


def repo_config_json_schema() -> dict[str, Any]:
    """The JSON Schema of `.github/review-loop.yml`, for editors and for publication."""
    schema = RepoConfig.model_json_schema()
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}


def render_json_schema() -> str:
    """The exact text of `docs/review-loop.schema.json`."""
    return json.dumps(repo_config_json_schema(), indent=2, sort_keys=True) + "\n"


def _describe(error: Any, root: yaml.Node | None) -> tuple[int, str]:
    """(line, text) for one validation error, the text saying what to change."""
    loc: tuple[str | int, ...] = tuple(error["loc"])
    line = _line_of(root, loc) or 1
    return line, f"- line {line}: {_problem(error, loc)}"


def _problem(error: Any, loc: tuple[str | int, ...]) -> str:
    where = _dotted(loc) or "(top level)"
    if error["type"] == "extra_forbidden":
        key = str(loc[-1])
        model = _model_at(loc[:-1])
        allowed = sorted(model.model_fields)
        hint = difflib.get_close_matches(key, allowed, n=1)
        suggestion = f"; did you mean `{hint[0]}`?" if hint else ""
        return f"unknown key `{where}`{suggestion} (allowed here: {', '.join(allowed)})"
    if error["type"] == "missing":
        return f"`{where}` is required"
    return f"`{where}`: {error['msg']} (got {error.get('input')!r})"


def _model_at(loc: tuple[str | int, ...]) -> type[BaseModel]:
    if loc and loc[0] == "routes":
        return Route
    if loc and loc[0] == "budget":
        return Budget
    return RepoConfig


def _dotted(loc: tuple[str | int, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _line_of(node: yaml.Node | None, loc: tuple[str | int, ...]) -> int | None:
    """The 1-based line of the YAML node at `loc` (for a mapping key: the key's line)."""
    if node is None:
        return None
    line: int = node.start_mark.line + 1
    for part in loc:
        if isinstance(node, yaml.MappingNode) and isinstance(part, str):
            match = next((kv for kv in node.value if kv[0].value == part), None)
            if match is None:
                return line
            line = match[0].start_mark.line + 1
            node = match[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(node.value):
                return line
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            return line
    return line


def _first_duplicate_key(node: yaml.Node | None) -> tuple[str, int] | None:
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key, value in node.value:
            if key.value in seen:
                return str(key.value), key.start_mark.line + 1
            seen.add(key.value)
            found = _first_duplicate_key(value)
            if found:
                return found
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            found = _first_duplicate_key(item)
            if found:
                return found
    return None


def _yaml_problem(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    if mark is not None:
        return f"line {mark.line + 1}, column {mark.column + 1}: {problem}"
    return str(problem)
