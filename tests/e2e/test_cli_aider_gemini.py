"""aider and the Gemini CLI as fixers, through the whole loop on both sandboxes: ruff files
an unused import as an issue, the real CLI (driven by the scripted model sandbox) edits the
task's worktree, ruff verifies the fix, the fix PR is merged and the issue closed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bot.demo.stack import local_stack, wait_settled
from bot.loop.model_store import ModelStore
from bot.sandbox.models import Call, ModelSandbox, Say, Scenario
from tests.cli_agents import agents_dir, needs_cli
from tests.e2e.scenario import REPO, fix_pulls, open_pr, show, task_rows
from tests.modelsandbox import API_KEY, KEY_VAR

pytestmark = pytest.mark.slow

PATH = "shop/cart.py"
CART = '''"""Cart."""

import json
import os


def total(prices: list[float]) -> str:
    return json.dumps(sum(prices))
'''
OLD, NEW = "import json\nimport os\n", "import json\n"
TURNS: dict[str, list[Say | Call]] = {
    "aider-fix": [
        Say(
            "Drop the unused import.\n\n"
            f"{PATH}\n```python\n<<<<<<< SEARCH\n{OLD}=======\n{NEW}>>>>>>> REPLACE\n```\n"
        )
    ],
    "gemini-fix": [
        Call(
            "replace",
            {
                "file_path": "{cwd}/" + PATH,
                "old_string": OLD,
                "new_string": NEW,
                "instruction": "Drop the unused import.",
                "allow_multiple": False,
            },
        ),
        Say("Removed the unused import of os."),
    ],
}
CONFIG = "routes:\n  - rule: F401\n    agent: fixer\n"


def catalog(workdir: Path, models: ModelSandbox, preset: str) -> Path:
    base = models.openai_base_url if preset == "aider" else models.gemini_base_url
    model = "aider-fix" if preset == "aider" else "gemini-fix"
    path = workdir / "agents.toml"
    path.write_text(
        f"""
[agents.fixer]
preset = "{preset}"
model = "{model}"
base_url = "{base}"
api_key_env = "{KEY_VAR}"
timeout_s = 120
price = {{ input_per_mtok = 1.0, output_per_mtok = 4.0 }}
"""
    )
    return path


def finding_issues(issues: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        i for i in issues if "pull_request" not in i and "review-loop:finding" in str(i["labels"])
    ]


@pytest.mark.parametrize(
    "preset",
    [
        pytest.param("aider", marks=needs_cli("aider"), id="aider"),
        pytest.param("gemini-cli", marks=needs_cli("gemini-cli"), id="gemini-cli"),
    ],
)
async def test_the_cli_fixes_a_finding_through_the_whole_loop(
    workdir: Path, e2e_db: str, models: ModelSandbox, monkeypatch: pytest.MonkeyPatch, preset: str
) -> None:
    monkeypatch.setenv(KEY_VAR, API_KEY)
    models.scenario = Scenario(agents=TURNS)
    agents = catalog(workdir, models, preset)
    async with local_stack(
        workdir, database_url=e2e_db, agents_file=agents, agents_dir=agents_dir()
    ) as stack:
        number = await open_pr(stack, pr_files={PATH: CART}, config=CONFIG)
        row = await wait_settled(stack, REPO, number, timeout=240)
        driver = stack.sandbox.driver
        issues = finding_issues(driver.issues(REPO, "all"))
        fixes = fix_pulls(stack, number)
        cart = show(stack, driver.pull(REPO, number)["head"]["sha"], PATH)
        tasks = await task_rows(stack, "status, agent, error")
        calls = await ModelStore(stack.runtime.pool).calls(REPO, number)

    assert row.state == "ready", row.reason
    (issue,) = issues
    assert issue["state"] == "closed"
    assert "F401" in issue["title"] and "os" in issue["title"]
    assert [(t["status"], t["agent"]) for t in tasks] == [("merged", "fixer")]
    (fix,) = fixes
    assert fix["merged_at"] is not None
    assert cart == CART.replace(OLD, NEW)
    # The CLI's run is in the ledger with the tokens it reported, priced by the catalog.
    (run,) = calls
    assert run.tokens_in > 0 and run.tokens_out > 0 and run.cost_usd is not None
    # The real CLI asked the sandbox, with the bot's brief, and its key only as expected.
    route = "openai.chat" if preset == "aider" else "gemini.generate"
    asked = [r for r in models.requests if r.route == route]
    assert asked and all(r.authorized for r in asked)
    assert all("Fix 1 finding in the repository" in r.prompt for r in asked)
    assert all(API_KEY not in r.body for r in models.requests)
