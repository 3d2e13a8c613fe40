"""Webhooks: the right events, signed, in order, with a delivery log that can redeliver."""

import subprocess
from pathlib import Path
from typing import Any

from githubkit import GitHub

from tests.sandbox.conftest import REPO, Receiver, World, app_client

OWNER, NAME = REPO.split("/")


def events_of(receiver: Receiver) -> list[str]:
    """The events received, but `push` (one per branch moved; see test_a_push_...)."""
    return [f"{r.event}.{r.action}" for r in receiver.received if r.event != "push"]


def test_installing_the_app_sends_installation_created(world: World, receiver: Receiver) -> None:
    """Installing the App on an owner sends `installation.created` naming its repositories."""
    world.sandbox.wait_for_deliveries()
    payload = receiver.one("installation", "created")
    assert payload["installation"]["id"] == world.installation_id
    assert [r["full_name"] for r in payload["repositories"]] == [REPO]
    assert payload["sender"]["login"] == "alice"


def test_issue_events_arrive_in_order(world: World, receiver: Receiver) -> None:
    """Filing, labelling, editing, closing and reopening an issue send those events in order."""
    driver = world.driver
    number = driver.file_issue(REPO, "Bug", "body", as_user="alice")["number"]
    driver.add_label(REPO, number, "review-loop:fix", as_user="alice")
    driver.remove_label(REPO, number, "review-loop:fix", as_user="alice")
    driver.edit_issue(REPO, number, as_user="alice", title="Bug!")
    driver.set_issue_state(REPO, number, "closed", as_user="alice")
    driver.set_issue_state(REPO, number, "open", as_user="alice")
    driver.comment(REPO, number, "@review-loop fix", as_user="bob")
    world.sandbox.wait_for_deliveries()
    assert events_of(receiver)[1:] == [
        "issues.opened",
        "issues.labeled",
        "issues.unlabeled",
        "issues.edited",
        "issues.closed",
        "issues.reopened",
        "issue_comment.created",
    ]
    assert receiver.one("issues", "edited")["changes"] == {"title": {"from": "Bug"}}
    assert receiver.one("issue_comment", "created")["sender"]["login"] == "bob"


def test_pull_request_events(world: World, receiver: Receiver) -> None:
    """Labels, draft -> ready, close without merge and reopen send their pull_request events."""
    driver = world.driver
    driver.push(REPO, "feature", {"f": "1"}, as_user="alice")
    number = driver.open_pr(REPO, "feature", as_user="alice", draft=True)["number"]
    driver.add_label(REPO, number, "review-loop", as_user="alice")
    driver.remove_label(REPO, number, "review-loop", as_user="alice")
    driver.mark_ready(REPO, number, as_user="alice")
    driver.set_issue_state(REPO, number, "closed", as_user="alice")
    driver.set_issue_state(REPO, number, "open", as_user="alice")
    world.sandbox.wait_for_deliveries()
    assert events_of(receiver)[1:] == [
        "pull_request.opened",
        "pull_request.labeled",
        "pull_request.unlabeled",
        "pull_request.ready_for_review",
        "pull_request.closed",
        "pull_request.reopened",
    ]
    assert receiver.one("pull_request", "closed")["pull_request"]["merged"] is False
    assert receiver.one("pull_request", "labeled")["label"]["name"] == "review-loop"


def test_events_the_bot_causes_carry_the_bot_as_sender(
    world: World, receiver: Receiver, bot: GitHub[Any]
) -> None:
    """An issue the App files arrives with sender `<slug>[bot]` of type Bot."""
    bot.rest.issues.create(OWNER, NAME, title="finding")
    world.sandbox.wait_for_deliveries()
    sender = receiver.one("issues", "opened")["sender"]
    assert (sender["login"], sender["type"]) == ("review-loop[bot]", "Bot")


def test_check_run_buttons_send_rerequested_and_requested_action(
    world: World, receiver: Receiver, bot: GitHub[Any]
) -> None:
    """Re-running a check and pressing its action button send the two check_run events."""
    sha = world.driver.push(REPO, "feature", {"f": "1"}, as_user="alice")
    world.driver.open_pr(REPO, "feature", as_user="alice")
    action = {"label": "Fix all", "description": "Fix every finding", "identifier": "fix_all"}
    run = bot.rest.checks.create(
        OWNER,
        NAME,
        name="review-loop",
        head_sha=sha,
        conclusion="action_required",
        actions=[action],
    ).parsed_data
    world.driver.rerequest_check_run(REPO, run.id, as_user="alice")
    world.driver.press_check_action(REPO, run.id, "fix_all", as_user="alice")
    world.sandbox.wait_for_deliveries()
    assert receiver.one("check_run", "rerequested")["check_run"]["id"] == run.id
    pressed = receiver.one("check_run", "requested_action")
    assert pressed["requested_action"] == {"identifier": "fix_all"}
    assert pressed["check_run"]["pull_requests"][0]["head"]["sha"] == sha


def test_failed_deliveries_are_listed_and_can_be_redelivered(
    world: World, receiver: Receiver
) -> None:
    """A delivery the receiver refuses is logged as failed; redelivering it reuses its GUID."""
    world.sandbox.wait_for_deliveries()
    receiver.status_code = 500
    world.driver.file_issue(REPO, "Bug", as_user="alice")
    world.sandbox.wait_for_deliveries()
    github = app_client(world.sandbox)
    failed = github.rest.apps.list_webhook_deliveries().parsed_data[0]
    assert (failed.event, failed.action, failed.status_code) == ("issues", "opened", 500)
    detail = github.rest.apps.get_webhook_delivery(failed.id).parsed_data
    assert detail.request.payload.model_dump()["issue"]["title"] == "Bug"
    receiver.status_code = 202
    assert github.rest.apps.redeliver_webhook_delivery(failed.id).parsed_data is not None
    world.sandbox.wait_for_deliveries()
    retried = github.rest.apps.list_webhook_deliveries().parsed_data[0]
    assert (retried.guid, retried.redelivery, retried.status_code) == (failed.guid, True, 202)
    guids = [r.guid for r in receiver.of("issues", "opened")]
    assert guids == [failed.guid, failed.guid]


def test_no_webhook_url_logs_deliveries_for_later(world: World, receiver: Receiver) -> None:
    """With no URL set, deliveries are logged as failed and reach the bot once redelivered."""
    world.sandbox.wait_for_deliveries()
    world.sandbox.set_webhook(None)
    world.driver.file_issue(REPO, "Early", as_user="alice")
    world.sandbox.wait_for_deliveries()
    assert receiver.of("issues", "opened") == []
    world.sandbox.set_webhook(receiver.url)
    github = app_client(world.sandbox)
    [missed] = [
        d for d in github.rest.apps.list_webhook_deliveries().parsed_data if d.status_code == 0
    ]
    github.rest.apps.redeliver_webhook_delivery(missed.id)
    world.sandbox.wait_for_deliveries()
    assert receiver.one("issues", "opened")["issue"]["title"] == "Early"


def test_a_push_sends_push_with_the_commits_and_their_files(
    world: World, receiver: Receiver
) -> None:
    """Each branch a push moves sends `push` (valid against GitHub's schema, as every
    delivery here): its commits with the files each added, modified and removed; a push
    that rewrote history says `forced`."""
    driver = world.driver
    first = driver.push(REPO, "feature", {"a.txt": "1", "b.txt": "1"}, as_user="alice")
    second = driver.push(REPO, "feature", {"a.txt": "2", "b.txt": None}, as_user="alice")
    rewritten = driver.push(REPO, "feature", {"c.txt": "1"}, as_user="alice", force=True)
    world.sandbox.wait_for_deliveries()
    pushes = [r.payload for r in receiver.of("push")]
    assert [p["after"] for p in pushes] == [first, second, rewritten]
    created, changed, forced = pushes
    assert created["ref"] == "refs/heads/feature" and created["created"]
    assert [c["added"] for c in created["commits"]] == [["a.txt", "b.txt"]]
    assert changed["before"] == first and not changed["created"] and not changed["forced"]
    assert changed["commits"][0]["modified"] == ["a.txt"]
    assert changed["commits"][0]["removed"] == ["b.txt"]
    assert changed["head_commit"]["id"] == second
    assert forced["forced"] and forced["before"] == second


def delete_over_git(world: World, tmp_path: Path, branch: str) -> str:
    """`git push <url> :refs/heads/<branch>` as alice, from an empty repository in
    `tmp_path`, once the sandbox has sent what it sends; the remote's URL."""
    subprocess.run(["git", "init", "--quiet", str(tmp_path)], check=True)
    url = world.driver.remote_url(REPO, "alice")
    subprocess.run(
        ["git", "-C", str(tmp_path), "push", "--quiet", url, f":refs/heads/{branch}"], check=True
    )
    world.sandbox.wait_for_deliveries()
    return url


def test_a_branch_deleted_by_a_git_push_sends_push_deleted(
    world: World, receiver: Receiver, tmp_path: Path
) -> None:
    """`git push origin :feature` deletes the branch as the REST API's DELETE does: a `push`
    with `deleted: true` and `after` all zeros, no commits; the open pull request it headed
    is closed, as GitHub closes one whose head branch is deleted."""
    driver = world.driver
    sha = driver.push(REPO, "feature", {"a.txt": "1"}, as_user="alice")
    pull = driver.open_pr(REPO, "feature", as_user="alice")
    url = delete_over_git(world, tmp_path, "feature")
    gone = receiver.of("push")[-1].payload
    assert gone["ref"] == "refs/heads/feature" and gone["deleted"]
    assert gone["before"] == sha and gone["after"] == "0" * 40 and gone["commits"] == []
    heads = subprocess.run(
        ["git", "ls-remote", "--heads", url], capture_output=True, text=True, check=True
    ).stdout
    assert "refs/heads/feature" not in heads and "refs/heads/main" in heads
    assert driver.pull(REPO, pull["number"])["state"] == "closed"
    assert receiver.one("pull_request", "closed")["pull_request"]["merged"] is False


def test_a_closed_pull_requests_head_branch_deleted_by_a_git_push_leaves_it_as_it_was(
    world: World, receiver: Receiver, tmp_path: Path
) -> None:
    """Deleting the head branch of a closed pull request (as the bot does for a fix PR it
    closed) sends `push` with `deleted: true` and nothing about the pull request: it stays
    closed, with its head, which GitHub keeps at `refs/pull/<n>/head` (the PR's "Restore
    branch" brings the branch back from it)."""
    driver = world.driver
    sha = driver.push(REPO, "feature", {"a.txt": "1"}, as_user="alice")
    pull = driver.open_pr(REPO, "feature", as_user="alice")
    driver.set_issue_state(REPO, pull["number"], "closed", as_user="alice")
    world.sandbox.wait_for_deliveries()
    before = len(receiver.of("pull_request"))
    url = delete_over_git(world, tmp_path, "feature")
    gone = receiver.of("push")[-1].payload
    assert gone["ref"] == "refs/heads/feature" and gone["deleted"] and gone["before"] == sha
    assert len(receiver.of("pull_request")) == before
    closed = driver.pull(REPO, pull["number"])
    assert (closed["state"], closed["head"]["ref"], closed["head"]["sha"]) == (
        "closed",
        "feature",
        sha,
    )
    refs = subprocess.run(
        ["git", "ls-remote", url], capture_output=True, text=True, check=True
    ).stdout
    assert f"{sha}\trefs/pull/{pull['number']}/head" in refs.splitlines()
    assert "refs/heads/feature" not in refs
