"""Creates of the bot's own check runs and marked comments without a lookup first, when the
intents say none was ever begun; never a duplicate after a lost answer or a crash."""

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bot.engine.database import Pool
from bot.github.client import GitHubApp
from bot.github.repo_api import RepoAPI
from bot.sandbox import Driver
from tests.github import test_github_faults as faults
from tests.sandbox.conftest import REPO, World, receiver, sandbox, webhook_schema, world

__all__ = ["receiver", "sandbox", "webhook_schema", "world"]  # the sandbox's fixtures

LOOKUPS = ("/check-runs", "/comments")  # what a lookup of a run or a comment asks for
BEFORE_INTENTS = datetime(2020, 1, 1, tzinfo=UTC)  # a pull request older than the horizon


class Killed(Exception):
    """Stands for a kill -9 between a POST and its record: nothing after it runs."""


def bot_app(world: World, tmp_path: Path, pool: Pool) -> GitHubApp:
    """The bot's clients with the database's intents, and no memo: nothing else is kept."""
    return faults.bot_app(world, tmp_path, faults.Waits(), pool=pool, github_cache_ttl_s=0)


def open_pull(driver: Driver) -> tuple[int, str, datetime]:
    sha = driver.push(REPO, "change", {"change.py": "x = 1\n"}, as_user="alice")
    pull = driver.open_pr(REPO, "change", as_user="alice")
    return pull["number"], sha, datetime.fromisoformat(pull["created_at"])


def lookups(driver: Driver, since: int) -> list[str]:
    return [
        f"{r['method']} {r['route']}"
        for r in driver.requests(since)
        if r["method"] == "GET" and r["route"].endswith(LOOKUPS)
    ]


async def run(api: RepoAPI, sha: str, born: datetime, summary: str = "s") -> int:
    return await api.upsert_check_run(
        "review-loop", sha, status="in_progress", title="t", summary=summary, born=born
    )


async def summary(api: RepoAPI, number: int, born: datetime, text: str = "round 1") -> int:
    return await api.upsert_comment(number, {"kind": "summary", "pr": number}, text, born=born)


def summaries(driver: Driver, number: int) -> list[Any]:
    return [c for c in driver.comments(REPO, number) if '"summary"' in c["body"]]


async def test_a_new_pull_requests_run_and_summary_are_made_without_lookups(
    world: World, tmp_path: Path, pool: Pool
) -> None:
    """Nothing begun on a pull request made after the horizon: one POST each; with the memo
    empty, the next upserts edit what the intents know, still without a lookup."""
    driver = world.driver
    number, sha, born = open_pull(driver)
    app = bot_app(world, tmp_path, pool)
    async with app.installation_client(world.installation_id) as gh:
        api = await app.repo_api(gh, REPO)
        await api.get_repo()  # the token
        since = len(driver.requests())
        run_id = await run(api, sha, born)
        comment_id = await summary(api, number, born)
        assert await run(api, sha, born, summary="edited") == run_id
        assert await summary(api, number, born, "round 2") == comment_id
    assert lookups(driver, since) == []
    assert [r["id"] for r in driver.check_runs(REPO, sha)] == [run_id]
    assert [c["id"] for c in summaries(driver, number)] == [comment_id]
    assert summaries(driver, number)[0]["body"].endswith("round 2")


async def test_a_pull_request_older_than_the_horizon_is_looked_up(
    world: World, tmp_path: Path, pool: Pool
) -> None:
    """A run and a summary a version without intents made are found, not made again."""
    driver = world.driver
    number, sha, _ = open_pull(driver)
    app = bot_app(world, tmp_path, pool)
    async with app.installation_client(world.installation_id) as gh:
        api = await app.repo_api(gh, REPO)
        old = RepoAPI(gh, REPO, app_id=api.app_id, bot_login=api.bot_login)  # no intents
        run_id = await run(old, sha, BEFORE_INTENTS)
        comment_id = await summary(old, number, BEFORE_INTENTS)
        since = len(driver.requests())
        assert await run(api, sha, BEFORE_INTENTS, summary="edited") == run_id
        assert await summary(api, number, BEFORE_INTENTS, "round 2") == comment_id
    assert len(lookups(driver, since)) == 2
    assert len(driver.check_runs(REPO, sha)) == 1 and len(summaries(driver, number)) == 1


@pytest.mark.parametrize("fault", ["lost_answer", "reset", "slow"])
@pytest.mark.parametrize("kind", ["check-run", "summary"])
async def test_a_create_without_lookup_whose_answer_is_lost_makes_exactly_one(
    world: World, tmp_path: Path, pool: Pool, kind: str, fault: str
) -> None:
    """The first POST, sent without a lookup, loses its answer: the retry looks up (the
    intent is there) and finds it; so does a later upsert."""
    driver = world.driver
    number, sha, born = open_pull(driver)
    app = bot_app(world, tmp_path, pool)
    route = "^POST /repos/.*/check-runs$" if kind == "check-run" else "^POST /repos/.*/comments$"
    async with app.installation_client(world.installation_id) as gh:
        api = await app.repo_api(gh, REPO)
        await api.get_repo()  # the token, before things break
        driver.set_faults(slow_s=2, rules=[{"fault": fault, "route": route, "limit": 1}])
        if kind == "check-run":
            made = await run(api, sha, born)
            assert await run(api, sha, born, summary="edited") == made
        else:
            made = await summary(api, number, born)
            assert await summary(api, number, born, "round 2") == made
    assert driver.fault_stats()["injected"] == {fault: 1}
    made_all = driver.check_runs(REPO, sha) if kind == "check-run" else summaries(driver, number)
    assert len(made_all) == 1


@pytest.mark.parametrize("kind", ["check-run", "summary"])
async def test_a_crash_between_the_post_and_its_record_makes_no_duplicate(
    world: World, tmp_path: Path, pool: Pool, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """kill -9 after GitHub made the object, before its id was recorded: the intent is
    there without an id, so the next process looks it up and edits it."""
    driver = world.driver
    number, sha, born = open_pull(driver)
    app = bot_app(world, tmp_path, pool)

    async def crash(*args: object) -> None:
        raise Killed

    async with app.installation_client(world.installation_id) as gh:
        api = await app.repo_api(gh, REPO)
        with monkeypatch.context() as patched:
            patched.setattr(api, "_made", crash)
            with pytest.raises(Killed):
                await (run(api, sha, born) if kind == "check-run" else summary(api, number, born))
        since = len(driver.requests())
        again = await app.repo_api(gh, REPO)  # the next process
        if kind == "check-run":
            await run(again, sha, born, summary="edited")
            made = driver.check_runs(REPO, sha)
        else:
            await summary(again, number, born, "round 2")
            made = summaries(driver, number)
    assert len(lookups(driver, since)) == 1
    assert len(made) == 1


async def test_the_apps_identity_is_asked_of_github_once_per_database(
    world: World, tmp_path: Path, pool: Pool
) -> None:
    """The first process asks `GET /app` and keeps the answer; the next ones read it."""
    driver = world.driver
    since = len(driver.requests())
    first = await bot_app(world, tmp_path, pool).identity()
    assert await bot_app(world, tmp_path, pool).identity() == first
    asked = [r for r in driver.requests(since) if (r["method"], r["route"]) == ("GET", "/app")]
    assert len(asked) == 1
    assert first.bot_login == f"{first.slug}[bot]" and first.id == world.sandbox.app_id
