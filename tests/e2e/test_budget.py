"""Budgets on the model sandbox: at the cap no model run starts and the PR says why; the
budget raised in the config and `@review-loop resume` let the loop go on; the operator's
per-installation cap holds across worker processes sharing one database."""

import asyncio
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from bot.agents.models import ModelCall
from bot.demo.stack import local_stack, wait_settled
from bot.loop.budget import usd
from bot.loop.model_store import ModelStore
from bot.sandbox.models import Edit, ModelSandbox, Rule, Scenario
from tests.e2e.scenario import AUTHOR, REPO, fix_pulls, open_pr, task_rows
from tests.e2e.test_llm_loop import CART, CONFIG, NEGATIVE_COUNT, catalog, summary_comment
from tests.e2e.worker_processes import FILES_PER_PR, open_prs, worker_processes
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


def unpriced_reviewer_catalog(workdir: Path, models: ModelSandbox) -> Path:
    """The e2e catalog with a reviewer the catalog gives no price: its calls count tokens
    only, so what the PR spends is the fixer's runs alone."""
    path = catalog(workdir, models)
    text = path.read_text()
    path.write_text(text.replace("price = { input_per_mtok = 2.0, output_per_mtok = 8.0 }\n", ""))
    return path


@pytest.mark.usefixtures("model_key")
async def test_a_budget_reached_mid_round_starts_no_more_runs_until_raised_and_resumed(
    workdir: Path, e2e_db: str, models: ModelSandbox
) -> None:
    """Three model findings fixed in one round by one inline batch (one worker slot). The
    fixer's history says a run costs $0.0001, so the batch starts; but its first fix costs
    more than the whole budget: the batch starts no further fix (one model fix call in all),
    proposes the one it made, names the two it left and why; the PR goes to a person saying
    which budget, what was spent and how to raise it; the raised budget and
    `@review-loop resume` fix the rest."""
    models.scenario = Scenario([NEGATIVE_COUNT])
    agents = unpriced_reviewer_catalog(workdir, models)
    files = {f"shop/{name}.py": CART for name in ("a", "b", "c")}
    config = CONFIG + "budget:\n  per_pr_usd: 0.002\n"
    async with local_stack(
        workdir, database_url=e2e_db, agents_file=agents, worker_concurrency=1
    ) as stack:
        store = ModelStore(stack.runtime.pool)
        cheap = ModelCall("fixer", "fixer-model", "fix", 10, 5, 0.0001, 0.1, 1)
        for i in range(5):
            await store.record_calls([cheap], repo=REPO, pr_number=None, task_id=10**6 + i)
        number = await open_pr(stack, pr_files=files, config=config)
        held = await wait_settled(stack, REPO, number)
        [task] = await task_rows(stack, "id, status, round, batch, fixed")
        fix_calls = [r for r in models.hub.requests if r.schema_name == "fix_edits"]
        spent = (await store.spend(REPO, number, held.round)).pr_usd
        summary = summary_comment(stack, number)
        [fix_pr] = fix_pulls(stack, number)

        await asyncio.to_thread(
            stack.sandbox.driver.push,
            REPO,
            "main",
            {".github/review-loop.yml": RAISED},
            as_user=AUTHOR,
            message="Raise the review-loop budget",
        )
        await asyncio.to_thread(
            stack.sandbox.driver.comment, REPO, number, "@review-loop resume", as_user=AUTHOR
        )
        await asyncio.to_thread(stack.sandbox.hub.webhooks.wait_idle, 30)
        done = await wait_settled(stack, REPO, number)
        tasks = await task_rows(stack, "status, fixed")

    assert len(task["batch"]) == 3 and task["round"] == 1
    assert (task["status"], len(task["fixed"])) == ("merged", 1)
    assert len(fix_calls) == 1, "no fix started after the budget was reached"
    assert spent >= 0.002
    left = [n for n in task["batch"] if n not in task["fixed"]]
    assert all(f"#{n} (budget `per_pr_usd` reached" in fix_pr["body"] for n in left)
    assert held.state == "needs-human"
    for said in (held.reason or "", summary):
        assert "budget `per_pr_usd` reached" in said and "of $0.0020 allowed" in said
        assert "raise `budget.per_pr_usd`" in said and "@review-loop resume" in said
    assert done.state == "ready", done.reason
    assert sorted(n for t in tasks for n in t["fixed"]) == sorted(task["batch"])


# The scripted fixer removes the unused import ruff reports (F401), as the recording agent of
# the scale tests does, but as a model: each fix is one priced model call.
UNUSED_OS = Rule(
    "unused-os",
    pattern=r"^import os$",
    title="unused import",
    fixes=(Edit(search="import os\n\n", replace=""),),
)
CAPPED = "group_threshold: 100\nroutes:\n  - rule: F401\n    agent: fixer\n"


async def call_rows(database_url: str) -> list[dict[str, Any]]:
    """Each recorded model call's task, installation and cost."""
    async with await psycopg.AsyncConnection.connect(database_url, row_factory=dict_row) as conn:
        cur = await conn.execute(
            "SELECT task_id, installation_id, cost_usd FROM review_loop_model_calls ORDER BY id"
        )
        return list(await cur.fetchall())


def fixer_catalog(workdir: Path, models: ModelSandbox) -> Path:
    path = workdir / "agents.toml"
    path.write_text(
        f"""
[agents.fixer]
kind = "anthropic"
model = "fixer-model"
base_url = "{models.anthropic_base_url}"
api_key_env = "{KEY_VAR}"
timeout_s = 20
max_retries = 0
price = {{ input_per_mtok = 3.0, output_per_mtok = 15.0 }}
"""
    )
    return path


# What one run of the scripted fixer costs on these PRs (493 tokens in, 65 out at $3 / $15 per
# million): the fixer's history, recorded in the repository beforehand, so what each run is
# expected to cost is what it costs from the first run on.
PRS = 4
RUN = ModelCall("fixer", "scripted-fixer-model", "fix", 493, 65, 0.002454, 0.05, 1)


@pytest.mark.server_db
@pytest.mark.usefixtures("model_key")
async def test_the_installation_cap_holds_across_two_worker_processes(
    workdir: Path, scale_db: str, models: ModelSandbox
) -> None:
    """Two worker processes, four fix tasks at a time each, fix 4 PRs x 5 findings with a
    priced model fixer under a daily cap that fits about eight runs: what the installation
    spent passes the cap by less than one run's expected cost, the runs past it never start
    (not queued, or held as they start: no model call), and their PRs go to a person naming
    the cap, what was spent and how to raise it.

    The bound: a run starts only when spent + reserved (the expected cost of the runs under
    way, each reserved under the installation's row lock, so no two workers admit against
    the same figures) + its own expected cost (per issue, times the issues of its batch)
    stays within the cap. The cap is then passed
    only by how much the runs under way cost above what they were expected to cost: here a
    few prompt tokens, far less than one run. (That the lock is what keeps two processes
    from both admitting against one reading is shown directly, without timing luck, by
    tests/loop/test_budget.py::test_two_processes_admit_no_more_than_the_cap_between_them.)"""
    models.scenario = Scenario([UNUSED_OS])
    catalog = fixer_catalog(workdir, models)
    cap = 0.02
    settings: dict[str, Any] = {
        "heartbeat_s": 1.0,
        "stalled_after_s": 30.0,
        "reaper_interval_s": 2.0,
        "worker_concurrency": 4,
        "fanout": "parallel",
        "installation_daily_usd": cap,
    }
    async with local_stack(
        workdir, database_url=scale_db, workers=0, agents_file=catalog, **settings
    ) as stack:
        models_store = ModelStore(stack.runtime.pool)
        for i in range(5):  # no installation: they define the average, not the spend
            await models_store.record_calls([RUN], repo=REPO, pr_number=None, task_id=10**6 + i)
        with worker_processes(stack, workdir, scale_db, 2, **settings):
            numbers = await open_prs(stack, PRS, CAPPED)
            rows = [await wait_settled(stack, REPO, n, timeout=300) for n in numbers]
            tasks = await task_rows(stack, "id, status")
            spend = await models_store.installation_spend(rows[0].installation_id)
        fix_requests = [r for r in models.hub.requests if r.schema_name == "fix_edits"]
    calls = [c for c in await call_rows(scale_db) if c["installation_id"] is not None]

    spent = sum(c["cost_usd"] for c in calls)
    held = [t["id"] for t in tasks if t["status"] == "held"]
    merged = [t["id"] for t in tasks if t["status"] == "merged"]
    print(
        f"\ncap {usd(cap)}, spent {usd(spent)} in {len(calls)} calls (a run is expected at "
        f"{usd(RUN.cost_usd or 0)}), {len(merged)} merged, {len(held)} held, "
        f"states {[r.state for r in rows]}"
    )
    assert spent <= cap + (RUN.cost_usd or 0), "overshot by more than one run"
    assert spend.day_usd == pytest.approx(spent) and spend.reserved_usd == 0.0
    assert len(fix_requests) == len(calls) > 0
    called = {c["task_id"] for c in calls}
    assert not called & set(held), "a held run made no model call"
    assert len(calls) < PRS * FILES_PER_PR, "the cap left findings unfixed"
    assert called <= set(merged)
    stopped = [r for r in rows if r.state == "needs-human"]
    assert stopped, "a PR with held runs goes to a person"
    for row in stopped:
        reason = row.reason or ""
        assert "installation budget `REVIEW_LOOP_INSTALLATION_DAILY_USD` reached" in reason
        assert f"of {usd(cap)} allowed" in reason and "spent today (UTC)" in reason
        assert "@review-loop resume" in reason
