"""The bot's GitHub clients against the sandbox's faults: refusals, lost answers, timeouts."""

import asyncio
from typing import Any

import httpx
from githubkit import AppInstallationAuthStrategy, GitHub

from bot.github.throttle import ThrottledTransport, WriteLimits, WriteThrottle
from tests.sandbox.conftest import REPO, World, receiver, sandbox, webhook_schema, world

__all__ = ["receiver", "sandbox", "webhook_schema", "world"]  # the sandbox's fixtures

OWNER, NAME = REPO.split("/")


class Sleeps:
    """An injected clock and sleep: time moves only when someone sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    async def __call__(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


def throttled_client(world: World, sleeps: Sleeps) -> GitHub[Any]:
    sandbox = world.sandbox
    auth = AppInstallationAuthStrategy(
        sandbox.app_id, sandbox.private_key_path.read_text(), world.installation_id
    )
    throttle = WriteThrottle(WriteLimits(min_interval_s=0), clock=sleeps.clock, sleep=sleeps)
    transport = ThrottledTransport(httpx.AsyncHTTPTransport(), throttle)
    return GitHub(
        auth,
        base_url=sandbox.api_url,
        async_transport=transport,
        auto_retry=False,
        timeout=10,
    )


async def test_a_create_refused_by_a_secondary_limit_is_sent_again_with_its_body(
    world: World,
) -> None:
    """A POST refused with 403 + retry-after is sent again after the wait, body and all."""
    sleeps = Sleeps()
    gh = throttled_client(world, sleeps)
    await gh.rest.repos.async_get(OWNER, NAME)
    world.driver.set_faults(
        retry_after_s=4,
        rules=[{"fault": "secondary_rate_limit", "writes": True, "limit": 1}],
    )
    issue = (await gh.rest.issues.async_create(OWNER, NAME, title="once", body="b")).parsed_data
    assert (issue.title, issue.body) == ("once", "b")
    assert [i["title"] for i in world.driver.issues(REPO)] == ["once"]
    assert [s for s in sleeps.slept if s] == [4.0]  # the throttle waited out the refusal
