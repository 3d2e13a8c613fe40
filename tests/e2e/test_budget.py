"""Budgets on the model sandbox: at the cap no model run starts and the PR says why; the
budget raised in the config and `@review-loop resume` let the loop go on."""

import asyncio
from pathlib import Path

import pytest

from bot.demo.stack import local_stack, wait_settled
from bot.loop.model_store import ModelStore
from bot.sandbox.models import ModelSandbox, Scenario
from tests.e2e.scenario import AUTHOR, REPO, open_pr, task_rows
from tests.e2e.test_llm_loop import CART, CONFIG, NEGATIVE_COUNT, catalog, summary_comment
from tests.modelsandbox import API_KEY, KEY_VAR

pytestmark = pytest.mark.slow

TINY = CONFIG + "budget:\n  per_pr_usd: 0.000001\n"  # the first audit spends more
RAISED = CONFIG + "budget:\n  per_pr_usd: 100\n"


@pytest.fixture
def model_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_VAR, API_KEY)


@pytest.mark.usefixtures("model_key")
async def test_a_pr_at_its_budget_starts_no_model_run_until_it_is_raised_and_resumed(
    workdir: Path, e2e_db: str, models: ModelSandbox
) -> None:
    models.scenario = Scenario([NEGATIVE_COUNT])
    agents = catalog(workdir, models)
    async with local_stack(workdir, database_url=e2e_db, agents_file=agents) as stack:
        driver = stack.sandbox.driver
        number = await open_pr(stack, pr_files={"shop/cart.py": CART}, config=TINY)
        held = await wait_settled(stack, REPO, number)
        tasks_held = await task_rows(stack)
        fixes_asked = [r for r in models.hub.requests if r.schema_name == "fix_edits"]
        spent = sum(c.cost_usd or 0.0 for c in await ModelStore(stack.runtime.pool).calls(REPO))
        summary = summary_comment(stack, number)

        assert held.state == "needs-human"
        assert "budget `per_pr_usd` reached" in (held.reason or "")
        assert "raise `budget.per_pr_usd`" in (held.reason or "")
        assert "@review-loop resume" in (held.reason or "")
        assert "budget `per_pr_usd` reached" in summary
        assert tasks_held == [] and fixes_asked == []  # the fixer was never started
        assert spent > 0.000001
        assert held.round == 0  # a round that started nothing is not counted

        await asyncio.to_thread(
            driver.push,
            REPO,
            "main",
            {".github/review-loop.yml": RAISED},
            as_user=AUTHOR,
            message="Raise the review-loop budget",
        )
        await asyncio.to_thread(driver.comment, REPO, number, "@review-loop resume", as_user=AUTHOR)
        await asyncio.to_thread(stack.sandbox.hub.webhooks.wait_idle, 30)
        done = await wait_settled(stack, REPO, number)
        tasks = await task_rows(stack, "status, agent")

    assert done.state == "ready", done.reason
    assert [(t["status"], t["agent"]) for t in tasks] == [("merged", "fixer")]
