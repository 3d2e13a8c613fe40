"""`.github/review-loop.yml`: defaults, validation and the published JSON Schema."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema  # type: ignore[import-untyped]
import pytest
import yaml

from bot.repo_config import (
    CONFIG_PATH,
    RepoConfig,
    RepoConfigError,
    Route,
    load_repo_config,
    parse_repo_config,
    render_json_schema,
)

SCHEMA_FILE = Path(__file__).parents[1] / "docs" / "review-loop.schema.json"
REGENERATE = (
    '.venv/bin/python -c "from bot.repo_config import render_json_schema; '
    "print(render_json_schema(), end='')\" > docs/review-loop.schema.json"
)

FULL = """\
extends: false
enabled: true
drafts: true
auditors: [ruff, review]
changed_lines_only: false
routes:
  - rule: "E*"
    path: "src/**"
    agent: claude
  - label: docs
    agent: writer
  - analyzer: review
    severity: "*"
    agent: gpt-fix
min_severity: medium
max_findings: 5
ignore: ["migrations/**"]
max_rounds: 3
max_parallel: 2
merge_fixes: manual
merge_method: squash
reviewers: [alice]
team_reviewers: [core]
group_threshold: 5
max_open_issues: 4
max_depth: 0
setup: pip install -e .
test: pytest -q
budget:
  per_pr_usd: 5
  per_round_usd: 1.5
"""


@pytest.mark.parametrize("text", [None, "", "  \n", "# only a comment\n"], ids=repr)
def test_a_missing_or_empty_file_means_defaults(text: str | None) -> None:
    """No config is the default config: ruff auditors, changed lines only, auto merge."""
    config = parse_repo_config(text)
    assert config == RepoConfig()
    assert config.auditors == ["ruff", "ruff-format"]
    assert (config.enabled, config.drafts, config.changed_lines_only) == (True, False, True)
    assert (config.max_rounds, config.max_parallel, config.merge_fixes) == (5, 4, "auto")
    assert (config.group_threshold, config.max_depth) == (3, 1)


def test_every_setting_is_read() -> None:
    """A file that sets everything is read back field by field."""
    config = parse_repo_config(FULL)
    assert config.routes == [
        Route(rule="E*", path="src/**", agent="claude"),
        Route(label="docs", agent="writer"),
        Route(analyzer="review", severity="*", agent="gpt-fix"),
    ]
    assert (config.builtin_auditors, config.model_auditors) == (["ruff"], ["review"])
    assert config.model_dump(exclude={"routes"}) == {
        "extends": False,
        "enabled": True,
        "drafts": True,
        "auditors": ["ruff", "review"],
        "min_severity": "medium",
        "max_findings": 5,
        "changed_lines_only": False,
        "ignore": ["migrations/**"],
        "max_rounds": 3,
        "max_parallel": 2,
        "merge_fixes": "manual",
        "merge_method": "squash",
        "reviewers": ["alice"],
        "team_reviewers": ["core"],
        "group_threshold": 5,
        "max_open_issues": 4,
        "max_depth": 0,
        "setup": "pip install -e .",
        "test": "pytest -q",
        "budget": {"per_pr_usd": 5.0, "per_round_usd": 1.5},
    }


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param(
            "enabled: true\nauditor: [ruff]\n",
            "line 2: unknown key `auditor`; did you mean `auditors`?",
            id="unknown-key-with-suggestion",
        ),
        pytest.param(
            "budget:\n  per_pr: 5\n",
            "line 2: unknown key `budget.per_pr`; did you mean `per_pr_usd`?",
            id="unknown-key-in-the-budget",
        ),
        pytest.param(
            "routes:\n  - rule: F401\n    agnet: ruff-fix\n",
            "line 3: unknown key `routes[0].agnet`; did you mean `agent`?",
            id="unknown-key-in-a-route",
        ),
        pytest.param(
            "routes:\n  - rule: F401\n",
            "line 2: `routes[0].agent` is required",
            id="route-without-agent",
        ),
        pytest.param(
            "max_rounds: -1\n",
            "line 1: `max_rounds`: Input should be greater than or equal to 0 (got -1)",
            id="out-of-range",
        ),
        pytest.param(
            "drafts: false\nmerge_fixes: always\n",
            "line 2: `merge_fixes`: Input should be 'auto' or 'manual' (got 'always')",
            id="bad-choice",
        ),
        pytest.param(
            "auditors: ruff\n",
            "line 1: `auditors`: Input should be a valid list (got 'ruff')",
            id="scalar-for-a-list",
        ),
        pytest.param(
            "max_rounds: 3\nmax_rounds: 4\n",
            "line 2: `max_rounds` is set twice",
            id="duplicate-key",
        ),
        pytest.param(
            "routes: [\n",
            "is not valid YAML: line 2, column 1",
            id="invalid-yaml",
        ),
        pytest.param(
            "- ruff\n",
            "must be a mapping of settings",
            id="not-a-mapping",
        ),
    ],
)
def test_config_errors_name_the_key_and_line_to_fix(text: str, message: str) -> None:
    """Every problem is reported with the line and key a maintainer has to change."""
    with pytest.raises(RepoConfigError) as caught:
        parse_repo_config(text)
    assert message in str(caught.value)
    assert str(caught.value).startswith(".github/review-loop.yml")


def test_all_problems_are_reported_at_once_in_line_order() -> None:
    """A maintainer fixes the file in one go, top to bottom."""
    with pytest.raises(RepoConfigError) as caught:
        parse_repo_config("max_parallel: 0\nroutes:\n  - rule: X\nbogus: 1\n")
    lines = str(caught.value).splitlines()
    assert lines[0] == ".github/review-loop.yml has 3 problem(s):"
    assert [line.split(":")[0] for line in lines[1:]] == ["- line 1", "- line 3", "- line 4"]


def test_published_json_schema_is_up_to_date() -> None:
    """docs/review-loop.schema.json is exactly what the model generates."""
    assert SCHEMA_FILE.read_text() == render_json_schema(), f"regenerate it: {REGENERATE}"


def test_json_schema_agrees_with_the_parser() -> None:
    """Editors using the schema accept the full example and flag the keys the bot refuses."""
    validator = jsonschema.Draft202012Validator(json.loads(render_json_schema()))
    assert list(validator.iter_errors(yaml.safe_load(FULL))) == []
    bad = {"auditor": ["ruff"], "routes": [{"rule": "F401"}]}
    messages = sorted(error.message for error in validator.iter_errors(bad))
    assert messages == [
        "'agent' is a required property",
        "Additional properties are not allowed ('auditor' was unexpected)",
    ]


class Files:
    """A repository's and its organisation's config files, as the GitHub adapter reads them."""

    def __init__(self, own: str | None, org: str | None) -> None:
        self.own, self.org = own, org
        self.org_reads = 0

    async def read_file(self, path: str, ref: str | None = None) -> str | None:
        assert (path, ref) == (CONFIG_PATH, "main")
        return self.own

    async def read_org_file(self, path: str) -> str | None:
        assert path == CONFIG_PATH
        self.org_reads += 1
        return self.org


ORG = "max_rounds: 2\nreviewers: [lead]\nauditors: [ruff]\n"


@pytest.mark.parametrize(
    ("own", "org", "expected"),
    [
        pytest.param(None, None, RepoConfig(), id="no file anywhere: defaults"),
        pytest.param(
            None,
            ORG,
            RepoConfig(max_rounds=2, reviewers=["lead"], auditors=["ruff"]),
            id="only the organisation's: inherited",
        ),
        pytest.param(
            "max_rounds: 5\n",
            ORG,
            RepoConfig(max_rounds=5, reviewers=["lead"], auditors=["ruff"]),
            id="a key the repository sets replaces the organisation's, the others stay",
        ),
        pytest.param(
            "reviewers: []\n",
            ORG,
            RepoConfig(max_rounds=2, reviewers=[], auditors=["ruff"]),
            id="lists are replaced, not joined",
        ),
        pytest.param(
            "extends: false\nmax_rounds: 5\n",
            ORG,
            RepoConfig(extends=False, max_rounds=5),
            id="extends false: the organisation's file is not read",
        ),
    ],
)
async def test_a_repository_config_is_laid_over_the_organisations(
    own: str | None, org: str | None, expected: RepoConfig
) -> None:
    files = Files(own, org)
    assert await load_repo_config(files, "main") == expected
    assert files.org_reads == (0 if own and "extends: false" in own else 1)


async def test_a_broken_organisation_file_is_named_as_the_organisations() -> None:
    """A mistake in the inherited file points at that file, not at the repository's."""
    files = Files("max_rounds: 5\n", "max_rouds: 2\n")
    with pytest.raises(RepoConfigError) as caught:
        await load_repo_config(files, "main")
    message = str(caught.value)
    assert message.startswith("the organisation's .github repository's .github/review-loop.yml")
    assert "line 1: unknown key `max_rouds`; did you mean `max_rounds`?" in message
