"""RepoAPI against the fake GitHub: repeated creates are safe, refusals are results."""

import json

import pytest

from bot.github.markers import parse_marker, render_marker
from bot.github.records import MAX_BODY, MAX_CHECK_TEXT, MergeResult
from bot.github.repo_api import RepoAPI, can_write
from tests.fakes.github import FakeGitHub

SHA = "a" * 40
LABELS = ("review-loop:finding",)


def annotation(line: int) -> dict[str, object]:
    return {
        "path": "app.py",
        "start_line": line,
        "end_line": line,
        "annotation_level": "warning",
        "message": f"finding on line {line}",
    }


async def test_upsert_comment_creates_once_and_edits_only_on_change(
    fake: FakeGitHub, api: RepoAPI
) -> None:
    """The summary comment is created once, left alone when unchanged, edited when changed."""
    pr = fake.add_pull("feature").number
    marker = {"kind": "summary", "pr": pr}

    first = await api.upsert_comment(pr, marker, "round 1")
    again = await api.upsert_comment(pr, marker, "round 1")
    assert first == again
    assert (len(fake.calls("POST", r"/comments")), len(fake.calls("PATCH", r"/comments/\d+"))) == (
        1,
        0,
    )

    assert await api.upsert_comment(pr, marker, "round 2") == first
    assert len(fake.calls("PATCH", r"/comments/\d+")) == 1
    body = fake.comments[first].body
    assert parse_marker(body) == marker
    assert body.endswith("round 2")


async def test_replies_to_different_commands_are_separate_comments(
    fake: FakeGitHub, api: RepoAPI
) -> None:
    """Two replies of one kind but to different comments do not overwrite each other."""
    pr = fake.add_pull("feature").number
    first = await api.upsert_comment(pr, {"kind": "reply", "comment": 1}, "answer one")
    second = await api.upsert_comment(pr, {"kind": "reply", "comment": 2}, "answer two")
    again = await api.upsert_comment(pr, {"kind": "reply", "comment": 1}, "answer one")

    assert first != second and again == first
    assert fake.comments[first].body.endswith("answer one")
    assert fake.comments[second].body.endswith("answer two")


async def test_upsert_comment_ignores_markers_in_other_peoples_comments(
    fake: FakeGitHub, api: RepoAPI
) -> None:
    """A human pasting the bot's marker does not get their comment edited."""
    pr = fake.add_pull("feature").number
    marker = {"kind": "summary", "pr": pr}
    pasted = await api.comment(pr, render_marker(marker) + "\nquoted")
    fake.comments[pasted].user = "mallory"

    own = await api.upsert_comment(pr, marker, "summary")

    assert own != pasted
    assert fake.comments[pasted].body.endswith("quoted")


async def test_create_pull_twice_makes_one_pull_request(fake: FakeGitHub, api: RepoAPI) -> None:
    """The second create finds the open PR from the same branch and returns it."""
    marker = {"kind": "fix", "issue": 3}
    first = await api.create_pull("Fix #3", "Fixes #3", "review-loop/pr-1/3", "feature", marker)
    second = await api.create_pull("Fix #3", "Fixes #3", "review-loop/pr-1/3", "feature", marker)

    assert second.number == first.number
    assert len(fake.calls("POST", "/pulls")) == 1
    assert fake.calls("PATCH", r"/pulls/\d+") == []
    assert parse_marker(first.body) == marker


async def test_create_pull_for_a_branch_of_its_own_asks_nothing_first(
    fake: FakeGitHub, api: RepoAPI
) -> None:
    """`look_first=False` (the caller made the branch): one POST, no lookup; if a PR from the
    branch is open after all, GitHub's 422 finds it and it gets the new title."""
    marker = {"kind": "fix", "issue": 3}
    first = await api.create_pull("Fix #3", "Fixes #3", "fix-3", "main", marker, look_first=False)
    lookups = fake.calls("GET", "/pulls")
    again = await api.create_pull(
        "Fix #3, #4", "Fixes #3", "fix-3", "main", marker, look_first=False
    )

    assert lookups == []
    assert (again.number, again.title) == (first.number, "Fix #3, #4")
    assert len([i for i in fake.issues.values() if i.pull]) == 1


async def test_create_pull_updates_changed_title(fake: FakeGitHub, api: RepoAPI) -> None:
    """An existing PR from the branch gets the new title instead of a second PR."""
    first = await api.create_pull("Fix #3", "Fixes #3", "fix-3", "main", {"issue": 3})
    second = await api.create_pull("Fix #3 and #4", "Fixes #3", "fix-3", "main", {"issue": 3})

    assert (second.number, second.title) == (first.number, "Fix #3 and #4")
    assert len(fake.calls("PATCH", r"/pulls/\d+")) == 1


async def test_create_pull_race_returns_the_winner(fake: FakeGitHub, api: RepoAPI) -> None:
    """A 422 "already exists" from a concurrent creator resolves to the PR that won."""
    fake.inject(
        "POST",
        "/pulls",
        422,
        {"message": "A pull request already exists"},
        side_effect=lambda: fake.add_pull("fix-3", user=fake.bot),
    )

    pull = await api.create_pull("Fix #3", "Fixes #3", "fix-3", "main", {"issue": 3})

    assert pull.head_ref == "fix-3"
    assert len([i for i in fake.issues.values() if i.pull]) == 1


async def test_find_issue_by_marker_searches_every_page(fake: FakeGitHub, api: RepoAPI) -> None:
    """The issue with the marker is found on the third page; pull requests are skipped."""
    for n in range(240):
        fake.add_issue(f"finding {n}", render_marker({"fp": f"fp{n}"}), labels=[*LABELS])
    fake.add_pull("feature", labels=[*LABELS], body=render_marker({"fp": "wanted"}))
    target = fake.add_issue("wanted", render_marker({"fp": "wanted"}), labels=[*LABELS])
    target.state = "closed"

    found = await api.find_issue_by_marker(LABELS, "fp", "wanted")

    assert found is not None
    assert (found.number, found.state) == (target.number, "closed")
    assert len(fake.calls("GET", "/issues")) == 3


async def test_find_issue_by_marker_returns_none_when_absent(
    fake: FakeGitHub, api: RepoAPI
) -> None:
    """No issue carries the value: None, after reading every page."""
    fake.add_issue("other", render_marker({"fp": "other"}), labels=[*LABELS])
    fake.add_issue("no marker", "plain text", labels=[*LABELS])

    assert await api.find_issue_by_marker(LABELS, "fp", "wanted") is None


async def test_list_issues_leaves_out_pull_requests(fake: FakeGitHub, api: RepoAPI) -> None:
    """GitHub lists PRs as issues; the bot's issue list does not."""
    fake.add_issue("a finding", labels=["bug"])
    fake.add_pull("feature", labels=["bug"])

    issues = await api.list_issues(["bug"])

    assert [i.title for i in issues] == ["a finding"]


async def test_update_issue_sends_only_the_fields_given(fake: FakeGitHub, api: RepoAPI) -> None:
    """Closing an issue does not rewrite its title, body or labels."""
    issue = fake.add_issue("finding", "body", labels=["bug"])

    closed = await api.update_issue(issue.number, state="closed", state_reason="completed")

    assert json.loads(fake.calls("PATCH", r"/issues/\d+")[0].content) == {
        "state": "closed",
        "state_reason": "completed",
    }
    assert (closed.state, closed.state_reason, closed.labels) == ("closed", "completed", ("bug",))
    assert closed.closed_by_login == fake.bot


async def test_upsert_check_run_sends_annotations_in_batches_of_fifty(
    fake: FakeGitHub, api: RepoAPI
) -> None:
    """120 annotations: one create with 50, then two updates with 50 and 20."""
    run_id = await api.upsert_check_run(
        "review-loop",
        SHA,
        status="completed",
        conclusion="failure",
        title="3 findings",
        summary="see annotations",
        annotations=[annotation(n) for n in range(120)],
    )

    creates = fake.calls("POST", "/check-runs")
    updates = fake.calls("PATCH", r"/check-runs/\d+")
    sizes = [len(json.loads(r.content)["output"]["annotations"]) for r in creates + updates]
    assert (len(creates), len(updates), sizes) == (1, 2, [50, 50, 20])
    assert len(fake.check_runs[run_id].annotations) == 120


async def test_each_annotation_is_sent_once_per_check_run(fake: FakeGitHub, api: RepoAPI) -> None:
    """GitHub appends the annotations of every update: a run updated three times with the
    same 60 findings shows each once, and a new finding is sent on its own."""
    for _ in range(3):
        run_id = await api.upsert_check_run(
            "review-loop",
            SHA,
            status="in_progress",
            title="60 findings",
            summary="see annotations",
            annotations=[annotation(n) for n in range(60)],
        )
    assert len(fake.check_runs[run_id].annotations) == 60
    fake.requests.clear()

    await api.upsert_check_run(
        "review-loop",
        SHA,
        status="completed",
        conclusion="failure",
        title="61 findings",
        summary="see annotations",
        annotations=[annotation(n) for n in range(61)],
    )

    [update] = fake.calls("PATCH", r"/check-runs/\d+")
    assert json.loads(update.content)["output"]["annotations"] == [annotation(60)]
    assert len(fake.check_runs[run_id].annotations) == 61


async def test_upsert_check_run_updates_the_run_of_the_same_name(
    fake: FakeGitHub, api: RepoAPI
) -> None:
    """The second call for the same name and commit updates the first run."""
    first = await api.upsert_check_run(
        "review-loop", SHA, status="in_progress", title="auditing", summary="round 1"
    )
    second = await api.upsert_check_run(
        "review-loop", SHA, status="completed", conclusion="success", title="ready", summary="ok"
    )

    assert second == first
    assert len(fake.calls("POST", "/check-runs")) == 1
    run = fake.check_runs[first]
    assert (run.status, run.conclusion, run.title) == ("completed", "success", "ready")


@pytest.mark.parametrize(
    "actions",
    [
        pytest.param(
            [{"label": f"a{n}", "identifier": f"a{n}", "description": "d"} for n in range(4)],
            id="four-actions",
        ),
        pytest.param(
            [{"label": "x" * 21, "identifier": "fix", "description": "d"}], id="long-label"
        ),
        pytest.param(
            [{"label": "Fix", "identifier": "fix", "description": "d" * 41}],
            id="long-description",
        ),
        pytest.param([{"label": "Fix", "description": "d"}], id="no-identifier"),
    ],
)
async def test_upsert_check_run_refuses_actions_github_would_reject(
    fake: FakeGitHub, api: RepoAPI, actions: list[dict[str, str]]
) -> None:
    """Actions past GitHub's limits raise before any request is sent."""
    with pytest.raises(ValueError, match="action"):
        await api.upsert_check_run(
            "review-loop", SHA, status="queued", title="t", summary="s", actions=actions
        )
    assert fake.requests == []


@pytest.mark.parametrize(
    ("message", "refusal"),
    [
        pytest.param("Pull Request is not mergeable", "conflict", id="conflict"),
        pytest.param(
            "Base branch was modified. Review and try the merge again.",
            "base_modified",
            id="base-modified",
        ),
        pytest.param(
            "Merge commits are not allowed on this repository.",
            "method_not_allowed",
            id="merge-commits-not-allowed",
        ),
        pytest.param(
            "Squash merges are not allowed on this repository.",
            "method_not_allowed",
            id="squash-not-allowed",
        ),
        pytest.param('Required status check "test" is expected.', "checks", id="one-check"),
        pytest.param("2 of 3 required status checks are expected.", "checks", id="checks"),
        pytest.param(
            "At least 1 approving review is required by reviewers with write access.",
            "reviews",
            id="reviews",
        ),
        pytest.param(
            "Repository rule violations found\n\nChanges must be made through a pull request.",
            "rules",
            id="ruleset",
        ),
        pytest.param("Pull Request is still a draft", "other", id="unknown"),
    ],
)
async def test_merge_pull_says_why_github_refused(
    fake: FakeGitHub, api: RepoAPI, message: str, refusal: str
) -> None:
    """GitHub answers 405 for all of these: the result tells them apart, and only a merge
    conflict counts as a conflict."""
    pr = fake.add_pull("fix-3", SHA).number
    fake.inject("PUT", rf"/pulls/{pr}/merge", 405, {"message": message})

    result = await api.merge_pull(pr, SHA)

    assert (result.merged, result.refusal, result.message) == (False, refusal, message)
    assert result.conflict == (refusal == "conflict")


@pytest.mark.parametrize(
    ("allowed", "methods"),
    [
        pytest.param({"merge", "squash", "rebase"}, ("merge", "squash", "rebase"), id="all"),
        pytest.param({"squash"}, ("squash",), id="squash-only"),
        pytest.param({"rebase", "squash"}, ("squash", "rebase"), id="no-merge-commits"),
    ],
)
async def test_get_repo_reads_the_allowed_merge_methods(
    fake: FakeGitHub, api: RepoAPI, allowed: set[str], methods: tuple[str, ...]
) -> None:
    """The repository's merge button settings become its allowed methods, in default order."""
    fake.merge_methods = allowed

    assert (await api.get_repo()).merge_methods == methods


@pytest.mark.parametrize(
    ("setup", "sha", "expected"),
    [
        pytest.param({}, SHA, MergeResult(True, "m" * 40, False, "merged"), id="merged"),
        pytest.param(
            {"mergeable": False},
            SHA,
            MergeResult(False, None, True, "Pull Request is not mergeable", refusal="conflict"),
            id="conflict",
        ),
        pytest.param(
            {},
            "c" * 40,
            MergeResult(
                False,
                None,
                False,
                "Head branch was modified. Review and try the merge again.",
                head_moved=True,
            ),
            id="head-moved",
        ),
        pytest.param(
            {"merged": True, "merge_commit_sha": "f" * 40},
            SHA,
            MergeResult(True, "f" * 40, False, "already merged"),
            id="already-merged",
        ),
        pytest.param(
            {"state": "closed"},
            SHA,
            MergeResult(False, None, False, "the pull request is closed", closed=True),
            id="closed-by-a-person",
        ),
    ],
)
async def test_merge_pull_returns_refusals_as_results(
    fake: FakeGitHub, api: RepoAPI, setup: dict[str, object], sha: str, expected: MergeResult
) -> None:
    """405 and 409 come back as results; merging a merged PR again reports it merged."""
    pr = fake.add_pull("fix-3", SHA, **setup).number

    assert await api.merge_pull(pr, sha) == expected


async def test_ensure_labels_creates_only_the_missing_ones(fake: FakeGitHub, api: RepoAPI) -> None:
    """Existing labels are left alone (names compare case-insensitively)."""
    fake.labels["Review-Loop"] = ("000000", "old")

    await api.ensure_labels({"review-loop": ("0e8a16", "run"), "agent:ruff": ("#1d76db", "ruff")})

    assert [json.loads(r.content)["name"] for r in fake.calls("POST", "/labels")] == ["agent:ruff"]
    assert fake.labels["agent:ruff"] == ("1d76db", "ruff")


async def test_ensure_labels_tolerates_a_concurrent_creator(fake: FakeGitHub, api: RepoAPI) -> None:
    """A 422 already_exists from a label created since the listing is not an error."""
    fake.inject(
        "POST",
        "/labels",
        422,
        {"message": "Validation Failed", "errors": [{"code": "already_exists"}]},
        side_effect=lambda: fake.labels.update({"review-loop": ("0e8a16", "")}),
    )

    await api.ensure_labels({"review-loop": ("0e8a16", "run"), "agent:ruff": ("1d76db", "ruff")})

    assert set(fake.labels) == {"review-loop", "agent:ruff"}


async def test_remove_label_that_is_gone_is_fine(fake: FakeGitHub, api: RepoAPI) -> None:
    """Removing a label twice does not fail (404 = already gone)."""
    issue = fake.add_issue("finding", labels=["review-loop:fix", "bug"])

    await api.remove_label(issue.number, "review-loop:fix")
    await api.remove_label(issue.number, "review-loop:fix")

    assert issue.labels == ["bug"]


async def test_read_file_decodes_content_and_404_is_none(fake: FakeGitHub, api: RepoAPI) -> None:
    """An existing file comes back as text; a missing one as None."""
    text = "max_rounds: 3\n" * 20
    fake.files[".github/review-loop.yml"] = text

    assert await api.read_file(".github/review-loop.yml", ref="main") == text
    assert await api.read_file(".github/missing.yml") is None
    assert fake.calls("GET", r"/contents/\.github/review-loop\.yml")[0].url.params["ref"] == "main"


async def test_read_file_reads_a_file_over_a_megabyte_from_the_blob_api(
    fake: FakeGitHub, api: RepoAPI
) -> None:
    """Past 1 MB the contents API says `encoding: "none"` and sends no content: the text
    comes from the blob it names."""
    text = "x = 1\n" * 200_000  # 1.2 MB
    fake.files["big.py"] = text

    assert await api.read_file("big.py") == text
    assert len(fake.calls("GET", r"/git/blobs/[0-9a-f]{40}")) == 1


async def test_bodies_over_githubs_limit_are_cut_with_a_visible_note(
    fake: FakeGitHub, api: RepoAPI
) -> None:
    """Issue, comment and PR bodies past 65,536 characters (GitHub would answer 422) are cut
    to fit, saying how much was left out; the marker, first, survives."""
    long = "y" * (MAX_BODY + 10_000)
    marker = {"kind": "summary", "pr": 1}

    issue = await api.create_issue("finding", long, [])
    comment_id = await api.upsert_comment(issue.number, marker, long)
    again = await api.upsert_comment(issue.number, marker, long)
    pull = await api.create_pull("Fix", long, head="fix-1", base="main", marker={"kind": "fix"})

    bodies = [fake.issues[issue.number].body, fake.comments[comment_id].body, pull.body]
    for body in bodies:
        assert len(body) <= MAX_BODY
        assert body.endswith(" characters omitted")
        assert "\n\n… truncated, " in body
    assert parse_marker(fake.comments[comment_id].body) == marker
    assert again == comment_id
    assert fake.calls("PATCH", r"/issues/comments/\d+") == [], "the capped text is unchanged"


async def test_check_run_text_over_githubs_limit_is_cut(fake: FakeGitHub, api: RepoAPI) -> None:
    """A check run's summary and text are capped at 65,535 characters each."""
    long = "z" * (MAX_CHECK_TEXT + 1)

    await api.upsert_check_run(
        "review-loop", SHA, status="in_progress", title="t", summary=long, text=long
    )

    (run,) = fake.check_runs.values()
    assert run.summary is not None and len(run.summary) == MAX_CHECK_TEXT
    assert run.summary.endswith("… truncated, 37 characters omitted")


@pytest.mark.parametrize(
    ("role", "expected", "writer"),
    [
        pytest.param("admin", "admin", True, id="admin"),
        pytest.param("maintain", "maintain", True, id="maintain"),
        pytest.param("write", "write", True, id="write"),
        pytest.param("triage", "triage", False, id="triage"),
        pytest.param("read", "read", False, id="read"),
        pytest.param(None, "none", False, id="stranger-404"),
    ],
)
async def test_permission_reports_the_role_and_404_is_none(
    fake: FakeGitHub, api: RepoAPI, role: str | None, expected: str, writer: bool
) -> None:
    """Roles come back by name; a user GitHub does not know has permission "none"."""
    if role is not None:
        fake.roles["alice"] = role

    permission = await api.permission("alice")

    assert (permission, can_write(permission)) == (expected, writer)


async def test_request_reviewers_tolerates_the_author_and_skips_nobody(
    fake: FakeGitHub, api: RepoAPI
) -> None:
    """Asking the author is logged, not raised; asking nobody sends nothing."""
    pr = fake.add_pull("feature", user="alice").number

    await api.request_reviewers(pr, [], [])
    assert fake.requests == []

    await api.request_reviewers(pr, ["alice"])
    await api.request_reviewers(pr, ["bob"])
    pull = fake.issues[pr].pull
    assert pull is not None and pull.reviewers == ["bob"]


async def test_get_repo_and_pull_read_the_fields_the_bot_uses(
    fake: FakeGitHub, api: RepoAPI
) -> None:
    """Repository and pull request records carry real values, not githubkit models."""
    pr = fake.add_pull("feature", "d" * 40, labels=["review-loop"], draft=True).number

    repo = await api.get_repo()
    pull = await api.get_pull(pr)

    assert (repo.full_name, repo.default_branch, repo.owner_login) == ("octo/demo", "main", "octo")
    assert (pull.head_ref, pull.head_sha, pull.head_repo, pull.base_ref) == (
        "feature",
        "d" * 40,
        "octo/demo",
        "main",
    )
    assert (pull.draft, pull.merged, pull.labels) == (True, False, ("review-loop",))
    assert [p.number for p in await api.list_pulls(head="octo:feature")] == [pr]


async def test_issues_among_reads_a_batch_of_issues_in_one_listing(
    fake: FakeGitHub, api: RepoAPI
) -> None:
    """A batch's issues, open or closed, come from one listing request; one that is not a
    finding (or not listed) is left out, for the caller to read by itself."""
    first = fake.add_issue("first", labels=[*LABELS]).number
    closed = fake.add_issue("closed", labels=[*LABELS], state="closed").number
    unlabelled = fake.add_issue("no label").number

    got = await api.issues_among([first, closed, unlabelled], LABELS)

    assert {n: i.state for n, i in got.items()} == {first: "open", closed: "closed"}
    assert len(fake.calls("GET", r"/issues$")) == 1
    assert fake.calls("GET", r"/issues/\d+$") == []
