"""Landing a fix: the fix PR's text, merging it with retries on a head GitHub has not
caught up with yet, and its check run posted only when a merge needs it."""

import json
import time
from typing import Any

import pytest
from tenacity import wait_none

from bot.engine.leases import LeaseLost
from bot.github.records import MergeMethod
from bot.github.repo_api import RepoAPI
from bot.loop.budget import RunCost
from bot.loop.fix import push_merge
from bot.loop.fix.job import TaskFailed
from bot.loop.fix.land import (
    BASE_FRESH_S,
    MERGE_ATTEMPTS,
    MergeBlocked,
    _BaseCheck,
    _still_open,
    fix_pr_text,
    merge_fix_pr,
)
from bot.loop.store import REJECTED_ERROR
from tests.fakes.github import FakeGitHub

HEAD = "c" * 40
BASE = "change"  # the PR branch fix PRs are based on
MERGE = r"/pulls/\d+/merge"
HEAD_MOVED = {"message": "Head branch was modified. Review and try the merge again."}
BASE_MODIFIED = {"message": "Base branch was modified. Review and try the merge again."}


class LeaseChecks:
    """A lease check that counts its calls, and fails from the `lose_at`-th on."""

    def __init__(self, lose_at: int | None = None) -> None:
        self.calls = 0
        self.lose_at = lose_at

    async def __call__(self) -> None:
        self.calls += 1
        if self.lose_at is not None and self.calls >= self.lose_at:
            raise LeaseLost("taken over")


class CheckPosts:
    """A `checks_missing` that counts its calls and answers whether it posted the check run
    now (it posts once per head: the first call only)."""

    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self) -> bool:
        self.calls += 1
        return self.calls == 1


async def merge(
    api: RepoAPI,
    number: int,
    checks: LeaseChecks | None = None,
    method: MergeMethod = "merge",
    checks_missing: CheckPosts | None = None,
    base_seen_at: float | None = None,
) -> bool:
    return await merge_fix_pr(
        api,
        number,
        HEAD,
        "Merge Fix #3",
        base=BASE,
        check_lease=checks or LeaseChecks(),
        wait=wait_none(),
        method=method,
        checks_missing=checks_missing,
        base_seen_at=base_seen_at,
    )


async def test_a_fix_pr_is_merged_at_the_head_that_was_verified(
    fake: FakeGitHub, api: RepoAPI
) -> None:
    """The merge names the worktree's HEAD and the title, so GitHub merges only that commit."""
    pr = fake.add_pull("review-loop/pr-1/1", head_sha=HEAD, base_ref=BASE)

    assert await merge(api, pr.number)

    assert pr.pull is not None and pr.pull.merged
    (put,) = fake.calls("PUT", MERGE)
    assert json.loads(put.content) == {
        "sha": HEAD,
        "merge_method": "merge",
        "commit_title": "Merge Fix #3",
    }


async def test_a_fix_pr_github_moved_onto_another_base_is_never_merged(
    fake: FakeGitHub, api: RepoAPI
) -> None:
    """GitHub retargets a fix PR to the default branch once the PR is merged and its branch
    deleted: the bot does not merge its commit into the default branch."""
    pr = fake.add_pull("review-loop/pr-1/1", head_sha=HEAD, base_ref="main")

    with pytest.raises(TaskFailed) as failed:
        await merge(api, pr.number)

    assert failed.value.status == "obsolete"
    assert "onto `main`" in failed.value.reason
    assert fake.calls("PUT", MERGE) == []
    assert pr.pull is not None and not pr.pull.merged


async def test_a_base_github_told_a_moment_ago_is_not_read_again(
    fake: FakeGitHub, api: RepoAPI
) -> None:
    """The create's answer said the fix PR's base just now: the first merge needs no read;
    one told longer ago than BASE_FRESH_S is read again."""
    fresh = fake.add_pull("review-loop/pr-1/1", head_sha=HEAD, base_ref=BASE)
    stale = fake.add_pull("review-loop/pr-1/2", head_sha=HEAD, base_ref=BASE)

    assert await merge(api, fresh.number, base_seen_at=time.monotonic())
    assert await merge(api, stale.number, base_seen_at=time.monotonic() - BASE_FRESH_S - 1)

    assert fake.calls("GET", rf"/pulls/{fresh.number}") == []
    assert len(fake.calls("GET", rf"/pulls/{stale.number}")) == 1


async def test_a_retry_past_the_fresh_time_reads_the_base_again(
    fake: FakeGitHub, api: RepoAPI
) -> None:
    """The base read before a retried merge (GitHub not caught up yet) is trusted only while
    fresh: an attempt BASE_FRESH_S later reads it again, and refuses a moved one."""
    pr = fake.add_pull("review-loop/pr-1/1", head_sha=HEAD, base_ref=BASE)
    now = [100.0]

    def moved_meanwhile() -> None:
        assert pr.pull is not None
        pr.pull.base_ref = "main"  # the PR merged, its branch deleted: GitHub retargets
        now[0] += BASE_FRESH_S

    fake.inject("PUT", MERGE, 409, HEAD_MOVED, side_effect=moved_meanwhile)

    with pytest.raises(TaskFailed) as failed:
        await merge_fix_pr(
            api, pr.number, HEAD, "Merge Fix #3", base=BASE, check_lease=LeaseChecks(),
            wait=wait_none(), base_seen_at=now[0], clock=lambda: now[0],
        )  # fmt: skip

    assert failed.value.status == "obsolete"
    assert len(fake.calls("PUT", MERGE)) == 1
    assert len(fake.calls("GET", rf"/pulls/{pr.number}")) == 1


async def test_a_head_github_has_not_caught_up_with_is_tried_again(
    fake: FakeGitHub, api: RepoAPI
) -> None:
    """A 409 right after the push is retried, checking the lease before each attempt."""
    pr = fake.add_pull("review-loop/pr-1/1", head_sha=HEAD, base_ref=BASE)
    fake.inject("PUT", MERGE, 409, HEAD_MOVED)
    fake.inject("PUT", MERGE, 409, HEAD_MOVED)
    checks = LeaseChecks()

    assert await merge(api, pr.number, checks)

    assert len(fake.calls("PUT", MERGE)) == 3
    assert checks.calls == 3


async def test_a_head_that_never_catches_up_ends_the_task_after_the_last_attempt(
    fake: FakeGitHub, api: RepoAPI
) -> None:
    """After MERGE_ATTEMPTS 409s the task fails, saying what GitHub said."""
    pr = fake.add_pull("review-loop/pr-1/1", head_sha=HEAD, base_ref=BASE)
    for _ in range(MERGE_ATTEMPTS + 1):
        fake.inject("PUT", MERGE, 409, HEAD_MOVED)

    with pytest.raises(TaskFailed) as caught:
        await merge(api, pr.number)

    assert caught.value.status == "failed"
    assert caught.value.reason == f"fix PR #{pr.number} not merged: {HEAD_MOVED['message']}"
    assert len(fake.calls("PUT", MERGE)) == MERGE_ATTEMPTS


async def test_a_conflict_is_an_answer_not_a_failure(fake: FakeGitHub, api: RepoAPI) -> None:
    """A fix PR GitHub cannot merge is reported as not merged, at once, for the rebase."""
    pr = fake.add_pull("review-loop/pr-1/1", head_sha=HEAD, base_ref=BASE, mergeable=False)

    assert not await merge(api, pr.number)

    assert len(fake.calls("PUT", MERGE)) == 1


async def test_a_fix_pr_a_person_closed_ends_the_task_as_rejected(
    fake: FakeGitHub, api: RepoAPI
) -> None:
    """Closed without merging: the task is rejected and the merge is not tried again."""
    pr = fake.add_pull("review-loop/pr-1/1", head_sha=HEAD, base_ref=BASE, state="closed")

    with pytest.raises(TaskFailed) as caught:
        await merge(api, pr.number)

    assert (caught.value.status, caught.value.reason) == ("rejected", REJECTED_ERROR)
    assert len(fake.calls("PUT", MERGE)) == 1


async def test_any_other_refusal_ends_the_task_without_retrying(
    fake: FakeGitHub, api: RepoAPI
) -> None:
    """GitHub answering 'not merged' for another reason fails the task with its message."""
    pr = fake.add_pull("review-loop/pr-1/1", head_sha=HEAD, base_ref=BASE)
    fake.inject("PUT", MERGE, 200, {"sha": HEAD, "merged": False, "message": "Base is locked"})

    with pytest.raises(TaskFailed, match="not merged: Base is locked"):
        await merge(api, pr.number)

    assert len(fake.calls("PUT", MERGE)) == 1


async def test_a_lost_lease_stops_the_retries_before_the_next_merge(
    fake: FakeGitHub, api: RepoAPI
) -> None:
    """Once another worker holds the issue, this one merges nothing more."""
    pr = fake.add_pull("review-loop/pr-1/1", head_sha=HEAD, base_ref=BASE)
    fake.inject("PUT", MERGE, 409, HEAD_MOVED)

    with pytest.raises(LeaseLost):
        await merge(api, pr.number, LeaseChecks(lose_at=2))

    assert len(fake.calls("PUT", MERGE)) == 1
    assert pr.pull is not None and not pr.pull.merged


@pytest.mark.parametrize(
    ("fixed", "not_fixed", "issue_title", "title", "body"),
    [
        pytest.param([3], [], "Unused import", "Fix #3: Unused import",
                     "Fixes #3\n\nAgent `ruff-fix` made one commit per finding; each was "
                     "re-checked by the analyzer that reported it and nothing new was found.\n",
                     id="one-issue"),
        pytest.param([3, 5], [(4, "agent failed")], None, "Fix 2 findings: #3, #5",
                     "Fixes #3\nFixes #5\n\nAgent `ruff-fix` made one commit per finding; each "
                     "was re-checked by the analyzer that reported it and nothing new was found."
                     "\n\nNot fixed here: #4 (agent failed)",
                     id="batch-with-a-failure"),
        pytest.param([3], [], "x" * 300, "Fix #3: " + "x" * 192, None,
                     id="long-title-cut-to-200"),
        pytest.param([3], [], "Unused import", "Fix #3: Unused import",
                     "Fixes #3\n\nAgent `ruff-fix` made one commit per finding; each was "
                     "re-checked by the analyzer that reported it and nothing new was found.\n"
                     "\nModel cost of this fix: $0.0025 (1 calls, 493 tokens in, 65 out).\n",
                     id="with-the-runs-cost"),
    ],
)  # fmt: skip
def test_fix_pr_text(
    fixed: list[int],
    not_fixed: list[tuple[int, str]],
    issue_title: str | None,
    title: str,
    body: str | None,
) -> None:
    """The fix PR closes what it fixed, names its agent, what it could not fix and what the
    run's model calls cost."""
    cost = RunCost(0.002454, 493, 65, calls=1).line() if "cost" in (body or "") else ""
    got_title, got_body = fix_pr_text("ruff-fix", fixed, not_fixed, issue_title, cost)
    assert got_title == title
    if body is not None:
        assert got_body == body


def test_fix_pr_text_shows_what_a_cli_agent_said_collapsed() -> None:
    """A coding-agent CLI's last message per fixed issue is quoted in a closed <details>."""
    _, body = fix_pr_text(
        "claude", [3], [], "Unused import", notes={3: "Removed ```os```.", 9: "x"}
    )
    assert (
        "<details><summary>What agent `claude` said about #3</summary>\n\n"
        "````text\nRemoved ```os```.\n````\n\n</details>"
    ) in body
    assert "#9" not in body  # only the issues this PR fixes


async def test_a_base_modified_while_merging_is_tried_again(fake: FakeGitHub, api: RepoAPI) -> None:
    """GitHub answers 405 (not 409) "Base branch was modified" when another merge landed at
    that moment: the merge is tried again, not taken for a conflict."""
    pr = fake.add_pull("review-loop/pr-1/1", head_sha=HEAD, base_ref=BASE)
    fake.inject("PUT", MERGE, 405, BASE_MODIFIED)

    assert await merge(api, pr.number)

    assert len(fake.calls("PUT", MERGE)) == 2


@pytest.mark.parametrize(
    "message",
    [
        pytest.param('Required status check "test" is expected.', id="required-check"),
        pytest.param(
            "At least 1 approving review is required by reviewers with write access.",
            id="required-review",
        ),
        pytest.param("Repository rule violations found", id="ruleset"),
        pytest.param("Merge commits are not allowed on this repository.", id="method"),
    ],
)
async def test_a_merge_only_a_person_can_unblock_is_handed_over_with_githubs_message(
    fake: FakeGitHub, api: RepoAPI, message: str
) -> None:
    """Required checks, reviews, rules or a disallowed method: no conflict path, no retry;
    MergeBlocked quotes GitHub."""
    pr = fake.add_pull("review-loop/pr-1/1", head_sha=HEAD, base_ref=BASE)
    fake.inject("PUT", MERGE, 405, {"message": message})

    with pytest.raises(MergeBlocked) as caught:
        await merge(api, pr.number)

    assert caught.value.reason == f"GitHub refused to merge fix PR #{pr.number} (merge): {message}"
    assert len(fake.calls("PUT", MERGE)) == 1


async def test_a_squash_only_repository_is_merged_with_squash(
    fake: FakeGitHub, api: RepoAPI
) -> None:
    """The method chosen for the repository is the one sent."""
    fake.merge_methods = {"squash"}
    pr = fake.add_pull("review-loop/pr-1/1", head_sha=HEAD, base_ref=BASE)

    assert await merge(api, pr.number, method="squash")

    (put,) = fake.calls("PUT", MERGE)
    assert json.loads(put.content)["merge_method"] == "squash"


REQUIRED_CHECK = {"message": 'Required status check "review-loop" is expected.'}


async def test_a_merge_refused_for_the_missing_check_posts_it_and_merges_again(
    fake: FakeGitHub, api: RepoAPI
) -> None:
    """No check run goes ahead of the merge: GitHub's 405 for the missing required check
    gets it posted, and the second merge lands."""
    pr = fake.add_pull("review-loop/pr-1/1", head_sha=HEAD, base_ref=BASE)
    fake.inject("PUT", MERGE, 405, REQUIRED_CHECK)
    posts = CheckPosts()

    assert await merge(api, pr.number, checks_missing=posts)

    assert posts.calls == 1
    assert len(fake.calls("PUT", MERGE)) == 2
    assert pr.pull is not None and pr.pull.merged
    # The fix PR read once for its base (fresh for the second attempt), and not after the
    # 405: a refusal for required checks is of an open pull request.
    assert len(fake.calls("GET", rf"/pulls/{pr.number}")) == 1


async def test_a_merge_refused_again_after_the_check_is_posted_is_handed_over(
    fake: FakeGitHub, api: RepoAPI
) -> None:
    """A required check the bot's check run is not (someone else's CI): refused once more
    after posting it, the fix PR goes to a person with GitHub's message."""
    pr = fake.add_pull("review-loop/pr-1/1", head_sha=HEAD, base_ref=BASE)
    message = 'Required status check "ci" is expected.'
    for _ in range(2):
        fake.inject("PUT", MERGE, 405, {"message": message})
    posts = CheckPosts()

    with pytest.raises(MergeBlocked) as caught:
        await merge(api, pr.number, checks_missing=posts)

    assert caught.value.reason == f"GitHub refused to merge fix PR #{pr.number} (merge): {message}"
    assert posts.calls == 2
    assert len(fake.calls("PUT", MERGE)) == 2


async def test_a_fix_pr_pushed_onto_its_base_counts_once_github_marks_it_merged(
    fake: FakeGitHub, api: RepoAPI
) -> None:
    """After the push, the fix PR is read until GitHub says merged: then its branch may go."""
    pr = fake.add_pull("review-loop/pr-1/1", head_sha=HEAD, base_ref=BASE)
    assert pr.pull is not None
    pr.state, pr.pull.merged = "closed", True

    assert await push_merge.marked_merged(api, pr.number)
    assert len(fake.calls("GET", rf"/pulls/{pr.number}$")) == 1


async def test_a_fix_pr_github_never_marks_merged_keeps_its_branch(
    fake: FakeGitHub, api: RepoAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Still open at the deadline, or closed unmerged: False, so its branch is not deleted
    (deleting the head of an open pull request would close it unmerged)."""
    monkeypatch.setattr(push_merge, "MARKED_DEADLINE_S", 0.05)
    monkeypatch.setattr(push_merge, "MARKED_WAIT", wait_none())
    still_open = fake.add_pull("review-loop/pr-1/1", head_sha=HEAD, base_ref=BASE)
    closed = fake.add_pull("review-loop/pr-1/2", head_sha=HEAD, base_ref=BASE)
    closed.state = "closed"

    assert not await push_merge.marked_merged(api, still_open.number)
    assert not await push_merge.marked_merged(api, closed.number)
    assert len(fake.calls("GET", rf"/pulls/{still_open.number}$")) >= 2


async def test_a_push_lands_only_a_fix_pr_still_open_on_the_pr_branch(
    fake: FakeGitHub, api: RepoAPI
) -> None:
    """Before a fix lands over git its PR is read (unless GitHub told its state a moment
    ago): open goes ahead; merged by a person needs no push; closed by a person ends the
    task `rejected` (the merge API would refuse it, and a push would land it anyway); moved
    onto another base ends it `obsolete`."""
    open_pr = fake.add_pull("review-loop/pr-1/1", head_sha=HEAD, base_ref=BASE)
    merged = fake.add_pull("review-loop/pr-1/2", head_sha=HEAD, base_ref=BASE)
    closed = fake.add_pull("review-loop/pr-1/3", head_sha=HEAD, base_ref=BASE)
    moved = fake.add_pull("review-loop/pr-1/4", head_sha=HEAD, base_ref="main")
    assert merged.pull is not None
    merged.state, merged.pull.merged = "closed", True
    closed.state = "closed"

    def check(pr: Any, seen_at: float | None = None) -> _BaseCheck:
        return _BaseCheck(api, pr.number, BASE, seen_at)

    assert await _still_open(check(open_pr))
    assert not await _still_open(check(merged))
    with pytest.raises(TaskFailed) as rejected:
        await _still_open(check(closed))
    assert (rejected.value.status, rejected.value.reason) == ("rejected", REJECTED_ERROR)
    with pytest.raises(TaskFailed) as obsolete:
        await _still_open(check(moved))
    assert obsolete.value.status == "obsolete"
    reads = len(fake.calls("GET", r"/pulls/\d+$"))
    assert await _still_open(check(closed, seen_at=time.monotonic()))  # told just now
    assert len(fake.calls("GET", r"/pulls/\d+$")) == reads
