"""Pull request events start or advance the loop; a merged fix PR updates its task."""

from bot.labels import FIX_BRANCH_PREFIX, LOOP_LABEL
from bot.loop.store import LoopStore
from bot.loop.tasks import request_reconcile
from bot.webhooks.context import Context
from bot.webhooks.routing import Router

router = Router()


@router.register("pull_request", action="opened")
@router.register("pull_request", action="synchronize")
@router.register("pull_request", action="reopened")
@router.register("pull_request", action="ready_for_review")
async def pull_request_changed(ctx: Context) -> None:
    await request_reconcile(ctx.runtime, ctx.repo, ctx.number, ctx.installation_id)


@router.register("pull_request", action="labeled")
async def loop_label_added(ctx: Context) -> None:
    if ctx.envelope.label is not None and ctx.envelope.label.name == LOOP_LABEL:
        await request_reconcile(ctx.runtime, ctx.repo, ctx.number, ctx.installation_id)


@router.register("pull_request", action="closed")
async def pull_request_closed(ctx: Context) -> None:
    pr = ctx.envelope.pull_request
    assert pr is not None
    store = LoopStore(ctx.runtime.pool)
    from_here = pr.head.repo is not None and pr.head.repo.full_name == ctx.repo
    if from_here and pr.head.ref.startswith(FIX_BRANCH_PREFIX):
        task = await store.task_by_fix_pr(ctx.repo, pr.number)
        if task is not None and task.status == "pushed":
            await store.fix_pr_closed(task.id, merged=bool(pr.merged))
            if task.pr_number is not None:
                await request_reconcile(ctx.runtime, ctx.repo, task.pr_number, ctx.installation_id)
    # Any PR the loop runs on (a fix PR too: the loop audits fix PRs, and runs on a person's
    # issue's fix PR like on any PR) is reconciled once more to record that it closed.
    if await store.get(ctx.repo, pr.number) is not None:
        await request_reconcile(ctx.runtime, ctx.repo, pr.number, ctx.installation_id)
