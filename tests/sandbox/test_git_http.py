"""Git over smart HTTP: token authentication, clones, pushes, big packs, gzip requests."""

import os
import time
from pathlib import Path

import httpx
import pytest

from bot.sandbox import DriverError
from tests.sandbox.conftest import REPO, Receiver, World, git, installation_remote

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
