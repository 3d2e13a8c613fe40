"""A fix task's end asks for a reconcile that does not wait for its round (not urgent); one
whose end the last finished reconcile already saw as it began asks GitHub nothing."""

from bot.loop.tasks import reconcile_pr, request_reconcile
from tests.handlers.conftest import INSTALLATION, Bench

PR = 1  # the fake's first pull request: closed, so a reconcile that asks reads little


async def reconciled_with_github(bench: Bench, generation: int) -> bool:
    """Run the reconcile of `generation`; whether it sent GitHub a request."""
    if PR not in bench.fake.issues:
        assert bench.fake.add_pull("feature", state="closed").number == PR
    before = len(bench.fake.requests)
    await reconcile_pr(bench.fleet, bench.fake.full_name, PR, generation)
    return len(bench.fake.requests) > before


async def test_a_task_end_the_last_reconcile_saw_asks_github_nothing(bench: Bench) -> None:
    """Sibling fix tasks: one recorded `merged` whose job has not ended yet when the other's
    end reconciles the round. That reconcile saw both ends; the first task's own request,
    after it, is handled without a request. Once a task changes after that, the next
    reconcile looks again."""
    runtime, store, repo = bench.fleet.runtime, bench.store, bench.fake.full_name
    first = await request_reconcile(runtime, repo, PR, INSTALLATION)
    task = await store.add_task(
        repo=repo, pr_number=PR, issue_number=3, installation_id=INSTALLATION, agent="a",
        round=1, base_ref="change", base_sha="s", branch="b3",
    )  # fmt: skip
    assert task is not None
    await store.update_task(task.id, status="merged")
    row = await store.get(repo, PR)
    assert row is not None
    await store.mark_handled(repo, PR, first, row.task_epoch)  # the round's reconcile

    late = await request_reconcile(runtime, repo, PR, INSTALLATION, urgent=False)
    assert not await reconciled_with_github(bench, late)
    row = await store.get(repo, PR)
    assert row is not None and row.handled == late

    await store.update_task(task.id, error="changed after that reconcile began")
    after = await request_reconcile(runtime, repo, PR, INSTALLATION, urgent=False)
    assert await reconciled_with_github(bench, after)


async def test_an_event_is_reconciled_whatever_the_tasks(bench: Bench) -> None:
    """An event (an urgent request) may bring what no task changed: it asks GitHub."""
    runtime, store, repo = bench.fleet.runtime, bench.store, bench.fake.full_name
    first = await request_reconcile(runtime, repo, PR, INSTALLATION)
    row = await store.get(repo, PR)
    assert row is not None
    await store.mark_handled(repo, PR, first, row.task_epoch)

    event = await request_reconcile(runtime, repo, PR, INSTALLATION)
    assert await reconciled_with_github(bench, event)


async def test_a_reconcile_without_a_finished_one_before_asks_github(bench: Bench) -> None:
    """No reconcile finished yet (or one from before the count): nothing is known seen."""
    runtime, repo = bench.fleet.runtime, bench.fake.full_name
    await request_reconcile(runtime, repo, PR, INSTALLATION)
    late = await request_reconcile(runtime, repo, PR, INSTALLATION, urgent=False)
    assert await reconciled_with_github(bench, late)
