"""`request_reconcile`: the generation bump and its reconcile job in one statement."""

import psycopg
import pytest

from bot.loop.store import LoopStore
from bot.loop.tasks import FIRST_FEEDBACK_PRIORITY, RECONCILE_PR, request_reconcile
from bot.runtime import Runtime

REPO = "octo/app"


async def jobs(db_url: str) -> list[tuple[dict[str, object], int, bool]]:
    """The reconcile jobs: their arguments, priority, and whether they are scheduled later."""
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        cur = await conn.execute(
            """SELECT args, priority, coalesce(scheduled_at > now(), false)
                 FROM procrastinate_jobs WHERE task_name = %s ORDER BY id""",
            (RECONCILE_PR.name,),
        )
        return [(r[0], r[1], r[2]) for r in await cur.fetchall()]


async def test_each_request_bumps_the_generation_and_queues_its_job(
    runtime: Runtime, db_url: str
) -> None:
    assert await request_reconcile(runtime, REPO, 7, 42) == 1
    assert await request_reconcile(runtime, REPO, 7, 43, delay_s=30) == 2
    assert await request_reconcile(runtime, REPO, 8, 42) == 1
    assert await jobs(db_url) == [
        ({"repo": REPO, "number": 7, "generation": 1}, FIRST_FEEDBACK_PRIORITY, False),
        ({"repo": REPO, "number": 7, "generation": 2}, 0, True),
        ({"repo": REPO, "number": 8, "generation": 1}, FIRST_FEEDBACK_PRIORITY, False),
    ]
    row = await LoopStore(runtime.pool).get(REPO, 7)
    assert row is not None and row.generation == 2 and row.installation_id == 43


async def test_flags_are_set_on_a_new_and_on_a_known_pr(runtime: Runtime) -> None:
    store = LoopStore(runtime.pool)
    await request_reconcile(runtime, REPO, 1, 42, stopped=True, force_audit=True)
    row = await store.get(REPO, 1)
    assert row is not None and row.stopped and row.force_audit
    await request_reconcile(runtime, REPO, 1, 42, stopped=False)
    row = await store.get(REPO, 1)
    assert row is not None and not row.stopped and row.force_audit
    await request_reconcile(runtime, REPO, 1, 42)  # no flags: left as they are
    row = await store.get(REPO, 1)
    assert row is not None and row.generation == 3 and row.force_audit and not row.stopped


async def test_an_unknown_flag_is_refused_before_anything_is_written(
    runtime: Runtime, db_url: str
) -> None:
    with pytest.raises(TypeError, match="unknown PR flags"):
        await request_reconcile(runtime, REPO, 1, 42, generation=True)
    assert await jobs(db_url) == []
    assert await LoopStore(runtime.pool).get(REPO, 1) is None


async def test_a_fix_tasks_end_leaves_an_earlier_urgent_request_urgent(runtime: Runtime) -> None:
    """Only a fix task's end asks for a reconcile that may wait for the PR's fix tasks; an
    event's request before it still holds."""
    store = LoopStore(runtime.pool)
    await request_reconcile(runtime, REPO, 1, 42, urgent=False)
    row = await store.get(REPO, 1)
    assert row is not None and not row.urgent
    await request_reconcile(runtime, REPO, 1, 42)  # an event
    await request_reconcile(runtime, REPO, 1, 42, urgent=False)
    row = await store.get(REPO, 1)
    assert row is not None and row.urgent and row.generation == 3


async def test_urgent_until_a_reconcile_of_its_generation_or_later_finished(
    runtime: Runtime,
) -> None:
    store = LoopStore(runtime.pool)
    generation = await request_reconcile(runtime, REPO, 1, 42)
    urgent = await request_reconcile(runtime, REPO, 1, 42)  # came while that reconcile ran
    await request_reconcile(runtime, REPO, 1, 42, urgent=False)
    await store.mark_handled(REPO, 1, generation)
    row = await store.get(REPO, 1)
    assert row is not None and row.urgent
    await store.mark_handled(REPO, 1, urgent)
    row = await store.get(REPO, 1)
    assert row is not None and not row.urgent
