"""`Router.ignored`: a delivery no handler wants, decided from the payload alone."""

from typing import Any

from bot.webhooks.context import Context
from bot.webhooks.routing import Router
from handlers import enabled_router
from tests.support import load_event


async def _noop(ctx: Context) -> None:
    return None


def test_no_handler_means_ignored() -> None:
    router = Router()
    assert router.ignored("gollum", None, {}) == "no handler for gollum"
    assert router.ignored("issues", "pinned", {}) == "no handler for issues.pinned"


def test_ignored_only_when_every_handler_skips() -> None:
    first, second = Router(), Router()
    first.register("issues", action="labeled", skips=lambda p: "first skips")(_noop)
    assert Router(first).ignored("issues", "labeled", {}) == "first skips"

    def sometimes(payload: dict[str, Any]) -> str | None:
        return None if payload.get("act") else "second skips"

    second.register("issues", skips=sometimes)(_noop)  # every action of the event
    merged = Router(first, second)
    assert merged.ignored("issues", "labeled", {}) == "second skips; first skips"
    assert merged.ignored("issues", "labeled", {"act": True}) is None
    assert merged.ignored("issues", "opened", {}) == "second skips"


def test_a_handler_without_skips_always_gets_the_delivery() -> None:
    router = Router()
    router.register("issues", action="labeled", skips=lambda p: "skips")(_noop)
    router.register("issues", action="labeled")(_noop)
    assert router.ignored("issues", "labeled", {}) is None


def test_the_enabled_handlers_skip_only_what_they_would_not_act_on() -> None:
    router = enabled_router()
    comment = load_event("issue_comment.created")
    assert router.ignored("issue_comment", "created", comment) is not None
    comment["comment"]["body"] = "LGTM\n@review-loop audit"
    assert router.ignored("issue_comment", "created", comment) is None
    comment["comment"]["body"] = "@review-loop frobnicate"  # a bad command gets a reply
    assert router.ignored("issue_comment", "created", comment) is None
    comment["comment"] = {"id": 1}  # no text: the payload does not say, the worker decides
    assert router.ignored("issue_comment", "created", comment) is None

    labeled = load_event("issues.labeled")
    assert router.ignored("issues", "labeled", labeled) is not None  # "bug"
    for wanted in ("agent:claude", "review-loop:fix"):
        labeled["label"]["name"] = wanted
        assert router.ignored("issues", "labeled", labeled) is None
    labeled["issue"]["pull_request"] = {"url": "x"}
    assert router.ignored("issues", "labeled", labeled) is not None
    del labeled["label"]
    assert router.ignored("issues", "labeled", labeled) is None

    for name in ("pull_request.opened", "pull_request.synchronize", "pull_request.closed"):
        event, _, action = name.partition(".")
        assert router.ignored(event, action, load_event(name)) is None
