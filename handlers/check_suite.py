"""Re-running all checks on a PR asks GitHub for our check suite again: audit the PR again."""

from bot.loop.store import LoopStore
from bot.loop.tasks import request_reconcile
from bot.webhooks.context import Context
from bot.webhooks.routing import Router

router = Router()


@router.register("check_suite", action="rerequested")
async def reaudit_suite(ctx: Context) -> None:
    suite = ctx.envelope.check_suite
    if suite is None:
        return
    store = LoopStore(ctx.runtime.pool)
    numbers: list[object] = [pr.get("number") for pr in suite.pull_requests]
    if not numbers and suite.head_sha:
        # As for check runs, GitHub lists no pull requests for a head pushed to a fork.
        numbers = list(await store.prs_audited_at(ctx.repo, suite.head_sha))
    for number in numbers:
        if isinstance(number, int) and await store.get(ctx.repo, number):
            await request_reconcile(
                ctx.runtime, ctx.repo, number, ctx.installation_id, force_audit=True
            )
