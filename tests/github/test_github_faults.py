"""The bot's GitHub clients against the sandbox's faults: refusals, lost answers, timeouts."""

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest
from githubkit import AppInstallationAuthStrategy, GitHub

from bot.config import Settings
from bot.engine.database import Pool
from bot.github.client import GitHubApp
from bot.github.markers import with_marker
from bot.github.repo_api import RepoAPI
from bot.github.throttle import ThrottledTransport, WriteLimits, WriteThrottle
from bot.sandbox import Driver
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


class Waits:
    """The bot's injected sleep: records the waits, waits for nothing."""

    def __init__(self) -> None:
        self.waited: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waited.append(seconds)
        await asyncio.sleep(0)


def bot_app(
    world: World,
    tmp_path: Path,
    waits: Waits,
    timeout_s: float = 10,
    pool: Pool | None = None,
    **more: Any,
) -> GitHubApp:
    """The bot's clients on the sandbox; with `pool`, the database's memo and intents."""
    sandbox = world.sandbox
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        app_id=sandbox.app_id,
        private_key_path=sandbox.private_key_path,
        github_url=sandbox.api_url,
        data_dir=tmp_path / "bot",
        write_interval_s=0,
        github_timeout_s=timeout_s,
        **more,
    )
    return GitHubApp(settings, pool=pool, sleep=waits)


MARK = {"kind": "test", "n": 1}


async def _issue(api: RepoAPI, driver: Driver, sha: str) -> int:
    made = await api.create_issue("finding", with_marker(MARK, "body"), ["review-loop:finding"])
    return len([i for i in driver.issues(REPO) if i["number"] == made.number])


async def _comment(api: RepoAPI, driver: Driver, sha: str) -> int:
    await api.comment(1, with_marker(MARK, "Fixed."))
    return len(api_comments(driver, 1))


async def _upsert_comment(api: RepoAPI, driver: Driver, sha: str) -> int:
    await api.upsert_comment(1, MARK, "Fixed.")
    return len(api_comments(driver, 1))


async def _pull(api: RepoAPI, driver: Driver, sha: str) -> int:
    await api.create_pull("Fix", "body", "fix-branch", "main", MARK)
    return len([p for p in driver.pulls(REPO, "all") if p["head"]["ref"] == "fix-branch"])


async def _check_run(api: RepoAPI, driver: Driver, sha: str) -> int:
    await api.upsert_check_run("review-loop", sha, status="in_progress", title="t", summary="s")
    return len(driver.check_runs(REPO, sha))


async def _label(api: RepoAPI, driver: Driver, sha: str) -> int:
    await api.ensure_labels({"review-loop:finding": ("#d93f0b", "A finding")})
    labels = (await api.gh.rest.issues.async_list_labels_for_repo(OWNER, NAME)).parsed_data
    return sum(1 for label in labels if label.name == "review-loop:finding")


def api_comments(driver: Driver, number: int) -> list[Any]:
    return driver.comments(REPO, number)


CREATES = {
    "issue": ("^POST /repos/[^/]+/[^/]+/issues$", _issue),
    "comment": ("^POST /repos/.*/issues/1/comments$", _comment),
    "upsert-comment": ("^POST /repos/.*/issues/1/comments$", _upsert_comment),
    "pull": ("^POST /repos/[^/]+/[^/]+/pulls$", _pull),
    "check-run": ("^POST /repos/.*/check-runs$", _check_run),
    "label": ("^POST /repos/.*/labels$", _label),
}


@pytest.mark.parametrize("fault", ["lost_answer", "reset", "server_error", "slow"])
@pytest.mark.parametrize("kind", sorted(CREATES))
async def test_a_create_that_fails_without_an_answer_makes_exactly_one(
    world: World, tmp_path: Path, kind: str, fault: str
) -> None:
    """A 5xx before the write, a lost answer, a reset or a timeout after it: the create is
    retried only when the lookup finds nothing, so there is exactly one of it."""
    route, create = CREATES[kind]
    driver = world.driver
    driver.file_issue(REPO, "an issue to comment on", as_user="alice")
    sha = driver.push(REPO, "fix-branch", {"fixed.py": "x = 1\n"}, as_user="alice")
    waits = Waits()
    app = bot_app(world, tmp_path, waits, timeout_s=0.5 if fault == "slow" else 10)
    async with app.installation_client(world.installation_id) as gh:
        api = await app.repo_api(gh, REPO)
        await api.get_repo()  # the token, before things break
        driver.set_faults(slow_s=2, rules=[{"fault": fault, "route": route, "limit": 1}])
        count = await create(api, driver, sha)
    assert driver.fault_stats()["injected"] == {fault: 1}
    assert count == 1
