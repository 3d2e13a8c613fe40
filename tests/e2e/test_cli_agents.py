"""Real coding-agent CLIs in the whole loop, on the GitHub sandbox and the model sandbox:
ruff's finding becomes an issue, the CLI (scripted by the model sandbox) edits the worktree,
ruff verifies, the fix PR is merged and the issue closed; a CLI whose work is refused leaves a
clear reason on the issue and nothing merged. The other failures (a 401, the turn and budget
limits, a timeout) are proven on the runner with a real worktree: tests/agents/cli."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bot.demo.stack import local_stack, wait_settled
from bot.loop.fix.runner import CLI_PURPOSE
from bot.loop.model_store import ModelStore
from bot.sandbox.models import ModelSandbox, Scenario
from tests.cli_agents import COMMIT, EDIT, MAY_COMMIT, SHELL, WRITE, agents_dir, needs_cli
from tests.e2e.scenario import REPO, bare_git, fix_pulls, open_pr, show
from tests.modelsandbox import API_KEY, KEY_VAR

pytestmark = pytest.mark.slow

MODULE = '"""Pricing."""\n\nimport os\n\n\ndef price() -> str:\n    return "ok"\n'
CONFIG = "routes:\n  - rule: F401\n    agent: fixer\n"
SAID = "Removed the unused import of os."
PRESETS = [
    pytest.param("claude-code", marks=needs_cli("claude-code"), id="claude-code"),
    pytest.param("codex", marks=needs_cli("codex"), id="codex"),
]


def catalog(
    workdir: Path,
    models: ModelSandbox,
    preset: str,
    key_var: str = KEY_VAR,
    extra_args: list[str] | None = None,
) -> Path:
    base_url = models.openai_base_url if preset == "codex" else models.anthropic_base_url
    path = workdir / "agents.toml"
    path.write_text(
        f'[agents.fixer]\npreset = "{preset}"\nmodel = "{preset}-scripted"\n'
        f'base_url = "{base_url}"\napi_key_env = "{key_var}"\ntimeout_s = 60\n'
        f"extra_args = {json.dumps(extra_args or [])}\n"
    )
    return path


def finding_issues(stack: Any) -> list[dict[str, Any]]:
    return [
        i
        for i in stack.sandbox.driver.issues(REPO, "all")
        if "pull_request" not in i and "review-loop:finding" in str(i.get("labels"))
    ]


@pytest.mark.parametrize("preset", PRESETS)
async def test_a_cli_fixes_a_finding_through_the_whole_loop(
    workdir: Path, e2e_db: str, models: ModelSandbox, preset: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """finding -> issue -> the real CLI edits -> ruff verifies -> fix PR merged -> issue
    closed; what the CLI said is in the fix PR, its tokens in the model-call ledger."""
    monkeypatch.setenv(KEY_VAR, API_KEY)
    models.scenario = Scenario(turns=EDIT[preset]("import os\n\n", "", SAID))
    agents = catalog(workdir, models, preset)
    async with local_stack(
        workdir, database_url=e2e_db, agents_file=agents, agents_dir=agents_dir()
    ) as stack:
        number = await open_pr(stack, pr_files={"shop/pricing.py": MODULE}, config=CONFIG)
        row = await wait_settled(stack, REPO, number)
        assert row.state == "ready", row.reason
        head = stack.sandbox.driver.pull(REPO, number)["head"]["sha"]
        assert "import os" not in show(stack, head, "shop/pricing.py")
        (fix,) = fix_pulls(stack, number)
        assert fix["merged_at"]
        assert "What agent `fixer` said about #" in fix["body"]
        assert SAID in fix["body"]
        (issue,) = finding_issues(stack)
        assert issue["state"] == "closed"
        calls = [c for c in await ModelStore(stack.runtime.pool).calls(REPO, number)
                 if c.purpose == CLI_PURPOSE]  # fmt: skip
        assert len(calls) == 1 and calls[0].agent == "fixer" and calls[0].error is None
        assert calls[0].tokens_in > 0 and calls[0].tokens_out > 0
        assert (calls[0].cost_usd is not None) == (preset == "claude-code")
        # The run counts against the installation's caps, and its cost is on the fix PR.
        spend = await ModelStore(stack.runtime.pool).installation_spend(row.installation_id)
        assert spend.day_usd == pytest.approx(calls[0].cost_usd or 0.0)
        assert "Model cost of this fix: " in fix["body"]
    assert any(r.tools for r in models.requests)


def told_on_the_issue(stack: Any) -> str:
    (issue,) = finding_issues(stack)
    bodies = [c["body"] for c in stack.sandbox.driver.comments(REPO, issue["number"])]
    told = [b for b in bodies if "review-loop could not fix this" in b]
    assert told, bodies
    return told[-1]


@pytest.mark.parametrize("preset", PRESETS)
async def test_a_cli_that_edits_a_workflow_is_refused(
    workdir: Path, e2e_db: str, models: ModelSandbox, preset: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The CLI fixes the finding but also writes .github/workflows/: refused, said on the
    issue, nothing merged and no workflow on any branch."""
    monkeypatch.setenv(KEY_VAR, API_KEY)
    turns = EDIT[preset]("import os\n\n", "", SAID)[:-1] + WRITE[preset](
        ".github/workflows/evil.yml", "on: pull_request_target\n"
    )
    models.scenario = Scenario(turns=turns)
    agents = catalog(workdir, models, preset)
    async with local_stack(
        workdir, database_url=e2e_db, agents_file=agents, agents_dir=agents_dir()
    ) as stack:
        number = await open_pr(stack, pr_files={"shop/pricing.py": MODULE}, config=CONFIG)
        row = await wait_settled(stack, REPO, number)
        assert row.state == "needs-human"
        assert not any(p["merged_at"] for p in fix_pulls(stack, number))
        assert ".github/workflows/evil.yml" in told_on_the_issue(stack)
        assert "evil.yml" not in bare_git(stack, "log", "--all", "--name-only", "--format=")


@pytest.mark.parametrize("preset", PRESETS)
async def test_a_cli_that_commits_is_refused_and_nothing_is_pushed(
    workdir: Path, e2e_db: str, models: ModelSandbox, preset: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Let run git by its extra_args, the CLI fixes and commits: refused on the issue, its
    commit on no branch, nothing merged."""
    monkeypatch.setenv(KEY_VAR, API_KEY)
    turns = EDIT[preset]("import os\n\n", "", SAID)[:-1] + SHELL[preset](COMMIT)
    models.scenario = Scenario(turns=turns)
    agents = catalog(workdir, models, preset, extra_args=MAY_COMMIT[preset])
    async with local_stack(
        workdir, database_url=e2e_db, agents_file=agents, agents_dir=agents_dir()
    ) as stack:
        number = await open_pr(stack, pr_files={"shop/pricing.py": MODULE}, config=CONFIG)
        row = await wait_settled(stack, REPO, number)
        assert row.state == "needs-human"
        assert not any(p["merged_at"] for p in fix_pulls(stack, number))
        assert "the agent committed" in told_on_the_issue(stack)
        authors = bare_git(stack, "log", "--all", "--format=%ae")
        assert "x@example.com" not in authors
