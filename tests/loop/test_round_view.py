"""A reconcile's view of its PR and issues stands in for a fix task's own reads only while
nothing happened to the PR since (its generation), for the task's first run on that head."""

from dataclasses import replace

from bot.github.records import IssueInfo
from bot.loop import round_view
from bot.loop.store import LoopStore, TaskRow
from bot.runtime import Runtime

REPO = "acme/shop"
HEAD = "a" * 40


def issue(number: int, state: str = "open") -> IssueInfo:
    return IssueInfo(
        number=number,
        state=state,
        state_reason=None,
        title=f"F401 in shop/cart.py:{number}",
        body=f'<!-- review-loop {{"pr": 1, "fp": "fp{number}"}} -->\nUnused import.',
        labels=("review-loop:finding",),
        user_login="review-loop[bot]",
        is_pull=False,
        html_url=f"https://github.com/{REPO}/issues/{number}",
        closed_by_login=None,
    )


async def planned(runtime: Runtime, issues: list[int]) -> tuple[int, TaskRow]:
    """PR 1 at a new generation with a fix task for `issues` at HEAD: the generation and
    the task as its first run sees it."""
    store = LoopStore(runtime.pool)
    generation = await store.bump(REPO, 1, 7)
    row = await store.add_task(
        repo=REPO,
        pr_number=1,
        issue_number=issues[0],
        installation_id=7,
        agent="ruff-fix",
        round=1,
        base_ref="change",
        base_sha=HEAD,
        branch="review-loop/fix-2",
        batch=issues if len(issues) > 1 else None,
    )
    assert row is not None
    return generation, replace(row, attempts=1)


async def fresh(runtime: Runtime, task: TaskRow) -> round_view.StartView | None:
    """The view `task` starts from, its PR's generation read now (as the runner does)."""
    return await round_view.fresh(runtime, task, await round_view.generation(runtime, task))


async def test_a_task_takes_the_view_of_its_round_while_nothing_happened_to_the_pr(
    runtime: Runtime,
) -> None:
    generation, task = await planned(runtime, [2, 3])
    await round_view.keep(runtime, REPO, 1, generation, HEAD, [issue(2), issue(3), issue(4)])
    view = await fresh(runtime, task)
    assert view is not None
    assert view.head_sha == HEAD
    assert view.issues == {2: issue(2), 3: issue(3)}  # the task's, as kept, labels a tuple
    assert view.generation == generation


async def test_an_event_about_the_pr_since_the_view_makes_the_task_read_again(
    runtime: Runtime,
) -> None:
    """A push, a close, an issue waived or a command: each bumps the PR's generation."""
    generation, task = await planned(runtime, [2])
    await round_view.keep(runtime, REPO, 1, generation, HEAD, [issue(2)])
    assert await fresh(runtime, task) is not None
    await LoopStore(runtime.pool).bump(REPO, 1, 7)
    assert await fresh(runtime, task) is None


async def test_no_view_for_a_retry_another_head_or_an_issue_it_left_out(
    runtime: Runtime,
) -> None:
    generation, task = await planned(runtime, [2, 3])
    await round_view.keep(runtime, REPO, 1, generation, HEAD, [issue(2), issue(3)])
    assert await fresh(runtime, task) is not None
    assert await round_view.fresh(runtime, replace(task, attempts=2), generation) is None
    assert await round_view.fresh(runtime, replace(task, base_sha="b" * 40), generation) is None
    assert await round_view.fresh(runtime, replace(task, pr_number=None), None) is None
    # Kept without issue 3 (the reconcile edited it): the task reads its issues itself.
    await round_view.keep(runtime, REPO, 1, generation, HEAD, [issue(2)])
    assert await fresh(runtime, task) is None


async def test_a_view_older_than_fresh_s_is_not_used(runtime: Runtime) -> None:
    generation, task = await planned(runtime, [2])
    await round_view.keep(runtime, REPO, 1, generation, HEAD, [issue(2)])
    async with runtime.pool.connection() as conn:
        await conn.execute(
            """UPDATE review_loop_github_cache
                  SET fetched_at = now() - make_interval(secs => %s)
                WHERE key LIKE 'round-view:%%'""",
            (round_view.FRESH_S + 1,),
        )
    assert await fresh(runtime, task) is None
