"""The enabled handlers: one router per concern, switched on by listing it here."""

from bot.webhooks.routing import Router


def enabled_router() -> Router:
    """Every enabled handler module's router, merged. Importing does not enable anything."""
    from handlers import check_run, installation, issue_comment, issues, pull_request

    return Router(
        pull_request.router,
        issues.router,
        issue_comment.router,
        check_run.router,
        installation.router,
    )
