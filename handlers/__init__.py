"""The enabled handlers: one router per concern, switched on by listing it here."""

from bot.webhooks.routing import Router


def enabled_router() -> Router:
    """Every enabled handler module's router, merged. Importing does not enable anything."""
    from handlers import (
        check_run,
        check_suite,
        installation,
        issue_comment,
        issues,
        pull_request,
        push,
    )

    return Router(
        pull_request.router,
        issues.router,
        issue_comment.router,
        check_run.router,
        check_suite.router,
        push.router,
        installation.router,
    )
