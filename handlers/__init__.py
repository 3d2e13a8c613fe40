"""The enabled handlers: one router per concern, switched on by listing it here."""

from bot.routing import Router


def enabled_router() -> Router:
    """Every enabled handler module's router, merged. Importing does not enable anything."""
    from handlers import installation

    return Router(installation.router)
