"""Pull request events: what starts or advances a PR's loop, and how a closed fix PR ends its
task."""

import pytest

from bot.loop.store import REJECTED_ERROR
from tests.handlers.conftest import INSTALLATION, REPO, Bench

PR = 2  # the pull request of the fixture payloads
LOOPED = 7  # a PR the loop runs on, whose finding the fix PR fixes


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("pull_request.opened", id="opened"),
        pytest.param("pull_request.synchronize", id="pushed-to"),
        pytest.param("pull_request.reopened", id="reopened"),
        pytest.param("pull_request.ready_for_review", id="marked-ready"),
    ],
)
async def test_a_changed_pull_request_queues_its_reconcile(bench: Bench, name: str) -> None:
    """Opening, pushing to, reopening or readying a PR bumps its row and queues one reconcile,
    without a single GitHub call (handlers never do slow work)."""
    delivery = await bench.deliver(name, bench.event(name))

    assert delivery.status == "done", delivery.outcome
    row = await bench.pr(PR)
    assert row is not None
    assert (row.generation, row.installation_id) == (1, INSTALLATION)
    assert await bench.reconciles() == [PR]
    assert bench.fake.requests == []


async def test_repeat_events_bump_the_generation_of_the_queued_reconcile(bench: Bench) -> None:
    """A second event on the same PR raises its generation, and the reconcile the first one
    queued, not yet taken by a worker, takes it: one job, not one that would exit at once."""
    await bench.deliver("pull_request.opened", bench.event("pull_request.opened"))
    await bench.deliver("pull_request.synchronize", bench.event("pull_request.synchronize"))

    row = await bench.pr(PR)
    assert row is not None and row.generation == 2
    jobs = await bench.jobs("reconcile_pr")
    assert [(j["number"], j["generation"]) for j in jobs] == [(PR, 2)]


@pytest.mark.parametrize(
    ("label", "reconciles"),
    [
        pytest.param("review-loop", [PR], id="loop-label-starts-the-loop"),
        pytest.param("bug", [], id="other-label-ignored"),
        pytest.param("review-loop:ready", [], id="the-bots-own-state-label-ignored"),
    ],
)
async def test_the_loop_label_starts_the_loop(
    bench: Bench, label: str, reconciles: list[int]
) -> None:
    """Only the `review-loop` label on a PR asks for its loop."""
    payload = bench.event("pull_request.labeled")
    payload["label"]["name"] = label

    delivery = await bench.deliver("pull_request.labeled", payload)

    assert delivery.status == "done", delivery.outcome
    assert await bench.reconciles() == reconciles
    assert (await bench.pr(PR) is not None) == bool(reconciles)


async def test_an_event_no_handler_waits_for_is_ignored(bench: Bench) -> None:
    """An action the loop does not wait for (an edited title) changes nothing."""
    payload = bench.event("pull_request.opened")
    payload["action"] = "edited"

    delivery = await bench.deliver("pull_request.edited", payload)

    assert delivery.status == "ignored"
    assert await bench.reconciles() == []
    assert await bench.pr(PR) is None


@pytest.mark.parametrize("merged", [pytest.param(True, id="merged"), pytest.param(False, id="not")])
async def test_closing_a_tracked_pull_request_reconciles_it(bench: Bench, merged: bool) -> None:
    """A PR the loop runs on, closed (merged or not), is reconciled once more (to say so)."""
    await bench.store.bump(REPO, PR, INSTALLATION)
    payload = bench.event("pull_request.closed")
    payload["pull_request"]["merged"] = merged

    delivery = await bench.deliver("pull_request.closed", payload)

    assert delivery.status == "done", delivery.outcome
    row = await bench.pr(PR)
    assert row is not None and row.generation == 2
    assert await bench.reconciles() == [PR]


async def test_closing_an_untracked_pull_request_changes_nothing(bench: Bench) -> None:
    """A PR the loop never looked at leaves no row behind when it closes."""
    delivery = await bench.deliver("pull_request.closed", bench.event("pull_request.closed"))

    assert delivery.status == "done", delivery.outcome
    assert await bench.pr(PR) is None
    assert await bench.reconciles() == []


async def add_fix_task(bench: Bench, *, pr: int | None, status: str, fix_pr: int) -> int:
    """A task that pushed fix PR `fix_pr` for finding #12 (of `pr`, or a person's issue)."""
    row = await bench.store.add_task(
        repo=REPO,
        pr_number=pr,
        issue_number=12,
        installation_id=INSTALLATION,
        agent="ruff-fix",
        round=1,
        base_ref="feature" if pr else "main",
        base_sha="b" * 40,
        branch=f"review-loop/pr-{pr}/12" if pr else "review-loop/default/12",
    )
    assert row is not None
    await bench.store.update_task(row.id, status=status, fix_pr=fix_pr)
    return row.id


@pytest.mark.parametrize(
    ("head_ref", "head_repo", "task_pr", "task_status", "merged", "ended", "reconciles"),
    [
        pytest.param(
            "review-loop/pr-7/12", REPO, LOOPED, "pushed", True, "merged", [LOOPED],
            id="fix-pr-merged-ends-task-and-reconciles-its-pr",
        ),
        pytest.param(
            "review-loop/pr-7/12", REPO, LOOPED, "pushed", False, "rejected", [LOOPED],
            id="fix-pr-closed-unmerged-rejects-task",
        ),
        pytest.param(
            "review-loop/default/12", REPO, None, "pushed", True, "merged", [],
            id="person's-issue-fix-pr-merged-ends-task",
        ),
        pytest.param(
            "review-loop/pr-7/12", REPO, LOOPED, "failed", False, "failed", [],
            id="task-no-longer-waiting-is-left-alone",
        ),
        pytest.param(
            "review-loop/pr-7/12", "mallory/Hello-World", LOOPED, "pushed", True, "pushed", [],
            id="fork-branch-named-like-a-fix-is-no-fix-pr",
        ),
    ],
)  # fmt: skip
async def test_a_closed_fix_pr_ends_its_task(
    bench: Bench,
    head_ref: str,
    head_repo: str,
    task_pr: int | None,
    task_status: str,
    merged: bool,
    ended: str,
    reconciles: list[int],
) -> None:
    """The bot's fix PR closing ends the task that pushed it: merged (the fix landed) or
    rejected (a person closed it), and the PR the fix was for is reconciled."""
    task_id = await add_fix_task(bench, pr=task_pr, status=task_status, fix_pr=PR)
    payload = bench.event("pull_request.closed")
    payload["pull_request"]["merged"] = merged
    payload["pull_request"]["head"]["ref"] = head_ref
    payload["pull_request"]["head"]["repo"]["full_name"] = head_repo

    delivery = await bench.deliver("pull_request.closed", payload)

    assert delivery.status == "done", delivery.outcome
    task = await bench.store.task(task_id)
    assert task is not None and task.status == ended
    assert task.error == (REJECTED_ERROR if ended == "rejected" else None)
    assert await bench.reconciles() == reconciles


@pytest.mark.parametrize(
    ("head_ref", "task_pr"),
    [
        pytest.param("review-loop/default/12", None, id="person's-issue-fix-pr"),
        pytest.param("review-loop/pr-7/12", LOOPED, id="fix-pr-into-a-pr-branch"),
    ],
)
async def test_a_closed_fix_pr_with_its_own_loop_is_reconciled_too(
    bench: Bench, head_ref: str, task_pr: int | None
) -> None:
    """A fix PR the loop ran on is reconciled when it closes, like any tracked PR."""
    await add_fix_task(bench, pr=task_pr, status="pushed", fix_pr=PR)
    await bench.store.bump(REPO, PR, INSTALLATION)
    payload = bench.event("pull_request.closed")
    payload["pull_request"]["merged"] = True
    payload["pull_request"]["head"]["ref"] = head_ref

    await bench.deliver("pull_request.closed", payload)

    assert await bench.reconciles() == [*([task_pr] if task_pr else []), PR]
