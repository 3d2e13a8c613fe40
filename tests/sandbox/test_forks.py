"""Forks: a contributor forks, pushes to the fork and opens a pull request in the parent."""

import functools
from pathlib import Path
from typing import Any

import pytest
from githubkit import GitHub
from githubkit.exception import RequestFailed

from tests.sandbox.conftest import (
    REPO,
    Receiver,
    World,
    human_client,
    installation_remote,
    installation_token,
    validate_payload,
)
from tests.sandbox.conftest import git as sandbox_git

git = functools.partial(sandbox_git, check=False)  # these tests read the exit status

OWNER, NAME = REPO.split("/")
FORK = "bob/widgets"
CHANGE = {"widgets/pricing.py": "import os\n"}


def remote_refs(world: World, full_name: str, tmp_path: Path) -> dict[str, str]:
    listed = git(tmp_path, "ls-remote", installation_remote(world, full_name))
    assert listed.returncode == 0, listed.stderr
    return {ref: sha for sha, ref in (line.split("\t") for line in listed.stdout.splitlines())}


def fork_pr(world: World) -> tuple[int, str]:
    """bob forks acme/widgets, pushes `feature` to his fork and opens `bob:feature` into main."""
    driver = world.driver
    driver.fork(REPO, as_user="bob")
    sha = driver.push(FORK, "feature", CHANGE, as_user="bob", message="Add pricing")
    number = int(driver.open_pr(REPO, "bob:feature", as_user="bob", title="Pricing")["number"])
    return number, sha


@pytest.fixture
def bob(world: World) -> GitHub[Any]:
    return human_client(world, "bob", auto_retry=False)


def test_a_fork_is_a_copy_of_the_parent_in_the_users_account(
    world: World, bob: GitHub[Any], tmp_path: Path
) -> None:
    """`POST /forks` answers 202 with the fork (`fork`, `parent`, `source`); its branches start
    where the parent's are, the parent counts it, and forking again returns the same fork."""
    fork = bob.rest.repos.create_fork(OWNER, NAME)
    assert fork.status_code == 202
    data = fork.parsed_data
    assert (data.full_name, data.fork, data.owner.login) == (FORK, True, "bob")
    assert data.parent and data.parent.full_name == REPO
    assert data.source and data.source.full_name == REPO
    assert data.default_branch == "main"
    parent_main = remote_refs(world, REPO, tmp_path)["refs/heads/main"]
    listed = git(tmp_path, "ls-remote", world.driver.remote_url(FORK, "bob"))
    assert f"{parent_main}\trefs/heads/main" in listed.stdout.splitlines()
    parent = bob.rest.repos.get(OWNER, NAME).parsed_data
    assert (parent.fork, parent.forks_count, bool(parent.parent)) == (False, 1, False)
    assert [f.full_name for f in bob.rest.repos.list_forks(OWNER, NAME).parsed_data] == [FORK]
    assert bob.rest.repos.create_fork(OWNER, NAME).parsed_data.id == data.id


def test_a_pull_request_from_a_fork_heads_in_the_fork(
    world: World, bob: GitHub[Any], bot: GitHub[Any], receiver: Receiver, webhook_schema: Any
) -> None:
    """`head: "bob:feature"` opens a cross-repository pull request: head in the fork, base in
    the parent, as the REST models and GitHub's webhook schema both expect."""
    number, sha = fork_pr(world)
    pull = bot.rest.pulls.get(OWNER, NAME, number).parsed_data
    assert pull.head.repo and pull.head.repo.full_name == FORK and pull.head.repo.fork
    assert (pull.head.label, pull.head.ref, pull.head.sha) == ("bob:feature", "feature", sha)
    assert pull.head.user and pull.head.user.login == "bob"
    assert (pull.base.repo.full_name, pull.base.label) == (REPO, "acme:main")
    assert (pull.commits, pull.changed_files, pull.mergeable) == (1, 1, True)
    [listed] = bot.rest.pulls.list(OWNER, NAME, head="bob:feature").parsed_data
    assert listed.number == number and listed.head.repo and listed.head.repo.full_name == FORK
    assert bot.rest.pulls.list(OWNER, NAME, head="acme:feature").parsed_data == []
    world.sandbox.wait_for_deliveries()
    opened = receiver.one("pull_request", "opened")
    validate_payload(webhook_schema, "pull_request", opened)
    assert opened["repository"]["full_name"] == REPO
    assert opened["pull_request"]["head"]["repo"]["full_name"] == FORK
    assert opened["pull_request"]["head"]["repo"]["fork"] is True


@pytest.mark.parametrize(
    "head",
    ["carol:feature", "bob:nope", "feature"],
    ids=["owner-without-a-fork", "branch-not-in-the-fork", "fork-branch-without-owner"],
)
def test_a_head_that_names_no_branch_of_the_network_is_invalid(
    world: World, bob: GitHub[Any], head: str
) -> None:
    """A cross-repository `head` must name an existing branch of a fork: else 422 on `head`."""
    world.driver.create_user("carol")
    world.driver.fork(REPO, as_user="bob")
    world.driver.push(FORK, "feature", CHANGE, as_user="bob")
    with pytest.raises(RequestFailed) as error:
        bob.rest.pulls.create(OWNER, NAME, title="x", head=head, base="main")
    assert error.value.response.status_code == 422
    assert error.value.response.json()["errors"][0]["field"] == "head"


def test_the_parent_keeps_every_pull_requests_head_as_refs_pull_n_head(
    world: World, tmp_path: Path
) -> None:
    """`refs/pull/<n>/head` in the parent names each PR's head, a fork's or its own branch's,
    and an installation token fetches the fork's commits through it."""
    number, sha = fork_pr(world)
    own_sha = world.driver.push(REPO, "own", {"own.txt": "1\n"}, as_user="alice")
    own = int(world.driver.open_pr(REPO, "own", as_user="alice")["number"])
    refs = remote_refs(world, REPO, tmp_path)
    assert refs[f"refs/pull/{number}/head"] == sha
    assert refs[f"refs/pull/{own}/head"] == own_sha
    assert not any("refs/heads/feature" in ref for ref in refs)
    clone = tmp_path / "clone"
    assert git(tmp_path, "init", "--quiet", str(clone)).returncode == 0
    pulled = f"+refs/pull/{number}/head:refs/remotes/origin/pull/{number}"
    fetched = git(clone, "fetch", "--quiet", installation_remote(world, REPO), pulled)
    assert fetched.returncode == 0, fetched.stderr
    shown = git(clone, "show", f"{sha}:widgets/pricing.py")
    assert shown.stdout == CHANGE["widgets/pricing.py"]


def test_a_push_to_the_fork_branch_synchronizes_the_pull_request_in_the_parent(
    world: World, bot: GitHub[Any], receiver: Receiver, tmp_path: Path
) -> None:
    """The fork's owner pushes again: the parent's PR and `refs/pull/<n>/head` move to the new
    head and the parent's App gets `pull_request.synchronize`."""
    number, first = fork_pr(world)
    second = world.driver.push(FORK, "feature", {"widgets/more.py": "x = 1\n"}, as_user="bob")
    assert bot.rest.pulls.get(OWNER, NAME, number).parsed_data.head.sha == second
    assert remote_refs(world, REPO, tmp_path)[f"refs/pull/{number}/head"] == second
    world.sandbox.wait_for_deliveries()
    synchronize = receiver.one("pull_request", "synchronize")
    assert (synchronize["before"], synchronize["after"]) == (first, second)
    assert synchronize["repository"]["full_name"] == REPO
    assert synchronize["sender"]["login"] == "bob"
    assert synchronize["pull_request"]["head"]["repo"]["full_name"] == FORK


def test_the_installation_cannot_push_to_the_fork_nor_to_refs_pull(
    world: World, tmp_path: Path
) -> None:
    """The App is installed on acme, not on bob: its token cannot push to bob's fork, and no
    one pushes to `refs/pull/*`, which GitHub keeps."""
    number, sha = fork_pr(world)
    clone = tmp_path / "clone"
    cloned = git(tmp_path, "clone", "--quiet", installation_remote(world, REPO), str(clone))
    assert cloned.returncode == 0, cloned.stderr
    (clone / "fix.txt").write_text("fix\n")
    git(clone, "add", "fix.txt")
    assert git(clone, "commit", "--quiet", "-m", "fix").returncode == 0
    to_fork = git(clone, "push", installation_remote(world, FORK), "HEAD:refs/heads/feature")
    assert to_fork.returncode != 0
    in_fork = git(tmp_path, "ls-remote", world.driver.remote_url(FORK, "bob"), "feature")
    assert in_fork.stdout.split() == [sha, "refs/heads/feature"]
    to_pull_ref = git(clone, "push", "origin", f"HEAD:refs/pull/{number}/head")
    assert to_pull_ref.returncode != 0
    assert "hidden ref" in to_pull_ref.stderr
    assert remote_refs(world, REPO, tmp_path)[f"refs/pull/{number}/head"] == sha
    as_app = GitHub(installation_token(world), base_url=world.sandbox.api_url, auto_retry=False)
    with pytest.raises(RequestFailed) as error:
        as_app.rest.repos.create_fork(OWNER, NAME)
    assert error.value.response.status_code == 403


def test_merging_a_fork_pull_request_lands_the_forks_commits(
    world: World, alice: GitHub[Any], tmp_path: Path
) -> None:
    """A maintainer merges the fork's PR: the merge commit (from `refs/pull/<n>/head`) names
    the fork's owner and the parent's main now has the fork's file."""
    number, sha = fork_pr(world)
    merged = alice.rest.pulls.merge(OWNER, NAME, number, sha=sha).parsed_data
    assert merged.merged is True
    refs = remote_refs(world, REPO, tmp_path)
    assert refs["refs/heads/main"] == merged.sha
    bare = world.sandbox.hub.store.repos_dir / f"{REPO}.git"
    message = git(bare, "log", "-1", "--format=%s%n%P", str(merged.sha)).stdout.splitlines()
    assert message[0] == f"Merge pull request #{number} from bob/feature"
    assert sha in message[1].split()
    content = alice.rest.repos.get_content(OWNER, NAME, "widgets/pricing.py").parsed_data
    assert not isinstance(content, list) and content.sha


def test_check_runs_on_a_fork_head_list_no_pull_requests(world: World, bot: GitHub[Any]) -> None:
    """The App can check a fork PR's head in the parent, but, as GitHub documents, the check
    run's `pull_requests` is empty for a head pushed to a fork."""
    number, sha = fork_pr(world)
    run = bot.rest.checks.create(
        OWNER, NAME, name="review-loop", head_sha=sha, status="completed", conclusion="neutral"
    ).parsed_data
    assert (run.head_sha, run.pull_requests) == (sha, [])
    listed = bot.rest.checks.list_for_ref(OWNER, NAME, f"refs/pull/{number}/head").parsed_data
    assert [r.id for r in listed.check_runs] == [run.id]


def test_a_deleted_fork_leaves_its_pull_request_open_with_no_head_repo(
    world: World, bot: GitHub[Any], alice: GitHub[Any], tmp_path: Path
) -> None:
    """Deleting the fork: the PR stays open with `head.repo: null` (REST models parse it),
    its commits stay reachable as `refs/pull/<n>/head`, and it can still be merged."""
    number, sha = fork_pr(world)
    with pytest.raises(RequestFailed) as error:
        bot.rest.repos.delete("bob", "widgets")
    assert error.value.response.status_code == 404  # the installation cannot even see it
    world.driver.delete_repo(FORK, as_user="bob")
    pull = bot.rest.pulls.get(OWNER, NAME, number).parsed_data
    assert (pull.state, pull.head.repo, pull.head.sha) == ("open", None, sha)
    [listed] = bot.rest.pulls.list(OWNER, NAME).parsed_data
    assert listed.head.repo is None
    assert remote_refs(world, REPO, tmp_path)[f"refs/pull/{number}/head"] == sha
    assert bot.rest.repos.get(OWNER, NAME).parsed_data.forks_count == 0
    assert alice.rest.pulls.merge(OWNER, NAME, number).parsed_data.merged is True
