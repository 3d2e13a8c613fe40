"""The intake stores a delivery no handler wants as ignored, with no dispatch job; the
rest of its batch is queued as before, and a redelivered id stays a duplicate."""

import asyncio
import json
from typing import Any

import httpx
import psycopg

from bot.runtime import Runtime
from bot.web.app import create_app
from bot.webhooks.context import Context
from bot.webhooks.routing import Router
from bot.worker import drain
from handlers import enabled_router
from tests.support import load_event, post_event, serve_asgi


async def rows(db_url: str) -> dict[str, dict[str, Any]]:
    """Each stored delivery: its status, outcome, attempts, the dispatch jobs naming it, and
    whether its body is kept."""
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        cur = await conn.execute(
            """SELECT d.id, d.status, d.outcome, d.attempts, d.dispatched_at IS NOT NULL,
                      count(j.id), d.body IS NOT NULL
                 FROM review_loop_deliveries d
                 LEFT JOIN procrastinate_jobs j
                        ON j.task_name = 'dispatch_deliveries'
                       AND j.args->'delivery_ids' ? d.id
                GROUP BY d.id"""
        )
        return {
            r[0]: {"status": r[1], "outcome": r[2], "attempts": r[3], "dispatched": r[4],
                   "jobs": int(r[5]), "body": r[6]}
            for r in await cur.fetchall()
        }  # fmt: skip


def comment(body: str) -> dict[str, Any]:
    payload = load_event("issue_comment.created")
    payload["comment"]["body"] = body
    return payload


def labeled(name: str) -> dict[str, Any]:
    payload = load_event("issues.labeled")
    payload["label"]["name"] = name
    return payload


async def test_deliveries_no_handler_wants_are_stored_ignored_without_a_job(
    runtime: Runtime, db_url: str
) -> None:
    """Sent together (sharing batches): the comment without a command, the label that asks for
    no fix and the event no handler knows are stored ignored, with the reason and no job;
    the command, the fix label and the opened PR are each named by one job. Only these keep
    their body: nothing reads an ignored delivery's."""
    posts = {
        "no-command": ("issue_comment", comment("Thanks, fixing it now.")),
        "no-fix-label": ("issues", labeled("bug")),
        "unknown": ("deployment_review", {"action": "requested"}),
        "command": ("issue_comment", comment("@review-loop status")),
        "fix-label": ("issues", labeled("agent:claude")),
        "opened": ("pull_request", load_event("pull_request.opened")),
    }
    async with (
        serve_asgi(create_app(runtime, enabled_router())) as base,
        httpx.AsyncClient() as client,
    ):
        answers = await asyncio.gather(
            *(
                post_event(client, base + "/webhook", event, payload, delivery=delivery)
                for delivery, (event, payload) in posts.items()
            )
        )
    assert [a.status_code for a in answers] == [202] * len(posts)
    by_id = {a.json()["delivery"]: a.json() for a in answers}
    stored = await rows(db_url)
    assert set(stored) == set(posts)
    ignored = {"no-command", "no-fix-label", "unknown"}
    for delivery in ignored:
        assert by_id[delivery]["queued"] is False
        assert stored[delivery]["status"] == "ignored"
        assert stored[delivery]["outcome"]["reason"] == by_id[delivery]["ignored"]
        assert stored[delivery]["dispatched"]
        assert stored[delivery]["jobs"] == 0
        assert stored[delivery]["body"] is False
    assert stored["no-command"]["outcome"]["reason"] == "the comment holds no @review-loop command"
    assert stored["no-fix-label"]["outcome"]["reason"] == "the label 'bug' asks for no fix"
    assert stored["unknown"]["outcome"]["reason"] == "no handler for deployment_review.requested"
    for delivery in set(posts) - ignored:
        assert by_id[delivery]["queued"] is True
        assert stored[delivery]["status"] == "queued"
        assert stored[delivery]["jobs"] == 1
        assert stored[delivery]["body"] is True


async def test_a_batch_of_ignored_deliveries_queues_no_job(runtime: Runtime, db_url: str) -> None:
    async with (
        serve_asgi(create_app(runtime, enabled_router())) as base,
        httpx.AsyncClient() as client,
    ):
        answers = await asyncio.gather(
            *(
                post_event(client, base + "/webhook", "issues", labeled("bug"), delivery=f"l-{i}")
                for i in range(20)
            )
        )
    assert [a.status_code for a in answers] == [202] * 20
    stored = await rows(db_url)
    assert {s["status"] for s in stored.values()} == {"ignored"}
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        cur = await conn.execute("SELECT count(*) FROM procrastinate_jobs")
        assert await cur.fetchone() == (0,)


async def test_a_redelivered_ignored_delivery_is_a_duplicate(runtime: Runtime, db_url: str) -> None:
    """Redelivery keeps the id: the second copy of an ignored delivery answers 200
    duplicate, also inside one batch, and nothing is stored or queued again."""
    payload = comment("no command here")
    async with (
        serve_asgi(create_app(runtime, enabled_router())) as base,
        httpx.AsyncClient() as client,
    ):
        url = base + "/webhook"
        first = await post_event(client, url, "issue_comment", payload, delivery="again")
        rest = await asyncio.gather(
            *(post_event(client, url, "issue_comment", payload, delivery="again") for _ in range(5))
        )
    assert first.status_code == 202 and first.json()["queued"] is False
    assert [r.status_code for r in rest] == [200] * 5
    assert all(r.json()["duplicate"] for r in rest)
    assert list(await rows(db_url)) == ["again"]


async def test_without_a_router_every_delivery_is_queued(
    runtime: Runtime, router: Router, db_url: str
) -> None:
    """`create_app` without the handlers' router leaves every decision to the worker."""
    seen: list[str] = []

    @router.register("issue_comment", action="created", skips=lambda payload: "never asked")
    async def record(ctx: Context) -> None:
        seen.append(ctx.delivery_id)

    async with serve_asgi(create_app(runtime)) as base, httpx.AsyncClient() as client:
        resp = await post_event(
            client, base + "/webhook", "issue_comment", comment("hi"), delivery="c1"
        )
    assert resp.json() == {"delivery": "c1", "queued": True}
    await drain(runtime)
    assert seen == ["c1"]
    assert (await rows(db_url))["c1"]["status"] == "done"


def test_the_stored_reason_is_valid_jsonb_text() -> None:
    """A label name with a NUL (jsonb refuses \\u0000 in text) is quoted with repr."""
    reason = enabled_router().ignored("issues", "labeled", labeled("x\x00y"))
    assert reason is not None and "\x00" not in reason
    json.dumps({"reason": reason})
