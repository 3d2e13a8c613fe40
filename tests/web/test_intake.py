"""POST /webhook: verify, store + enqueue atomically, 202; and dispatch to handlers."""

import asyncio
import io
import json
import logging
from typing import Any

import httpx
import pytest

from bot.config import ConfigError, LogFormat
from bot.logs import setup_logging
from bot.loop.fleet import Fleet
from bot.runtime import Runtime
from bot.web.app import create_app
from bot.webhooks.context import Context
from bot.webhooks.dispatch import Dispatcher, dispatch
from bot.webhooks.routing import Router
from bot.worker import drain
from tests.conftest import make_settings
from tests.support import SECRET, fixture_names, load_event, post_event, serve_asgi, signed_headers

EVENTS = [name for name in fixture_names() if name != "ping"]


async def _count(runtime: Runtime, sql: str) -> int:
    async with runtime.pool.connection() as conn:
        cur = await conn.execute(sql)
        row = await cur.fetchone()
    assert row is not None
    return int(row["n"])


async def stored(runtime: Runtime) -> int:
    return await _count(runtime, "SELECT count(*) AS n FROM review_loop_deliveries")


async def queued_jobs(runtime: Runtime) -> int:
    return await _count(runtime, "SELECT count(*) AS n FROM procrastinate_jobs")


async def delivery(runtime: Runtime, delivery_id: str) -> dict[str, Any]:
    async with runtime.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT status, outcome FROM review_loop_deliveries WHERE id = %s", (delivery_id,)
        )
        row = await cur.fetchone()
    assert row is not None
    return dict(row)


@pytest.mark.parametrize("name", EVENTS)
async def test_every_real_payload_reaches_its_handler(
    runtime: Runtime, router: Router, name: str
) -> None:
    """A correctly signed real GitHub payload is accepted and its registered handler runs;
    one another App's bot sent (the `check_suite.rerequested` example) is ignored."""
    event, _, dotted_action = name.partition(".")
    action = dotted_action or None
    by_a_bot = load_event(name).get("sender", {}).get("type") == "Bot"
    seen: list[Context] = []

    @router.register(event, action=action)
    async def record(ctx: Context) -> None:
        seen.append(ctx)

    async with serve_asgi(create_app(runtime)) as base, httpx.AsyncClient() as client:
        resp = await post_event(client, base + "/webhook", event, load_event(name), delivery=name)
    assert resp.status_code == 202, resp.text
    await drain(runtime)
    if by_a_bot:
        assert seen == []
        assert (await delivery(runtime, name))["status"] == "ignored"
        return
    assert [(c.event, c.action, c.delivery_id) for c in seen] == [(event, action, name)]
    assert seen[0].payload == load_event(name)  # intact, `repository` (when named) included
    assert (await delivery(runtime, name))["status"] == "done"


async def test_ping_is_answered_without_storing(runtime: Runtime) -> None:
    """GitHub's ping gets 200 and leaves nothing behind."""
    async with serve_asgi(create_app(runtime)) as base, httpx.AsyncClient() as client:
        resp = await post_event(client, base + "/webhook", "ping", load_event("ping"))
    assert resp.status_code == 200
    assert await stored(runtime) == 0


@pytest.mark.parametrize(
    "header",
    [
        pytest.param(None, id="missing"),
        pytest.param("sha256=" + "0" * 64, id="wrong"),
        pytest.param("sha1=0123456789abcdef0123456789abcdef01234567", id="sha1-only"),
        pytest.param("WRONG-SECRET", id="signed-with-another-secret"),
        pytest.param("NO-PREFIX", id="hex-without-sha256-prefix"),
    ],
)
async def test_bad_signature_is_refused_and_nothing_stored(
    runtime: Runtime, header: str | None
) -> None:
    """Missing, wrong and SHA-1-only signatures get 401; nothing is stored or enqueued."""
    body = json.dumps(load_event("pull_request.opened")).encode()
    headers = signed_headers("pull_request", body)
    if header == "WRONG-SECRET":
        headers = signed_headers("pull_request", body, secret="not-the-secret")
    elif header == "NO-PREFIX":
        headers["X-Hub-Signature-256"] = headers["X-Hub-Signature-256"].removeprefix("sha256=")
    elif header is None:
        del headers["X-Hub-Signature-256"]
    else:
        headers["X-Hub-Signature-256"] = header
    async with serve_asgi(create_app(runtime)) as base, httpx.AsyncClient() as client:
        resp = await client.post(base + "/webhook", content=body, headers=headers)
    assert resp.status_code == 401
    assert "REVIEW_LOOP_WEBHOOK_SECRET" in resp.json()["error"]
    assert await stored(runtime) == 0
    assert await queued_jobs(runtime) == 0


async def test_malformed_json_is_400(runtime: Runtime) -> None:
    """A correctly signed body that is not JSON gets 400 and is not stored."""
    body = b'{"action": "opened", '
    async with serve_asgi(create_app(runtime)) as base, httpx.AsyncClient() as client:
        resp = await client.post(
            base + "/webhook", content=body, headers=signed_headers("pull_request", body)
        )
    assert resp.status_code == 400
    assert await stored(runtime) == 0


async def test_body_over_25_mb_is_413(runtime: Runtime) -> None:
    """A 26 MB body is refused with 413 before it is verified or stored."""
    body = b'{"pad": "' + b"x" * (26 * 1024 * 1024) + b'"}'
    async with serve_asgi(create_app(runtime)) as base, httpx.AsyncClient(timeout=60) as client:
        resp = await client.post(
            base + "/webhook", content=body, headers=signed_headers("pull_request", body)
        )
    assert resp.status_code == 413
    assert await stored(runtime) == 0


async def test_unknown_event_is_accepted_recorded_and_ignored(runtime: Runtime) -> None:
    """An event no handler knows gets 202, is recorded, and dispatch marks it ignored."""
    async with serve_asgi(create_app(runtime)) as base, httpx.AsyncClient() as client:
        resp = await post_event(
            client, base + "/webhook", "deployment_review", {"action": "x"}, delivery="d-unknown"
        )
    assert resp.status_code == 202
    await drain(runtime)
    row = await delivery(runtime, "d-unknown")
    assert row["status"] == "ignored"
    assert "no handler" in row["outcome"]["reason"]


async def test_one_delivery_posted_twenty_times_is_stored_and_dispatched_once(
    runtime: Runtime, router: Router
) -> None:
    """Twenty posts of one delivery id, ten of them at once: one row, one job, one dispatch."""
    calls: list[str] = []

    @router.register("pull_request", action="opened")
    async def record(ctx: Context) -> None:
        calls.append(ctx.delivery_id)

    payload = load_event("pull_request.opened")
    async with serve_asgi(create_app(runtime)) as base, httpx.AsyncClient() as client:
        url = base + "/webhook"
        first = [await post_event(client, url, "pull_request", payload, delivery="d1")]
        rest = await asyncio.gather(
            *(post_event(client, url, "pull_request", payload, delivery="d1") for _ in range(19))
        )
    codes = [r.status_code for r in first + list(rest)]
    assert codes[0] == 202
    assert all(200 <= c < 300 for c in codes)
    assert await stored(runtime) == 1
    assert await queued_jobs(runtime) == 1
    await drain(runtime)
    assert calls == ["d1"]


async def test_failing_handler_is_isolated_and_recorded(
    fleet: Fleet, runtime: Runtime, router: Router
) -> None:
    """A handler that raises is logged and recorded; the other handler still runs."""
    ran: list[str] = []

    @router.register("issues", action="labeled")
    async def broken(ctx: Context) -> None:
        raise RuntimeError("boom")

    @router.register("issues")
    async def healthy(ctx: Context) -> None:
        ran.append(ctx.delivery_id)

    async with serve_asgi(create_app(runtime)) as base, httpx.AsyncClient() as client:
        await post_event(
            client, base + "/webhook", "issues", load_event("issues.labeled"), delivery="d-fail"
        )
    await drain(runtime)
    assert ran == ["d-fail"]
    row = await delivery(runtime, "d-fail")
    assert row["status"] == "queued"  # kept for the retry, nothing lost
    outcomes = {name.rsplit(".", 1)[-1]: result for name, result in row["outcome"].items()}
    assert outcomes["healthy"] == "ok"
    assert outcomes["broken"] == "error: RuntimeError: boom"
    async with runtime.pool.connection() as conn:
        cur = await conn.execute("SELECT status::text AS s FROM procrastinate_jobs")
        jobs = [r["s"] for r in await cur.fetchall()]
    assert jobs == ["todo"]  # the dispatch job is scheduled again

    dispatcher = Dispatcher(fleet, router)
    await dispatch(dispatcher, "d-fail", final_attempt=True)  # the last attempt gives up
    assert ran == ["d-fail", "d-fail"]
    assert (await delivery(runtime, "d-fail"))["status"] == "failed"


async def test_events_sent_by_the_bot_itself_are_ignored(runtime: Runtime, router: Router) -> None:
    """A delivery whose sender is this App's bot account reaches no handler."""
    ran: list[str] = []

    @router.register("issue_comment")
    async def record(ctx: Context) -> None:
        ran.append(ctx.delivery_id)

    payload = load_event("issue_comment.created")
    payload["sender"] = {"login": "review-loop-test[bot]", "id": 1, "type": "Bot"}
    async with serve_asgi(create_app(runtime)) as base, httpx.AsyncClient() as client:
        await post_event(client, base + "/webhook", "issue_comment", payload, delivery="d-own")
    await drain(runtime)
    assert ran == []
    row = await delivery(runtime, "d-own")
    assert row["status"] == "ignored"
    assert "own bot" in row["outcome"]["reason"]


async def test_handler_logs_carry_the_delivery_id(runtime: Runtime, router: Router) -> None:
    """Every line logged while handling a delivery names that delivery."""
    stream = io.StringIO()
    setup_logging("INFO", LogFormat.json, stream)

    @router.register("pull_request")
    async def chatty(ctx: Context) -> None:
        ctx.log.info("handling PR %s", ctx.number)

    try:
        async with serve_asgi(create_app(runtime)) as base, httpx.AsyncClient() as client:
            await post_event(
                client,
                base + "/webhook",
                "pull_request",
                load_event("pull_request.closed"),
                delivery="d-logs",
            )
        await drain(runtime)
    finally:
        logging.getLogger().handlers.clear()
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    handled = [e for e in lines if "handling PR" in e["msg"]]
    assert handled and all(e["delivery"] == "d-logs" for e in handled)


def test_app_refuses_to_start_without_a_webhook_secret(tmp_path: Any) -> None:
    """No secret configured is a start-up error that says how to set one."""
    settings = make_settings(tmp_path, "postgresql://unused", webhook_secret=None)
    with pytest.raises(ConfigError, match="REVIEW_LOOP_WEBHOOK_SECRET"):
        settings.require_webhook_secret()
    assert SECRET  # the fixtures' secret is not the empty string


async def test_only_a_post_on_the_webhook_path_skips_starlette(runtime: Runtime) -> None:
    """POST /webhook reaches the intake; a GET there is Starlette's 405 and stores nothing,
    a POST elsewhere its 404, and the other routes are served as before."""
    body = json.dumps(load_event("issues.labeled")).encode()
    headers = signed_headers("issues", body)
    async with serve_asgi(create_app(runtime)) as base, httpx.AsyncClient() as client:
        accepted = await client.post(f"{base}/webhook", content=body, headers=headers)
        wrong_method = await client.get(f"{base}/webhook", headers=headers)
        wrong_path = await client.post(f"{base}/hook", content=body, headers=headers)
        health = await client.get(f"{base}/healthz")
    assert accepted.status_code == 202
    assert wrong_method.status_code == 405
    assert wrong_path.status_code == 404
    assert health.text == "ok"
    assert await stored(runtime) == 1
