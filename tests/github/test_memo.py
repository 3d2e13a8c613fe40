"""The shared cache of what was read from GitHub: the bot's comments edited without listing."""

from collections.abc import AsyncIterator

import pytest

from bot.engine.database import Pool
from bot.github.memo import Memo
from bot.github.repo_api import RepoAPI
from tests.fakes.github import FakeGitHub


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


class Killed(Exception):
    """Stands for a kill -9 between two requests: nothing after it runs."""


async def test_a_comment_posted_just_before_a_crash_is_found_not_posted_again(
    fake: FakeGitHub, kept: RepoAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The issue's remembered listing ("no bot comments yet") must not outlive a post whose
    record was never written: the retry lists the comments and finds the one it made."""
    issue = fake.add_issue("finding").number
    await kept.upsert_comment(issue, {"kind": "summary", "pr": issue}, "other")  # listed once

    async def crash(*args: object) -> None:
        raise Killed

    with monkeypatch.context() as patched:
        patched.setattr(kept, "_remember_comment", crash)
        with pytest.raises(Killed):
            await kept.upsert_comment(issue, {"kind": "why", "issue": issue}, "no safe fix")

    await kept.upsert_comment(issue, {"kind": "why", "issue": issue}, "no safe fix")
    bodies = [c.body for c in fake.comments.values() if c.body.endswith("no safe fix")]
    assert len(bodies) == 1


async def test_annotations_cut_short_by_a_crash_are_each_sent_once(
    fake: FakeGitHub, kept: RepoAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """120 annotations take three requests; a crash after the first leaves no record that
    says none were sent, so the next update sends only the 70 the run lacks."""
    sha = "b" * 40
    notes = [
        {
            "path": "app.py",
            "start_line": n,
            "end_line": n,
            "annotation_level": "warning",
            "message": f"finding on line {n}",
        }
        for n in range(1, 121)
    ]
    run_id = await kept.upsert_check_run(
        "review-loop", sha, status="in_progress", title="auditing", summary="…"
    )
    send = kept.gh.arequest
    patches = 0

    async def dies_on_second_patch(method: str, *args: object, **kwargs: object) -> object:
        nonlocal patches
        if method == "PATCH":
            patches += 1
            if patches == 2:
                raise Killed
        return await send(method, *args, **kwargs)  # type: ignore[arg-type]

    with monkeypatch.context() as patched:
        patched.setattr(kept.gh, "arequest", dies_on_second_patch)
        with pytest.raises(Killed):
            await kept.upsert_check_run(
                "review-loop", sha, status="completed", conclusion="failure",
                title="120 findings", summary="…", annotations=notes,
            )  # fmt: skip
    assert len(fake.check_runs[run_id].annotations) == 50

    await kept.upsert_check_run(
        "review-loop", sha, status="completed", conclusion="failure",
        title="120 findings", summary="…", annotations=notes,
    )  # fmt: skip
    sent = [a["message"] for a in fake.check_runs[run_id].annotations]
    assert sorted(sent) == sorted(n["message"] for n in notes)


async def test_a_known_check_run_is_sent_again_only_when_it_would_change(
    fake: FakeGitHub, kept: RepoAPI
) -> None:
    """A run upserted before with the same status, text and annotations costs no request; a
    new title, or an annotation the run lacks, one PATCH each."""
    note = {"path": "a.py", "start_line": 3, "end_line": 3, "annotation_level": "warning",
            "message": "unused import"}  # fmt: skip
    other = {**note, "start_line": 9, "end_line": 9}

    async def upsert(title: str, *notes: dict[str, object]) -> int:
        return await kept.upsert_check_run(
            "review-loop", "c" * 40, status="completed", conclusion="action_required",
            title=title, summary="a person", annotations=notes,
        )  # fmt: skip

    run_id = await upsert("1 finding", note)
    before = len(fake.requests)

    assert await upsert("1 finding", note) == run_id
    assert len(fake.requests) == before  # unchanged: no request at all

    await upsert("still 1 finding", note)
    await upsert("still 1 finding", note, other)
    assert [r.method for r in fake.requests[before:]] == ["PATCH", "PATCH"]
    assert fake.check_runs[run_id].title == "still 1 finding"
    assert len(fake.check_runs[run_id].annotations) == 2
