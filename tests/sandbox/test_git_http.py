"""Git over smart HTTP: token authentication, clones, pushes, big packs, gzip requests."""

import os
import time
from pathlib import Path

import httpx
import pytest

from bot.sandbox import DriverError
from tests.sandbox.conftest import REPO, Receiver, World, bot_client, git, installation_remote

OWNER, NAME = REPO.split("/")


def test_git_without_credentials_is_challenged(world: World) -> None:
    """An anonymous git request gets 401 with a Basic challenge, as git expects."""
    answer = httpx.get(f"{world.sandbox.url}/{REPO}.git/info/refs?service=git-upload-pack")
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"].startswith("Basic")


def test_the_bot_clones_and_pushes_with_an_installation_token(
    world: World, receiver: Receiver, tmp_path: Path
) -> None:
    """`x-access-token:<token>` clones, and a push to a PR's branch synchronizes the PR."""
    driver = world.driver
    driver.push(REPO, "feature", {"f.py": "x = 1\n"}, as_user="alice")
    number = driver.open_pr(REPO, "feature", as_user="alice")["number"]
    remote = installation_remote(world, REPO)
    git(tmp_path, "clone", "--quiet", "--branch", "feature", remote, "work")
    work = tmp_path / "work"
    (work / "f.py").write_text("x = 2\n")
    git(work, "commit", "--quiet", "-am", "fix")
    git(work, "push", "--quiet", "origin", "feature")
    head = git(work, "rev-parse", "HEAD").stdout.strip()
    assert driver.pull(REPO, number)["head"]["sha"] == head
    world.sandbox.wait_for_deliveries()
    synchronize = receiver.one("pull_request", "synchronize")
    assert synchronize["after"] == head
    assert synchronize["sender"]["login"] == "review-loop[bot]"


def test_big_pushes_and_gzip_fetches_stream_through(world: World, tmp_path: Path) -> None:
    """A multi-megabyte push (chunked) and a fetch whose negotiation git gzips both work."""
    git(tmp_path, "clone", "--quiet", installation_remote(world, REPO), "work")
    work = tmp_path / "work"
    (work / "blob.bin").write_bytes(os.urandom(3 * 1024 * 1024))
    git(work, "add", "blob.bin")
    git(work, "commit", "--quiet", "-m", "big")
    git(work, "push", "--quiet", "origin", "HEAD:refs/heads/big")
    git(work, "checkout", "--quiet", "-b", "local")
    future = int(time.time()) + 3600
    for n in range(60):  # local-only commits: the fetch sends a "have" for each
        (work / "n.txt").write_text(str(n))
        git(work, "add", "n.txt")
        # Dated after everything on the server, so that negotiation walks all of them before
        # it reaches a common commit: a later round's request is then over git's 1 KiB gzip
        # threshold. (Same-second dates let the common commit come first, one round, no gzip.)
        git(work, "commit", "--quiet", "-m", f"local {n}", date=f"@{future + n} +0000")
    world.driver.push(REPO, "main", {"new.txt": "new\n"}, as_user="alice")
    fetched = git(work, "fetch", "origin", trace=True)
    assert "Content-Encoding: gzip" in fetched.stderr
    assert git(work, "cat-file", "-p", "origin/main:new.txt").stdout == "new\n"


def test_readers_cannot_push(world: World) -> None:
    """A user with read permission can fetch but a push is refused."""
    with pytest.raises(DriverError, match=r"403|denied|not granted"):
        world.driver.push(REPO, "nope", {"x": "y"}, as_user="bob")
    world.driver.push(REPO, "yes", {"x": "y"}, as_user="alice")


def _fix_pr(world: World, tmp_path: Path) -> tuple[Path, int, int, str]:
    """A PR from `feature` into main and a fix PR from `fix` into `feature`, made by the App
    over git; the App's clone of `fix`, the two numbers and the fix's head."""
    driver = world.driver
    driver.push(REPO, "feature", {"f.py": "x = 1\n"}, as_user="alice")
    pr = driver.open_pr(REPO, "feature", as_user="alice")["number"]
    git(tmp_path, "clone", "--quiet", "--branch", "feature", installation_remote(world, REPO), "w")
    work = tmp_path / "w"
    (work / "f.py").write_text("x = 2\n")
    git(work, "commit", "--quiet", "-am", "Fix #9: x\n\nFixes #9")
    git(work, "push", "--quiet", "origin", "HEAD:refs/heads/fix")
    fix = driver.open_pr(REPO, "fix", base="feature", as_user="alice")["number"]
    return work, pr, fix, git(work, "rev-parse", "HEAD").stdout.strip()


def test_pushing_a_fix_prs_head_onto_its_base_marks_it_merged(
    world: World, receiver: Receiver, tmp_path: Path
) -> None:
    """A pull request whose head commit reaches its base branch by a push (a merge made on
    the command line) is merged, as GitHub marks it: `closed` with `merged: true` and the
    pusher as `merged_by`; the PR whose head branch moved synchronizes; nothing else is
    merged."""
    work, pr, fix, head = _fix_pr(world, tmp_path)
    git(work, "push", "--quiet", "origin", "HEAD:refs/heads/feature")
    world.sandbox.wait_for_deliveries()
    merged = world.driver.pull(REPO, fix)
    assert (merged["state"], merged["merged"]) == ("closed", True)
    assert merged["merged_by"]["login"] == "review-loop[bot]"
    assert merged["merge_commit_sha"] == head
    closed = receiver.one("pull_request", "closed")
    assert closed["number"] == fix and closed["pull_request"]["merged"] is True
    assert receiver.one("pull_request", "synchronize")["number"] == pr
    assert world.driver.pull(REPO, pr)["state"] == "open"


def test_a_push_that_does_not_contain_a_prs_head_leaves_it_open(
    world: World, receiver: Receiver, tmp_path: Path
) -> None:
    """A push onto the base branch of anything but a descendant of the PR's head merges
    nothing."""
    work, _, fix, _ = _fix_pr(world, tmp_path)
    git(work, "checkout", "--quiet", "--detach", "HEAD~1")
    (work / "other.py").write_text("y = 1\n")
    git(work, "add", "other.py")
    git(work, "commit", "--quiet", "-m", "other")
    git(work, "push", "--quiet", "origin", "HEAD:refs/heads/feature")
    world.sandbox.wait_for_deliveries()
    assert world.driver.pull(REPO, fix)["state"] == "open"
    assert receiver.of("pull_request", "closed") == []


def test_a_push_to_a_protected_branch_is_refused_as_github_refuses_it(
    world: World, tmp_path: Path
) -> None:
    """A branch whose protection requires a check refuses a direct push with GitHub's GH006
    lines, and moves nothing; once the check passed on the pushed commit the push goes
    through. One that requires a review refuses every push."""
    work, _, fix, head = _fix_pr(world, tmp_path)
    world.driver.protect_branch(REPO, "feature", required_checks=["ci"])
    refused = git(work, "push", "origin", "HEAD:refs/heads/feature", check=False)
    assert refused.returncode != 0
    assert "GH006: Protected branch update failed for refs/heads/feature." in refused.stderr
    assert 'Required status check "ci" is expected.' in refused.stderr
    assert world.driver.pull(REPO, fix)["state"] == "open"
    bot = bot_client(world)
    bot.rest.checks.create(
        OWNER, NAME, name="ci", head_sha=head, status="completed", conclusion="success"
    )
    git(work, "push", "--quiet", "origin", "HEAD:refs/heads/feature")
    assert world.driver.pull(REPO, fix)["merged"] is True
    world.driver.protect_branch(REPO, "main", required_approvals=1)
    refused = git(work, "push", "origin", "HEAD:refs/heads/main", check=False)
    assert "At least 1 approving review is required" in refused.stderr


def test_github_may_mark_a_pushed_pr_merged_a_moment_later(world: World, tmp_path: Path) -> None:
    """With `merge_by_push_delay_s`, the push is answered with the fix PR still open; it is
    marked merged once the delay has passed, as GitHub does in the background."""
    work, _, fix, _ = _fix_pr(world, tmp_path)
    world.driver.set_faults(merge_by_push_delay_s=0.5)
    git(work, "push", "--quiet", "origin", "HEAD:refs/heads/feature")
    assert world.driver.pull(REPO, fix)["state"] == "open"
    deadline = time.monotonic() + 30
    while world.driver.pull(REPO, fix)["state"] == "open":
        assert time.monotonic() < deadline, "never marked merged"
        time.sleep(0.05)
    assert world.driver.pull(REPO, fix)["merged"] is True
    assert world.driver.fault_stats()["injected"]["merge_by_push_delay"] == 1
