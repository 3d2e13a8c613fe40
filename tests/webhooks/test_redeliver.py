"""Redelivery passes: one at a time across workers, no connection held while on GitHub, and
no delivery asked for again while it may still be arriving."""

import asyncio
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from githubkit_schemas.latest import models
from pydantic import SecretStr

from bot.runtime import Runtime, open_runtime
from bot.webhooks.redeliver import redeliver_missed
from tests.conftest import make_settings
from tests.fakes.github import BASE_URL, FakeGitHub, skeleton

DELIVERIES = r"/app/hook/deliveries"
ATTEMPTS = r"/app/hook/deliveries/(\d+)/attempts"


def delivery(id_: int, guid: str, status_code: int, age_s: float = 60) -> dict[str, object]:
    """An item of the App's delivery log, attempted `age_s` ago."""
    return {
        **skeleton(models.HookDeliveryItem),
        "id": id_,
        "guid": guid,
        "status_code": status_code,
        "delivered_at": (datetime.now(UTC) - timedelta(seconds=age_s)).isoformat(),
    }


class GatedGitHub:
    """The fake GitHub with the App's delivery log; the first listing waits for `release`."""

    def __init__(self, log: list[dict[str, object]]) -> None:
        self.fake = FakeGitHub()
        self.listing = asyncio.Event()  # the first pass is inside its GitHub call
        self.release = asyncio.Event()
        self.fake.routes += [
            ("GET", re.compile(DELIVERIES + "$"), lambda m, r: httpx.Response(200, json=log)),
            ("POST", re.compile(ATTEMPTS + "$"), lambda m, r: httpx.Response(202, json={})),
        ]

    async def handle(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == DELIVERIES and not self.listing.is_set():
            self.listing.set()
            await self.release.wait()
        return self.fake.handle(request)

    def redelivered(self) -> list[int]:
        return [
            int(re.search(ATTEMPTS, r.url.path).group(1))  # type: ignore[union-attr]
            for r in self.fake.calls("POST", ATTEMPTS)
        ]


@pytest.fixture
def github() -> GatedGitHub:
    log = [
        delivery(11, "missed-1", 502),
        delivery(12, "ok", 202),
        delivery(13, "missed-2", 0),
        delivery(14, "arriving", 0, age_s=1),  # in flight: GitHub has no answer yet
        delivery(15, "just-failed", 502, age_s=1),
    ]
    return GatedGitHub(log)


@pytest.fixture
async def one_connection_runtime(
    tmp_path: Path, db_url: str, private_key: str, github: GatedGitHub
) -> AsyncIterator[Runtime]:
    """A runtime whose pool has a single connection, talking to the gated fake GitHub."""
    settings = make_settings(
        tmp_path,
        db_url,
        app_id=7,
        private_key=SecretStr(private_key),
        github_url=BASE_URL,
    )
    transport = httpx.MockTransport(github.handle)
    async with open_runtime(settings, github_transport=transport, pool_size=1) as rt:
        yield rt


async def test_a_second_concurrent_pass_redelivers_nothing(
    one_connection_runtime: Runtime, github: GatedGitHub
) -> None:
    """While one pass waits on GitHub, a second pass (on the same one-connection pool, so
    the first must not be holding it) returns at once without redelivering; the first then
    redelivers each missed delivery once."""
    runtime = one_connection_runtime
    first = asyncio.create_task(redeliver_missed(runtime))
    await asyncio.wait_for(github.listing.wait(), timeout=10)

    second = await asyncio.wait_for(redeliver_missed(runtime), timeout=10)

    assert second == []
    assert github.redelivered() == []
    github.release.set()
    assert await asyncio.wait_for(first, timeout=10) == ["missed-1", "missed-2"]
    assert github.redelivered() == [11, 13]
    assert await redeliver_missed(runtime) == ["missed-1", "missed-2"]  # the lease was let go


async def test_a_delivery_attempted_within_the_grace_is_left_to_the_next_pass(
    one_connection_runtime: Runtime, github: GatedGitHub
) -> None:
    """A delivery attempted moments ago, in flight or failed, is not redelivered while it
    may still be arriving; once older than the grace it is."""
    runtime = one_connection_runtime
    github.release.set()
    assert runtime.settings.redeliver_grace_s == 30
    assert await redeliver_missed(runtime) == ["missed-1", "missed-2"]
    assert github.redelivered() == [11, 13]

    later = await redeliver_missed(runtime, grace=timedelta(0))

    assert later == ["arriving", "just-failed", "missed-1", "missed-2"]
