"""Check run buttons: "Re-run" and the "Re-audit" action both audit the PR again."""

from bot.context import Context
from bot.loop.report import CHECK_NAME
from bot.loop.store import LoopStore
from bot.loop.triggers import request_reconcile
from bot.routing import Router

router = Router()


@router.register("check_run", action="rerequested")
@router.register("check_run", action="requested_action")
async def reaudit(ctx: Context) -> None:
    run = ctx.envelope.check_run
    if run is None or run.name != CHECK_NAME:
        return
    for pr in ctx.payload.get("check_run", {}).get("pull_requests", []) or []:
        number = pr.get("number")
        if isinstance(number, int) and await LoopStore(ctx.runtime.pool).get(ctx.repo, number):
            await request_reconcile(
                ctx.runtime, ctx.repo, number, ctx.installation_id, force_audit=True
            )
