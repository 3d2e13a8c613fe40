"""Check run buttons: "Re-run" and the "Re-audit" action both audit the PR again."""

from bot.loop.report import CHECK_NAME
from bot.loop.store import LoopStore
from bot.loop.tasks import request_reconcile
from bot.webhooks.context import Context
from bot.webhooks.routing import Router

router = Router()


@router.register("check_run", action="rerequested")
@router.register("check_run", action="requested_action")
async def reaudit(ctx: Context) -> None:
    run = ctx.envelope.check_run
    if run is None or run.name != CHECK_NAME:
        return
    store = LoopStore(ctx.runtime.pool)
    listed = ctx.payload.get("check_run", {}).get("pull_requests", []) or []
    numbers = [pr.get("number") for pr in listed]
    if not numbers and run.head_sha:
        # GitHub lists no pull requests on a check run whose head was pushed to a fork: the
        # run is ours, so the PR is the one the loop audited at that commit.
        numbers = await store.prs_audited_at(ctx.repo, run.head_sha)
    for number in numbers:
        if isinstance(number, int) and await store.get(ctx.repo, number):
            await request_reconcile(
                ctx.runtime, ctx.repo, number, ctx.installation_id, force_audit=True
            )
