"""The shared cache of what was read from GitHub: the bot's comments edited without listing."""

from collections.abc import AsyncIterator

import pytest

from bot.engine.database import Pool, open_pool
from bot.github.memo import Memo
from bot.github.repo_api import RepoAPI
from tests.fakes.github import FakeGitHub


@pytest.fixture
async def pool(db_url: str) -> AsyncIterator[Pool]:
    opened = open_pool(db_url, max_size=2)
    await opened.open(wait=True)
    yield opened
    await opened.close()


@pytest.fixture
async def kept(fake: FakeGitHub, pool: Pool) -> AsyncIterator[RepoAPI]:
    async with fake.client() as gh:
        yield RepoAPI(
            gh, fake.full_name, app_id=fake.app_id, bot_login=fake.bot, memo=Memo(pool, 300)
        )


async def test_a_known_comment_costs_nothing_unchanged_and_one_patch_changed(
    fake: FakeGitHub, kept: RepoAPI
) -> None:
    pr = fake.add_pull("feature").number
    marker = {"kind": "summary", "pr": pr}
    first = await kept.upsert_comment(pr, marker, "round 1")
    before = len(fake.requests)

    assert await kept.upsert_comment(pr, marker, "round 1") == first
    assert len(fake.requests) == before  # unchanged: no request at all

    assert await kept.upsert_comment(pr, marker, "round 2") == first
    assert [(r.method, r.url.path) for r in fake.requests[before:]] == [
        ("PATCH", f"/repos/{fake.full_name}/issues/comments/{first}")
    ]
    assert fake.comments[first].body.endswith("round 2")


async def test_a_deleted_comment_is_found_again_or_made_anew(
    fake: FakeGitHub, kept: RepoAPI
) -> None:
    pr = fake.add_pull("feature").number
    marker = {"kind": "summary", "pr": pr}
    first = await kept.upsert_comment(pr, marker, "round 1")
    del fake.comments[first]  # a person deleted it

    second = await kept.upsert_comment(pr, marker, "round 2")

    assert second != first and fake.comments[second].body.endswith("round 2")
    assert await kept.upsert_comment(pr, marker, "round 2") == second


async def test_nothing_is_kept_with_a_zero_ttl(fake: FakeGitHub, pool: Pool) -> None:
    memo = Memo(pool, 0)
    await memo.put("k", {"v": 1})
    assert await memo.get("k") is None
    await Memo(pool, 300).put("k", {"v": 1})
    assert await Memo(pool, 300).get("k") == {"v": 1}
    await memo.forget("k%")
    assert await Memo(pool, 300).get("k") is None


async def test_an_issues_comments_are_listed_once_for_every_marker(
    fake: FakeGitHub, kept: RepoAPI
) -> None:
    """The first upsert on an issue lists its comments and remembers each marked one of the
    bot's; upserts of other markers then ask nothing before they post or edit."""
    pr = fake.add_pull("feature").number
    async with fake.client() as gh:  # an earlier process: its comment is not remembered
        other = RepoAPI(gh, fake.full_name, app_id=fake.app_id, bot_login=fake.bot)
        old = await other.upsert_comment(pr, {"kind": "note", "pr": pr}, "old note")
    await kept.upsert_comment(pr, {"kind": "summary", "pr": pr}, "summary")
    before = len(fake.requests)

    assert await kept.upsert_comment(pr, {"kind": "note", "pr": pr}, "new note") == old
    await kept.upsert_comment(pr, {"kind": "tally", "pr": pr}, "tally")

    asked = [(r.method, r.url.path.rsplit("/", 2)[-2:]) for r in fake.requests[before:]]
    assert asked == [("PATCH", ["comments", str(old)]), ("POST", [str(pr), "comments"])]


async def test_a_new_issue_is_commented_without_listing(fake: FakeGitHub, kept: RepoAPI) -> None:
    issue = await kept.create_issue("F401", '<!-- review-loop {"fp": "x"} -->\nbody', [])
    before = len(fake.requests)

    await kept.upsert_comment(issue.number, {"kind": "why", "issue": issue.number}, "why")

    assert [r.method for r in fake.requests[before:]] == ["POST"]
