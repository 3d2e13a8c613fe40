"""A whole human scenario through githubkit, real HTTP and real git: push, PR, push, merge."""

import subprocess
from typing import Any

import pytest
from githubkit import GitHub

from bot.sandbox.driver import DriverError
from bot.web import signing
from tests.sandbox.conftest import REPO, SECRET, Receiver, World


def test_pull_request_lifecycle_reaches_the_receiver_and_the_repository(
    world: World, receiver: Receiver, alice: GitHub[Any]
) -> None:
    """Opening, pushing to and merging a PR sends signed webhooks and makes a real merge commit."""
    driver, sb = world.driver, world.sandbox
    first = driver.push(REPO, "feature", {"widgets/core.py": "A = 1\n"}, as_user="alice")
    created = alice.rest.pulls.create(
        "acme", "widgets", title="Add core", head="feature", base="main", body="Adds core."
    ).parsed_data
    sb.wait_for_deliveries()
    opened = receiver.of("pull_request", "opened")
    assert len(opened) == 1
    delivery = opened[0]
    assert signing.verify(SECRET, delivery.body, delivery.headers["x-hub-signature-256"])
    assert delivery.headers["user-agent"] == "GitHub-Hookshot/sandbox"
    assert delivery.payload["pull_request"]["head"]["sha"] == first
    assert delivery.payload["installation"]["id"] == world.installation_id
    assert delivery.payload["organization"]["login"] == "acme"
    assert delivery.payload["sender"]["login"] == "alice"

    second = driver.push(REPO, "feature", {"widgets/core.py": "A = 2\n"}, as_user="alice")
    sb.wait_for_deliveries()
    synchronize = receiver.one("pull_request", "synchronize")
    assert (synchronize["before"], synchronize["after"]) == (first, second)
    pull = alice.rest.pulls.get("acme", "widgets", created.number).parsed_data
    assert pull.head.sha == second
    assert pull.mergeable is True

    merged = alice.rest.pulls.merge("acme", "widgets", created.number, sha=second).parsed_data
    sb.wait_for_deliveries()
    closed = receiver.one("pull_request", "closed")
    assert closed["pull_request"]["merged"] is True
    assert closed["pull_request"]["merge_commit_sha"] == merged.sha
    bare = sb.hub.store.repo_by_name("acme", "widgets")
    assert bare is not None
    kind = subprocess.run(
        ["git", "--git-dir", str(bare.path), "cat-file", "-t", merged.sha],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert kind == "commit"
    parents = subprocess.run(
        ["git", "--git-dir", str(bare.path), "rev-parse", f"{merged.sha}^1", f"{merged.sha}^2"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert parents[1] == second
    assert driver.repo(REPO)["default_branch"] == "main"
    main_head = alice.rest.repos.get_content("acme", "widgets", "widgets/core.py").parsed_data
    assert main_head.sha  # the merged file is on the default branch


def test_closing_keywords_close_issues_only_when_merging_into_the_default_branch(
    world: World, receiver: Receiver, alice: GitHub[Any]
) -> None:
    """`Fixes #N` closes issue N on a merge into main, and not on a merge into another branch."""
    driver = world.driver
    on_main = driver.file_issue(REPO, "Bug on main", as_user="alice")["number"]
    elsewhere = driver.file_issue(REPO, "Bug elsewhere", as_user="alice")["number"]
    driver.push(REPO, "topic", {"a.txt": "a\n"}, as_user="alice")
    driver.push(REPO, "fix-topic", {"b.txt": "b\n"}, as_user="alice", base="topic")
    into_topic = driver.open_pr(
        REPO, "fix-topic", base="topic", body=f"Fixes #{elsewhere}", as_user="alice"
    )["number"]
    into_main = driver.open_pr(REPO, "topic", body=f"fixes #{on_main}", as_user="alice")["number"]

    driver.merge(REPO, into_topic, as_user="alice")
    assert driver.issue(REPO, elsewhere)["state"] == "open"
    driver.merge(REPO, into_main, as_user="alice")
    closed = driver.issue(REPO, on_main)
    assert (closed["state"], closed["state_reason"]) == ("closed", "completed")
    world.sandbox.wait_for_deliveries()
    assert [
        p["issue"]["number"] for p in map(lambda r: r.payload, receiver.of("issues", "closed"))
    ] == [on_main]


def test_merging_into_a_pull_requests_branch_synchronizes_that_pull_request(
    world: World, receiver: Receiver
) -> None:
    """A fix PR merged into a PR's head branch moves it: the PR gets `synchronize`."""
    driver = world.driver
    head = driver.push(REPO, "feature", {"f.py": "x = 1\n"}, as_user="alice")
    outer = driver.open_pr(REPO, "feature", as_user="alice")["number"]
    driver.push(REPO, "fix", {"g.py": "y = 1\n"}, as_user="alice", base="feature")
    inner = driver.open_pr(REPO, "fix", base="feature", as_user="alice")["number"]
    merge_sha = driver.merge(REPO, inner, as_user="alice")
    world.sandbox.wait_for_deliveries()
    synchronize = receiver.one("pull_request", "synchronize")
    assert synchronize["number"] == outer
    assert (synchronize["before"], synchronize["after"]) == (head, merge_sha)


def test_deleting_a_merged_prs_branch_retargets_the_prs_based_on_it(
    world: World, receiver: Receiver
) -> None:
    """GitHub's documented retarget: the PR stacked on a merged PR's deleted head branch now
    targets the merged PR's base, with `pull_request.edited` naming the old base; the
    deletion is a `push` with `deleted: true`. Both payloads match GitHub's schema."""
    driver = world.driver
    driver.push(REPO, "feature", {"f.py": "x = 1\n"}, as_user="alice")
    outer = driver.open_pr(REPO, "feature", as_user="alice")["number"]
    driver.push(REPO, "fix", {"g.py": "y = 1\n"}, as_user="alice", base="feature")
    inner = driver.open_pr(REPO, "fix", base="feature", as_user="alice")["number"]
    driver.merge(REPO, outer, as_user="alice")
    before = driver.pull(REPO, inner)["base"]["sha"]

    driver.delete_branch(REPO, "feature", as_user="alice")
    world.sandbox.wait_for_deliveries()

    assert driver.pull(REPO, inner)["base"]["ref"] == "main"
    edited = receiver.one("pull_request", "edited")
    assert edited["number"] == inner
    assert edited["changes"]["base"] == {"ref": {"from": "feature"}, "sha": {"from": before}}
    [deleted] = [p for p in map(lambda r: r.payload, receiver.of("push")) if p["deleted"]]
    assert deleted["ref"] == "refs/heads/feature" and deleted["commits"] == []
    with pytest.raises(DriverError, match=r"422.*Reference does not exist"):
        driver.delete_branch(REPO, "feature", as_user="alice")
