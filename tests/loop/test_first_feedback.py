"""Whether other new PRs of an installation wait for their first feedback: what a first
reconcile asks after posting its check run, before it files the issues."""

from bot.loop.store import LoopStore
from bot.loop.tasks import request_reconcile
from bot.runtime import Runtime


async def test_only_due_first_reconciles_of_the_same_installation_count(runtime: Runtime) -> None:
    store = LoopStore(runtime.pool)
    await request_reconcile(runtime, "o/r", 1, 7)  # the PR asking
    assert not await store.first_feedback_waiting(7, "o/r", 1)  # its own job does not count

    await request_reconcile(runtime, "o/other", 3, 8)  # another installation's new PR
    await request_reconcile(runtime, "o/r", 4, 7, delay_s=600)  # not due yet
    assert not await store.first_feedback_waiting(7, "o/r", 1)

    await request_reconcile(runtime, "o/r", 2, 7)  # a new PR of the same installation
    assert await store.first_feedback_waiting(7, "o/r", 1)

    await store.mark_handled("o/r", 2, 1)  # reconciled once already: not waiting for its first
    assert not await store.first_feedback_waiting(7, "o/r", 1)
