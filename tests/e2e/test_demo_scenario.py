"""The demo scenario end to end: a PR with lint and format problems converges to ready."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.demo.run import run_demo
from tests.cli_agents import agents_dir, cli_path

pytestmark = pytest.mark.slow


def _quiet(line: str) -> None:
    pass


async def test_demo_pr_reaches_ready_with_every_finding_fixed(workdir: Path, e2e_db: str) -> None:
    """Ready in at most 3 rounds; one issue per finding, each closed by its fix; the PR
    branch passes ruff; the base branch is untouched; the bot approved nothing."""
    result = await run_demo(workdir, _quiet, database_url=e2e_db)
    assert result["state"] == "ready"
    assert result["converged"]
    assert 1 <= result["rounds"] <= 3
    assert result["findings_filed"] >= 2
    assert result["duplicate_issues"] == []
    assert result["issues_closed_by_fix"] == result["findings_filed"]
    assert result["fix_prs_merged"] == result["fix_prs_opened"] >= 1
    assert set(result["agents_used"]) == {"ruff-fix", "ruff-format"}
    assert result["pr_branch_clean"]
    assert result["base_untouched"]
    assert result["bot_approvals"] == 0
    assert result["summary_comments"] == 1
    assert result["check_runs_at_head"] == 1


async def test_every_webhook_delivered_twice_changes_nothing(workdir: Path, e2e_db: str) -> None:
    """With every delivery duplicated, the end state is the same: no duplicate issue,
    summary comment, fix PR or check run."""
    result = await run_demo(
        workdir, _quiet, database_url=e2e_db, faults={"duplicate_webhook_rate": 1.0}
    )
    assert result["webhooks_duplicated"] >= 4  # the switch did act
    assert result["state"] == "ready"
    assert result["duplicate_issues"] == []
    assert result["fix_prs_opened"] == result["findings_filed"]
    assert result["issues_closed_by_fix"] == result["findings_filed"]
    assert result["summary_comments"] == 1
    assert result["check_runs_at_head"] == 1


async def test_the_llm_demo_fixes_a_bug_no_linter_reports(workdir: Path, e2e_db: str) -> None:
    """`demo --scenario llm`: beside ruff's findings, the scripted model reviewer's finding
    is filed, fixed by the scripted model fixer, verified and merged; the output says the
    models are scripted."""
    from bot.demo.llm import run_llm_demo

    lines: list[str] = []
    result = await run_llm_demo(workdir, lines.append, database_url=e2e_db)
    assert result["state"] == "ready"
    assert 1 <= result["rounds"] <= 3
    assert result["llm_findings"] == result["llm_findings_fixed"] >= 1
    assert result["issues_closed_by_fix"] == result["findings_filed"] > result["llm_findings"]
    assert set(result["agents_used"]) == {"ruff-fix", "ruff-format", "scripted-fix"}
    assert result["pr_branch_clean"] and result["base_untouched"]
    assert result["models_used"] == ["scripted-fix-model", "scripted-review-model"]
    assert set(result["model_calls_by_purpose"]) == {"review", "fix", "verify"}
    assert result["tokens_in"] > 0 and result["tokens_out"] > 0 and result["cost_usd"] > 0
    assert any("SCRIPTED, not a real LLM" in line for line in lines)
    model_lines = [line for line in lines if "count is never checked" in line]
    assert model_lines and all("scripted" in line.lower() for line in model_lines)


def test_the_budget_demo_ends_needs_human_because_of_the_budget() -> None:
    """`review-loop demo --scenario budget --json`: ruff's fixes (cost 0) land, the model
    fixer's run is held by the per-PR budget; the PR ends needs-human saying which budget,
    and the JSON line carries `state` and `cost_usd` (what the model reviewer spent)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("REVIEW_LOOP_")}
    done = subprocess.run(
        [sys.executable, "-m", "bot.cli", "demo", "--scenario", "budget", "--json"],
        cwd=Path(__file__).parents[2],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["state"] == "needs-human"
    assert "budget `per_pr_usd` reached" in result["reason"]
    assert "raise `budget.per_pr_usd`" in result["reason"]
    assert 0 < result["cost_usd"] < result["budget_usd"]
    assert result["model_calls_by_purpose"] == {"review": result["model_calls"]}  # no fix ran
    assert result["llm_findings"] == 1 and result["llm_findings_fixed"] == 0
    assert result["issues_closed_by_fix"] == result["findings_filed"] - 1  # ruff's, cost 0
    assert "Stopped by the budget" in done.stderr
    assert postgres_left_behind("review-loop-demo-budget-") == [], "the embedded database stopped"


def postgres_left_behind(prefix: str) -> list[str]:
    """The data directories of running PostgreSQL servers under a removed `prefix*`
    directory: what a demo that stopped its embedded database after removing its work
    directory leaves running (until PostgreSQL misses its lock file, a minute later)."""
    left = []
    for proc in Path("/proc").iterdir():
        try:
            argv = (proc / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:  # not a process, or gone meanwhile
            continue
        if not argv[0].endswith("/postgres") or "-D" not in argv[:-1]:
            continue
        data = argv[argv.index("-D") + 1]
        if prefix in data and not Path(data).exists():
            left.append(data)
    return left


@pytest.mark.skipif(
    any(cli_path(name) is None for name in ("claude-code", "codex", "aider", "gemini-cli")),
    reason="the four coding-agent CLIs are not installed at their pins: run make agents",
)
async def test_the_cli_agents_demo_has_each_cli_fix_its_finding(workdir: Path, e2e_db: str) -> None:
    """`demo --scenario cli-agents`: four findings, routed to four presets; each real CLI
    fixes its own, ruff verifies, all four fix PRs merge; the output says who fixed what."""
    from bot.demo.cli_agents import print_cli_summary, run_cli_demo

    lines: list[str] = []
    result = await run_cli_demo(workdir, lines.append, agents_dir(), database_url=e2e_db)
    assert result["state"] == "ready", result
    assert result["findings_filed"] == result["issues_closed_by_fix"] == 4
    assert result["fix_prs_merged"] == result["fix_prs_opened"] == 4
    assert result["agents_used"] == ["aider-fix", "claude-fix", "codex-fix", "gemini-fix"]
    assert result["clis_fixed"] == ["aider", "claude-code", "codex", "gemini-cli"]
    assert result["pr_branch_clean"] and result["base_untouched"]
    for run in result["fixed_by"].values():
        assert run["merged"] and run["runs"] == 1
        assert run["tokens_in"] > 0 and run["tokens_out"] > 0
    print_cli_summary(result, lines.append)
    assert any("gemini-cli 0.61.0 (gemini-fix) fixed inventory/suppliers.py" in ln for ln in lines)
    assert any("SCRIPTED, not real LLMs" in line for line in lines)


def test_the_cli_agents_demo_says_how_to_install_missing_clis(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from bot.demo.cli_agents import main

    monkeypatch.setenv("PATH", str(tmp_path))  # nothing on PATH either
    assert main(as_json=True, agents_dir=tmp_path / "agents") == 2
    said = capsys.readouterr().err
    assert "not installed: claude-code, codex, aider, gemini-cli" in said
    assert "Run `make agents`" in said


async def test_the_sarif_demo_fixes_with_the_analyzers_own_fixes(
    workdir: Path, e2e_db: str
) -> None:
    """`demo --scenario sarif`: semgrep's findings in a Python and a JavaScript file are fixed
    by sarif-fix; bandit's notes are below the repository's min_level; `--json` names the
    auditors and agents used."""
    from bot.demo.sarif import run_sarif_demo, tools

    if not tools():
        pytest.skip("bandit and semgrep are not installed: pip install -e '.[test]'")
    result = await run_sarif_demo(workdir, _quiet, database_url=e2e_db)
    assert result["state"] == "ready"
    assert result["auditors_used"] == ["ruff", "ruff-format", "bandit", "semgrep"]
    assert result["agents_used"] == ["sarif-fix"]
    assert result["findings_filed"] == result["issues_closed_by_fix"] == 2
    assert result["pr_branch_clean"] and result["base_untouched"]
