"""The cost ledger as the summary shows it, and the budgets it is checked against."""

import asyncio
import re
import subprocess
import sys
from pathlib import Path
from typing import cast

import pytest

from bot.agents.catalog import AgentSpec, Price
from bot.agents.models import ModelCall
from bot.engine.leases import Lease
from bot.github.repo_api import RepoAPI
from bot.loop import report
from bot.loop.budget import (
    Caps,
    InstallationSpend,
    Spend,
    first_run_estimate,
    over_budget,
    over_cap,
    spent_out,
)
from bot.loop.fix.job import TaskFailed
from bot.loop.fix.runner import run_fix
from bot.loop.fleet import Fleet
from bot.loop.model_store import ModelStore
from bot.loop.store import LoopStore
from bot.repo_config import CONFIG_PATH, Budget, parse_repo_config
from bot.runtime import Runtime
from tests.fakes.github import FakeGitHub

REPO = "acme/shop"


def call(agent: str, cost: float | None, purpose: str = "fix") -> ModelCall:
    return ModelCall(agent, "m", purpose, 1000, 200, cost, 1.0, 1)


def summary(spend: Spend) -> str:
    return report.render_summary(
        report.Summary("fixing", "1 fixes running", spend.round, 5, "a" * 40, spend=spend)
    )


def amounts(text: str) -> list[float]:
    return [float(x) for x in re.findall(r"\$(\d+\.\d+)", text)]


async def test_the_summary_shows_what_the_ledger_holds(runtime: Runtime) -> None:
    """This round, this PR and per agent; the PR's figure is the ledger's sum, and the
    agents' figures add up to it. Another PR's calls are not counted."""
    store = ModelStore(runtime.pool)
    await store.record_calls(
        [call("review", 0.0123, "review"), call("review", 0.0101, "review")],
        repo=REPO,
        pr_number=7,
        round=0,
    )
    await store.record_calls(
        [call("fixer", 0.25), call("fixer", 0.5, "verify")], repo=REPO, pr_number=7, round=1
    )
    await store.record_calls([call("fixer", None)], repo=REPO, pr_number=7, round=1)
    await store.record_calls([call("fixer", 9.0)], repo=REPO, pr_number=8, round=1)

    spend = await store.spend(REPO, 7, 1)
    async with runtime.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT SUM(cost_usd) AS s FROM review_loop_model_calls WHERE pr_number = 7"
        )
        row = await cur.fetchone()
    assert row is not None
    ledger = round(float(row["s"]), 4)

    text = summary(spend)
    (line,) = [ln for ln in text.splitlines() if ln.startswith("Model cost so far")]
    this_round, this_pr, *per_agent = amounts(line)
    assert this_pr == ledger == 0.7724
    assert this_round == 0.75
    assert round(sum(per_agent), 4) == this_pr
    assert "`review` $0.0224" in line and "`fixer` $0.75" in line
    assert "1 calls to models without a price" in text


def test_no_cost_line_without_model_calls() -> None:
    assert "Model cost" not in summary(Spend())


def test_budgets_say_which_cap_what_was_spent_and_how_to_raise_it() -> None:
    budget = Budget(per_pr_usd=1.0, per_round_usd=0.5)
    assert over_budget(budget, Spend(pr_usd=0.4, round_usd=0.1), 0.3, 0.3) is None
    why = over_budget(budget, Spend(pr_usd=0.8, round_usd=0.1), 0.3, 0.3)
    assert why is not None
    assert "`per_pr_usd`" in why and "$0.80 spent" in why and "$1.00 allowed" in why
    assert "budget.per_pr_usd" in why and "@review-loop resume" in why
    why = over_budget(budget, Spend(pr_usd=0.4, round_usd=0.1), 0.0, 0.6)
    assert why is not None and "`per_round_usd`" in why
    assert over_budget(None, Spend(pr_usd=99.0), 1.0, 1.0) is None
    assert spent_out(budget, Spend(pr_usd=0.99)) is None
    assert spent_out(budget, Spend(pr_usd=1.0)) is not None


def test_the_budget_key_is_validated() -> None:
    config = parse_repo_config("budget:\n  per_pr_usd: 2.5\n")
    assert config.budget == Budget(per_pr_usd=2.5)
    try:
        parse_repo_config("budget:\n  per_pr: 2.5\n")
    except ValueError as exc:
        assert "did you mean `per_pr_usd`" in str(exc)
    else:
        raise AssertionError("an unknown budget key is refused")


async def test_a_task_held_by_the_budget_is_queued_again(runtime: Runtime) -> None:
    """The same (issue, head, round) is not created twice, unless the budget held it back
    before it started: then it is queued again, as it was never run."""
    store = LoopStore(runtime.pool)
    fields = dict(
        repo=REPO, pr_number=7, issue_number=11, installation_id=1, agent="fixer", round=1,
        base_ref="feature", base_sha="b" * 40, branch="review-loop/pr-7/11",
    )  # fmt: skip
    first = await store.add_task(**fields)  # type: ignore[arg-type]
    assert first is not None
    assert await store.add_task(**fields) is None  # type: ignore[arg-type]
    await store.update_task(first.id, status="held", error="budget `per_pr_usd` reached")
    again = await store.add_task(**fields)  # type: ignore[arg-type]
    assert again is not None and again.id == first.id
    assert (again.status, again.error) == ("queued", None)
    await store.update_task(first.id, status="failed", error="no")
    assert await store.add_task(**fields) is None  # type: ignore[arg-type]


async def test_a_model_fix_at_the_cap_is_held_as_it_starts(
    fleet: Fleet, fake: FakeGitHub, api: RepoAPI
) -> None:
    """Checked again when the run starts (other tasks of the round spent meanwhile): the task
    ends `held`, before any worktree or model call."""
    pull = fake.add_pull("feature")
    fake.files[CONFIG_PATH] = "extends: false\nbudget:\n  per_pr_usd: 0.5\n"
    fleet.catalog["fixer"] = AgentSpec.model_validate(
        {
            "name": "fixer",
            "kind": "openai",
            "model": "m",
            "base_url": "http://127.0.0.1:9/v1",
            "api_key_env": "BUDGET_TEST_UNSET_KEY",
        }
    )
    store = LoopStore(fleet.runtime.pool)
    await ModelStore(fleet.runtime.pool).record_calls(
        [call("fixer", 0.5)], repo=fake.full_name, pr_number=pull.number, round=1
    )
    task = await store.add_task(
        repo=fake.full_name, pr_number=pull.number, issue_number=5, installation_id=1,
        agent="fixer", round=1, base_ref="feature", base_sha="a" * 40, branch="b",
    )  # fmt: skip
    assert task is not None
    with pytest.raises(TaskFailed) as ended:
        await run_fix(fleet, api, task, cast(Lease, None))
    assert ended.value.status == "held"
    assert "budget `per_pr_usd` reached: $0.50 spent" in ended.value.reason


def test_installation_caps_say_which_cap_what_was_spent_and_how_to_raise_it() -> None:
    caps = Caps(daily_usd=1.0, monthly_usd=10.0)
    assert over_cap(caps, InstallationSpend(0.4, 5.0, reserved_usd=0.3), 0.3) is None
    why = over_cap(caps, InstallationSpend(0.5, 5.0, reserved_usd=0.3), 0.3)
    assert why is not None
    assert "`REVIEW_LOOP_INSTALLATION_DAILY_USD`" in why and "$0.50 spent today (UTC)" in why
    assert "$0.30 reserved by runs under way" in why and "$1.00 allowed" in why
    assert "@review-loop resume" in why
    why = over_cap(caps, InstallationSpend(0.0, 10.0), 0.0)
    assert why is not None and "`REVIEW_LOOP_INSTALLATION_MONTHLY_USD`" in why
    assert over_cap(Caps(), InstallationSpend(99.0, 99.0), 1.0) is None
    # Reached already, reservations aside: only the ledger counts.
    assert over_cap(caps, InstallationSpend(0.9, 5.0, reserved_usd=5.0), 0.0, strict=False) is None
    assert over_cap(caps, InstallationSpend(1.0, 5.0), 0.0, strict=False) is not None


def test_the_first_run_is_expected_at_its_price_for_a_typical_run() -> None:
    assert first_run_estimate(None) == 0.0
    assert first_run_estimate(Price(input_per_mtok=3.0, output_per_mtok=15.0)) == 0.027


async def test_reservations_admit_runs_up_to_the_cap_and_no_further(runtime: Runtime) -> None:
    """Ten runs ask at once on separate connections (each $0.30 expected, cap $1.00): three are
    admitted, as the cap allows; released runs' recorded calls count instead; another
    installation's are not counted."""
    store = ModelStore(runtime.pool)
    caps = Caps(daily_usd=1.0)
    answers = await asyncio.gather(*(store.reserve(41, caps, 0.3, f"run {i}") for i in range(10)))
    admitted = [r for r, why in answers if r is not None]
    refused = [why for r, why in answers if r is None]
    assert len(admitted) == 3 and len(refused) == 7
    assert all(w and "$0.90 reserved by runs under way" in w for w in refused)
    assert (await store.installation_spend(41)).reserved_usd == pytest.approx(0.9)

    # One run ends having cost $0.10: the ledger holds it, its reservation is gone.
    await store.record_calls([call("fixer", 0.1)], repo=REPO, pr_number=7, installation_id=41)
    await store.record_calls([call("fixer", 5.0)], repo=REPO, pr_number=8, installation_id=42)
    await store.release(admitted[0])
    spend = await store.installation_spend(41)
    assert (spend.day_usd, spend.month_usd) == (pytest.approx(0.1), pytest.approx(0.1))
    assert spend.reserved_usd == pytest.approx(0.6)
    again, why = await store.reserve(41, caps, 0.3, "run 10")  # 0.1 + 0.6 + 0.3 = 1.0
    assert again is not None and why is None
    _, why = await store.reserve(41, caps, 0.01, "run 11")
    assert why is not None


async def test_a_model_fix_at_the_installation_cap_is_held_as_it_starts(
    fleet: Fleet, fake: FakeGitHub, api: RepoAPI
) -> None:
    """The operator's daily cap, reached by the installation's other PRs: the task ends
    `held` before any worktree or model call, saying which cap; no reservation is left."""
    pull = fake.add_pull("feature")
    fake.files[CONFIG_PATH] = "extends: false\n"
    fleet.runtime.settings = fleet.runtime.settings.model_copy(
        update={"installation_daily_usd": 1.0}
    )
    fleet.catalog["fixer"] = AgentSpec.model_validate(
        {
            "name": "fixer",
            "kind": "openai",
            "model": "m",
            "base_url": "http://127.0.0.1:9/v1",
            "api_key_env": "BUDGET_TEST_UNSET_KEY",
        }
    )
    models = ModelStore(fleet.runtime.pool)
    await models.record_calls(
        [call("fixer", 0.75)], repo="acme/other", pr_number=3, installation_id=1
    )
    # The agent's runs here cost $0.50 on average: 0.75 + 0.50 would pass the cap.
    await models.record_calls([call("fixer", 0.5)], repo=fake.full_name, pr_number=9)
    task = await LoopStore(fleet.runtime.pool).add_task(
        repo=fake.full_name, pr_number=pull.number, issue_number=5, installation_id=1,
        agent="fixer", round=1, base_ref="feature", base_sha="a" * 40, branch="b",
    )  # fmt: skip
    assert task is not None
    with pytest.raises(TaskFailed) as ended:
        await run_fix(fleet, api, task, cast(Lease, None))
    assert ended.value.status == "held"
    assert "installation budget `REVIEW_LOOP_INSTALLATION_DAILY_USD` reached" in ended.value.reason
    assert "$0.75 spent today (UTC)" in ended.value.reason
    assert (await models.installation_spend(1)).reserved_usd == 0.0


async def test_the_expected_cost_is_per_issue_worked(runtime: Runtime) -> None:
    """A batch task's calls are one run, divided over the issues it worked on; a review call
    is a run of its own."""
    store = LoopStore(runtime.pool)
    models = ModelStore(runtime.pool)
    assert await models.expected_cost(REPO, "fixer") is None
    batch = await store.add_task(
        repo=REPO, pr_number=7, issue_number=11, installation_id=1, agent="fixer", round=1,
        base_ref="feature", base_sha="b" * 40, branch="review-loop/pr-7/11", batch=[11, 12, 13],
    )  # fmt: skip
    single = await store.add_task(
        repo=REPO, pr_number=7, issue_number=14, installation_id=1, agent="fixer", round=1,
        base_ref="feature", base_sha="b" * 40, branch="review-loop/pr-7/14",
    )  # fmt: skip
    assert batch is not None and single is not None
    await store.update_task(batch.id, fixed=[11, 12], failed=[13])
    await store.update_task(single.id, fixed=[14])
    await models.record_calls(
        [call("fixer", 0.3), call("fixer", 0.2), call("fixer", 0.1)],
        repo=REPO, pr_number=7, task_id=batch.id,
    )  # fmt: skip
    await models.record_calls([call("fixer", 0.4)], repo=REPO, pr_number=7, task_id=single.id)
    # (0.6 / 3 issues + 0.4 / 1 issue) / 2 runs
    assert await models.expected_cost(REPO, "fixer") == pytest.approx(0.3)


async def test_two_processes_admit_no_more_than_the_cap_between_them(
    runtime: Runtime, tmp_path: Path
) -> None:
    """Two processes on one database ask for ten $0.10 runs each at the same moment under a
    $1.00 cap: ten are admitted between them, not more (each admission reads the spend and
    writes its reservation under the installation's row lock)."""
    go = tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.loop.reserving_process", runtime.database_url, str(go)],
            cwd=Path(__file__).parents[2],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    await asyncio.sleep(1.0)  # both connected and waiting; the test holds either way
    go.touch()
    admitted = [int((await asyncio.to_thread(p.communicate, timeout=60))[0]) for p in procs]
    assert sum(admitted) == 10, admitted
    spend = await ModelStore(runtime.pool).installation_spend(77)
    assert spend.reserved_usd == pytest.approx(1.0)
