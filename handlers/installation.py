"""Installation events: log who installed or removed the App."""

from bot.webhooks.context import Context
from bot.webhooks.routing import Router

router = Router()


@router.register("installation")
async def installation_changed(ctx: Context) -> None:
    account = (ctx.payload.get("installation") or {}).get("account") or {}
    ctx.log.info(
        "installation %s %s on %s", ctx.installation_id, ctx.action, account.get("login", "?")
    )
