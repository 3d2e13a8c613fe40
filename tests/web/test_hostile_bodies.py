"""Signed bodies Python's json accepts but PostgreSQL or GitHub would not: a clear 400 for
what is not GitHub's JSON, and every valid payload stored and dispatched as it came."""

import base64
import json
import os
from typing import Any

import httpx
import pytest

from bot.runtime import Runtime
from bot.web.app import create_app
from bot.webhooks.context import Context
from bot.webhooks.routing import Router
from bot.worker import drain
from tests.support import load_event, post_event, serve_asgi, signed_headers


def _opened(**pull_request: object) -> dict[str, Any]:
    payload = load_event("pull_request.opened")
    payload["pull_request"].update(pull_request)
    return payload


def _compact(payload: object) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()


async def _post(runtime: Runtime, body: bytes, **headers: str) -> httpx.Response:
    sent = signed_headers("pull_request", body)
    sent.update(headers)
    async with serve_asgi(create_app(runtime)) as base, httpx.AsyncClient() as client:
        return await client.post(base + "/webhook", content=body, headers=sent)


async def _stored(runtime: Runtime) -> int:
    async with runtime.pool.connection() as conn:
        cur = await conn.execute("SELECT count(*) AS n FROM review_loop_deliveries")
        row = await cur.fetchone()
    assert row is not None
    return int(row["n"])


NOT_GITHUB_JSON = [
    pytest.param(b"[" * 100_000 + b"]" * 100_000, "depth", id="100k-nested-arrays"),
    pytest.param(_compact(_opened()).decode().encode("utf-16"), "UTF-8", id="utf-16"),
    pytest.param(_compact(_opened()).decode().encode("utf-16-le"), "", id="utf-16-no-bom"),
    pytest.param(b'{"action": "opened", "x": "\xff"}', "UTF-8", id="invalid-utf-8"),
    pytest.param(b'{"action": "\xed\xa0\x80"}', "UTF-8", id="utf-8-encoded-surrogate"),
    pytest.param(b'{"action": "opened", "x": "\\ud800"}', "surrogate", id="lone-surrogate-escape"),
    pytest.param(b'{"action": "opened", "x": NaN}', "", id="nan"),
    pytest.param(b'{"action": "opened", "x": Infinity}', "", id="infinity"),
    pytest.param(b'{"action": "opened", "x": -Infinity}', "", id="minus-infinity"),
    pytest.param(b'{"action": "opened", "x": 1e400}', "infinity", id="number-beyond-double"),
    pytest.param(b"\xef\xbb\xbf" + _compact(_opened()), "BOM", id="utf-8-bom"),
    pytest.param(b'{"action": "opened", "x": "a\x01b"}', "control", id="raw-control-character"),
    pytest.param(b'{"action": "opened"} trailing', "after", id="trailing-data"),
    pytest.param(b'["opened"]', "not an object", id="array-not-object"),
    pytest.param(b"", "", id="empty"),
]


@pytest.mark.parametrize(("body", "reason"), NOT_GITHUB_JSON)
async def test_a_body_that_is_not_githubs_json_is_400_and_not_stored(
    runtime: Runtime, body: bytes, reason: str
) -> None:
    """A correctly signed body that is not RFC 8259 JSON in UTF-8 (an object) gets a 400
    that says why, never a 500, and nothing is stored."""
    resp = await _post(runtime, body)
    assert resp.status_code == 400, resp.text
    error = resp.json()["error"]
    assert "JSON" in error
    assert reason in error
    assert await _stored(runtime) == 0


async def test_a_nul_in_a_pr_body_reaches_the_handler_intact(
    runtime: Runtime, router: Router
) -> None:
    """`\\u0000` is valid JSON (jsonb refuses it): the delivery is stored, and the handler
    gets the PR body with the NUL character where GitHub put it."""
    seen: list[Context] = []

    @router.register("pull_request", action="opened")
    async def record(ctx: Context) -> None:
        seen.append(ctx)

    payload = _opened(body="before\u0000after", title="a \u0000 title")
    async with serve_asgi(create_app(runtime)) as base, httpx.AsyncClient() as client:
        resp = await post_event(
            client, base + "/webhook", "pull_request", payload, delivery="d-nul"
        )
    assert resp.status_code == 202, resp.text
    await drain(runtime)
    assert [c.delivery_id for c in seen] == ["d-nul"]
    assert seen[0].payload["pull_request"]["body"] == "before\x00after"
    assert seen[0].payload == payload


@pytest.mark.parametrize(
    ("changes", "shown"),
    [
        pytest.param({"action": "op\u0000ened"}, {"action": "opened"}, id="nul-in-action"),
        pytest.param(
            {"installation": {"id": 2**70}}, {"installation_id": None}, id="installation-id-too-big"
        ),
        pytest.param(
            {"installation": {"id": "12"}}, {"installation_id": None}, id="installation-id-string"
        ),
        pytest.param(
            {"sender": {"login": "x" * 5000, "id": 1, "type": "User"}},
            {"sender": "x" * 200},
            id="5000-character-login",
        ),
        pytest.param({"repository": "acme/demo"}, {"repository": None}, id="repository-not-object"),
    ],
)
async def test_odd_fields_are_stored_not_refused(
    runtime: Runtime, changes: dict[str, object], shown: dict[str, object]
) -> None:
    """Fields copied out for people that a column cannot hold as they are (a NUL, a number
    past bigint, 5,000 characters) are cleaned or left empty; the delivery is stored."""
    payload = {**load_event("pull_request.opened"), **changes}
    resp = await _post(runtime, _compact(payload), **{"X-GitHub-Delivery": "d-odd"})
    assert resp.status_code == 202, resp.text
    async with runtime.pool.connection() as conn:
        cur = await conn.execute(
            """SELECT action, installation_id, repository, sender
                 FROM review_loop_deliveries WHERE id = 'd-odd'"""
        )
        row = await cur.fetchone()
    assert row is not None
    assert {key: row[key] for key in shown} == shown


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        pytest.param(
            {"X-GitHub-Delivery": "d" * 10_000}, "X-GitHub-Delivery", id="10kb-delivery-id"
        ),
        pytest.param({"X-GitHub-Delivery": "a b"}, "X-GitHub-Delivery", id="space-in-delivery-id"),
        pytest.param(
            {"X-GitHub-Delivery": "d" * 129}, "X-GitHub-Delivery", id="129-char-delivery-id"
        ),
        pytest.param({"X-GitHub-Event": "e" * 65}, "X-GitHub-Event", id="65-char-event"),
        pytest.param({"X-GitHub-Event": "Pull_Request"}, "X-GitHub-Event", id="capitals-in-event"),
        pytest.param({"X-GitHub-Event": "pull request"}, "X-GitHub-Event", id="space-in-event"),
        pytest.param({"X-GitHub-Event": ""}, "required", id="empty-event"),
        pytest.param({"X-Padding": "p" * 17_000}, "headers larger", id="17kb-of-headers"),
    ],
)
async def test_oversized_or_malformed_headers_are_400(
    runtime: Runtime, headers: dict[str, str], message: str
) -> None:
    """A delivery id, an event name or headers past their bounds get a 400 naming the
    header; nothing is stored."""
    resp = await _post(runtime, _compact(load_event("pull_request.opened")), **headers)
    assert resp.status_code == 400, resp.text
    assert message in resp.json()["error"]
    assert await _stored(runtime) == 0


async def test_a_36_character_guid_and_a_long_event_name_are_accepted(runtime: Runtime) -> None:
    """The bounds leave room for what GitHub sends: a GUID, the longest event names."""
    resp = await _post(
        runtime,
        _compact(load_event("pull_request.opened")),
        **{
            "X-GitHub-Delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958",
            "X-GitHub-Event": "security_and_analysis",
        },
    )
    assert resp.status_code == 202, resp.text


async def test_bodies_small_and_past_a_page_come_back_as_they_were_sent(
    runtime: Runtime, router: Router
) -> None:
    """Delivery rows are stored as they come up to a page (migration 18: PostgreSQL no longer
    tries to compress a row's lz4 frame again); a body whose frame does not fit a page (60 KB
    of random text) still goes out of line to TOAST, and both reach the handler as sent."""
    seen: dict[str, Any] = {}

    @router.register("pull_request", action="opened")
    async def record(ctx: Context) -> None:
        seen[ctx.delivery_id] = ctx.payload

    big = _opened(body=base64.b64encode(os.urandom(45_000)).decode())
    small = _opened()
    for delivery, payload in (("d-small", small), ("d-big", big)):
        resp = await _post(runtime, _compact(payload), **{"X-GitHub-Delivery": delivery})
        assert resp.status_code == 202, resp.text
    async with runtime.pool.connection() as conn:
        cur = await conn.execute(
            """SELECT id, octet_length(body) AS stored, pg_column_compression(body) AS method,
                      pg_relation_size(reltoastrelid) AS toast, reloptions
                 FROM review_loop_deliveries, pg_class
                WHERE relname = 'review_loop_deliveries' ORDER BY id"""
        )
        rows = {row["id"]: row for row in await cur.fetchall()}
    assert rows["d-small"]["reloptions"] == ["toast_tuple_target=8160"]
    assert rows["d-small"]["stored"] < 8000 and rows["d-small"]["method"] is None
    assert rows["d-big"]["stored"] > 8160 and rows["d-big"]["toast"] > 0
    await drain(runtime)
    assert seen == {"d-small": small, "d-big": big}
