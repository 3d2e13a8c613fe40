"""The REST API answers in GitHub's shapes: githubkit's own models parse every response."""

import base64
from typing import Any

import httpx
import pytest
from githubkit import GitHub
from githubkit.exception import RequestFailed
from githubkit_schemas.latest.models import ValidationError

from bot.sandbox import DriverError
from tests.sandbox.conftest import FILES, REPO, World, app_client, human_client

OWNER, NAME = REPO.split("/")


def status_of(error: pytest.ExceptionInfo[RequestFailed]) -> int:
    return error.value.response.status_code


def test_app_endpoints_need_the_apps_jwt(world: World) -> None:
    """`/app`, installations and access tokens parse, and are refused without a valid JWT."""
    github = app_client(world.sandbox)
    app = github.rest.apps.get_authenticated().parsed_data
    assert (app.id, app.slug) == (world.sandbox.app_id, "review-loop")
    assert app.permissions.issues == "write"
    [installation] = github.rest.apps.list_installations().parsed_data
    assert installation.id == world.installation_id
    assert github.rest.apps.get_installation(installation.id).parsed_data.app_slug == "review-loop"
    assert github.rest.apps.get_repo_installation(OWNER, NAME).parsed_data.id == installation.id
    token = github.rest.apps.create_installation_access_token(installation.id).parsed_data
    assert token.token.startswith("ghs_")
    answer = httpx.get(world.sandbox.api_url + "app", headers={"Authorization": "Bearer a.b.c"})
    assert answer.status_code == 401


def test_unauthenticated_requests_get_githubs_401(world: World) -> None:
    """Without credentials the API answers 401 "Requires authentication" with rate headers."""
    answer = httpx.get(world.sandbox.api_url + f"repos/{REPO}/issues")
    assert answer.status_code == 401
    assert answer.json()["message"] == "Requires authentication"
    assert "documentation_url" in answer.json()
    assert answer.headers["x-ratelimit-resource"] == "core"


def test_installation_tokens_expire_after_an_hour(world: World) -> None:
    """A token works until its `expires_at`, one hour later, then gets 401 Bad credentials."""
    github = app_client(world.sandbox)
    token = github.rest.apps.create_installation_access_token(world.installation_id).parsed_data
    client = GitHub(token.token, base_url=world.sandbox.api_url, timeout=10)
    assert client.rest.repos.get(OWNER, NAME).parsed_data.full_name == REPO
    world.driver.advance_clock(3601)
    with pytest.raises(RequestFailed) as error:
        client.rest.repos.get(OWNER, NAME)
    assert status_of(error) == 401


def test_scoped_tokens_see_only_their_repositories(world: World) -> None:
    """A token scoped to `repositories` gets 404 for the installation's other repositories."""
    world.driver.create_repo("acme/other", {"x": "y"})
    github = app_client(world.sandbox)
    token = github.rest.apps.create_installation_access_token(
        world.installation_id, repositories=["widgets"]
    ).parsed_data
    client = GitHub(token.token, base_url=world.sandbox.api_url, timeout=10)
    assert client.rest.repos.get(OWNER, NAME).parsed_data.id
    with pytest.raises(RequestFailed) as error:
        client.rest.repos.get("acme", "other")
    assert status_of(error) == 404


def test_repository_and_contents(bot: GitHub[Any]) -> None:
    """The repository, a file (base64), a directory and a missing file (404) read as on GitHub."""
    repo = bot.rest.repos.get(OWNER, NAME)
    assert repo.parsed_data.default_branch == "main"
    assert int(repo.headers["x-ratelimit-remaining"]) < 5000
    config = bot.rest.repos.get_content(OWNER, NAME, ".github/review-loop.yml", ref="main")
    content = config.parsed_data
    assert not isinstance(content, list) and content.type == "file"
    assert base64.b64decode(content.content).decode() == FILES[".github/review-loop.yml"]
    listing = bot.rest.repos.get_content(OWNER, NAME, "widgets").parsed_data
    assert isinstance(listing, list) and [i.name for i in listing] == ["__init__.py"]
    with pytest.raises(RequestFailed) as error:
        bot.rest.repos.get_content(OWNER, NAME, "nope.txt")
    assert status_of(error) == 404
    assert error.value.response.json()["message"] == "Not Found"


def test_issues_create_update_and_list_with_filters_and_pages(
    world: World, bot: GitHub[Any]
) -> None:
    """Issues are created, edited, closed and listed by state, label and creator, in pages."""
    for n in range(3):
        bot.rest.issues.create(OWNER, NAME, title=f"finding {n}", labels=["review-loop:finding"])
    world.driver.file_issue(REPO, "human bug", as_user="bob")
    world.driver.push(REPO, "feature", {"f": "1"}, as_user="alice")
    pr = world.driver.open_pr(REPO, "feature", as_user="alice")
    issue = bot.rest.issues.get(OWNER, NAME, 1).parsed_data
    assert issue.labels and issue.user and issue.user.login == "review-loop[bot]"
    updated = bot.rest.issues.update(
        OWNER, NAME, 1, state="closed", state_reason="not_planned", title="renamed", body="b"
    ).parsed_data
    assert (updated.state, updated.state_reason, updated.title) == (
        "closed",
        "not_planned",
        "renamed",
    )

    everything = bot.rest.issues.list_for_repo(OWNER, NAME, state="all").parsed_data
    assert [i.number for i in everything] == [pr["number"], 4, 3, 2, 1]
    assert everything[0].pull_request is not None
    labelled = bot.rest.issues.list_for_repo(OWNER, NAME, labels="review-loop:finding").parsed_data
    assert [i.number for i in labelled] == [3, 2]
    by_bob = bot.rest.issues.list_for_repo(OWNER, NAME, creator="bob").parsed_data
    assert [i.title for i in by_bob] == ["human bug"]
    page = bot.rest.issues.list_for_repo(
        OWNER, NAME, state="all", per_page=2, page=1, direction="asc", sort="created"
    )
    assert [i.number for i in page.parsed_data] == [1, 2]
    assert 'rel="next"' in page.headers["link"] and 'rel="last"' in page.headers["link"]
    pages = list(
        bot.rest.paginate(
            bot.rest.issues.list_for_repo, owner=OWNER, repo=NAME, state="all", per_page=2
        )
    )
    assert len(pages) == 5


def test_issue_and_pull_request_numbers_share_one_counter(world: World, bot: GitHub[Any]) -> None:
    """Issues and pull requests in one repository take numbers from the same sequence."""
    first = bot.rest.issues.create(OWNER, NAME, title="one").parsed_data.number
    world.driver.push(REPO, "feature", {"f": "1"}, as_user="alice")
    second = world.driver.open_pr(REPO, "feature", as_user="alice")["number"]
    third = bot.rest.issues.create(OWNER, NAME, title="three").parsed_data.number
    assert (first, second, third) == (1, 2, 3)


def test_comments_create_update_and_list(bot: GitHub[Any]) -> None:
    """Comments are created, edited in place and listed."""
    number = bot.rest.issues.create(OWNER, NAME, title="t").parsed_data.number
    comment = bot.rest.issues.create_comment(OWNER, NAME, number, body="first").parsed_data
    edited = bot.rest.issues.update_comment(OWNER, NAME, comment.id, body="second").parsed_data
    assert edited.body == "second"
    assert bot.rest.issues.get_comment(OWNER, NAME, comment.id).parsed_data.body == "second"
    listed = bot.rest.issues.list_comments(OWNER, NAME, number).parsed_data
    assert [c.id for c in listed] == [comment.id]


def test_labels_on_repositories_and_issues(bot: GitHub[Any]) -> None:
    """Labels are created (422 when they exist), listed, added to and removed from issues."""
    label = bot.rest.issues.create_label(OWNER, NAME, name="agent:ruff", color="5319e7").parsed_data
    assert label.name == "agent:ruff"
    with pytest.raises(RequestFailed) as error:
        bot.rest.issues.create_label(OWNER, NAME, name="Agent:Ruff", color="5319e7")
    assert status_of(error) == 422
    assert error.value.response.json()["errors"][0]["code"] == "already_exists"
    number = bot.rest.issues.create(OWNER, NAME, title="t").parsed_data.number
    added = bot.rest.issues.add_labels(
        OWNER, NAME, number, labels=["agent:ruff", "new"]
    ).parsed_data
    assert [x.name for x in added] == ["agent:ruff", "new"]
    left = bot.rest.issues.remove_label(OWNER, NAME, number, "agent:ruff").parsed_data
    assert [x.name for x in left] == ["new"]
    assert {x.name for x in bot.rest.issues.list_labels_for_repo(OWNER, NAME).parsed_data} == {
        "agent:ruff",
        "new",
    }
    assert bot.rest.issues.get_label(OWNER, NAME, "new").parsed_data.color == "ededed"


def test_pull_requests_create_get_list_and_update(world: World, bot: GitHub[Any]) -> None:
    """Pull requests are opened, read, listed by head and base, and edited."""
    world.driver.push(REPO, "review-loop/pr-1/7", {"f": "1"}, as_user="alice")
    created = bot.rest.pulls.create(
        OWNER, NAME, title="Fix", head="review-loop/pr-1/7", base="main", body="Fixes #7"
    ).parsed_data
    assert created.user.login == "review-loop[bot]" and created.commits == 1
    fetched = bot.rest.pulls.get(OWNER, NAME, created.number).parsed_data
    assert fetched.head.ref == "review-loop/pr-1/7" and fetched.mergeable_state == "clean"
    by_head = bot.rest.pulls.list(OWNER, NAME, head="acme:review-loop/pr-1/7").parsed_data
    assert [p.number for p in by_head] == [created.number]
    assert bot.rest.pulls.list(OWNER, NAME, base="other").parsed_data == []
    with pytest.raises(RequestFailed) as error:
        bot.rest.pulls.create(OWNER, NAME, title="again", head="review-loop/pr-1/7", base="main")
    assert status_of(error) == 422
    updated = bot.rest.pulls.update(OWNER, NAME, created.number, title="Fix it", state="closed")
    assert (updated.parsed_data.title, updated.parsed_data.state) == ("Fix it", "closed")
    assert bot.rest.pulls.list(OWNER, NAME, state="closed").parsed_data[0].number == created.number


def test_merge_refuses_conflicts_and_stale_heads(world: World, bot: GitHub[Any]) -> None:
    """Merging answers 409 when `sha` is not the head and 405 when the branches conflict."""
    driver = world.driver
    head = driver.push(REPO, "left", {"README.md": "left\n"}, as_user="alice")
    driver.push(REPO, "right", {"README.md": "right\n"}, as_user="alice")
    left = driver.open_pr(REPO, "left", as_user="alice")["number"]
    right = driver.open_pr(REPO, "right", as_user="alice")["number"]
    with pytest.raises(RequestFailed) as stale:
        bot.rest.pulls.merge(OWNER, NAME, left, sha="0" * 40)
    assert status_of(stale) == 409
    assert bot.rest.pulls.merge(OWNER, NAME, left, sha=head).parsed_data.merged is True
    assert bot.rest.pulls.get(OWNER, NAME, right).parsed_data.mergeable is False
    with pytest.raises(RequestFailed) as conflict:
        bot.rest.pulls.merge(OWNER, NAME, right)
    assert status_of(conflict) == 405
    assert conflict.value.response.json()["message"] == "Pull Request is not mergeable"


def test_merge_methods_follow_the_repositorys_settings(world: World, bot: GitHub[Any]) -> None:
    """A squash-only repository says so in `GET /repos` and refuses a merge commit with
    GitHub's 405; squash merges."""
    driver = world.driver
    driver.set_merge_methods(REPO, "squash")
    repo = bot.rest.repos.get(OWNER, NAME).parsed_data
    assert (repo.allow_merge_commit, repo.allow_squash_merge, repo.allow_rebase_merge) == (
        False,
        True,
        False,
    )
    driver.push(REPO, "feature", {"f": "1"}, as_user="alice")
    number = driver.open_pr(REPO, "feature", as_user="alice")["number"]
    with pytest.raises(RequestFailed) as refused:
        bot.rest.pulls.merge(OWNER, NAME, number, merge_method="merge")
    assert status_of(refused) == 405
    assert refused.value.response.json()["message"] == (
        "Merge commits are not allowed on this repository."
    )
    merged = bot.rest.pulls.merge(OWNER, NAME, number, merge_method="squash").parsed_data
    assert merged.merged is True


def test_a_protected_branch_merges_once_its_checks_passed_and_it_is_approved(
    world: World, bot: GitHub[Any]
) -> None:
    """Branch protection answers 405 with GitHub's messages: first the required check, then
    the required approval; met, the merge goes through."""
    driver = world.driver
    driver.set_permission(REPO, "bob", "write")
    driver.protect_branch(REPO, "main", required_checks=["test"], required_approvals=1)
    sha = driver.push(REPO, "feature", {"f": "1"}, as_user="alice")
    number = driver.open_pr(REPO, "feature", as_user="alice")["number"]

    def refusal() -> str:
        with pytest.raises(RequestFailed) as refused:
            bot.rest.pulls.merge(OWNER, NAME, number, sha=sha)
        assert status_of(refused) == 405
        return str(refused.value.response.json()["message"])

    assert refusal() == 'Required status check "test" is expected.'
    bot.rest.checks.create(
        OWNER, NAME, name="test", head_sha=sha, status="completed", conclusion="failure"
    )
    assert refusal() == 'Required status check "test" is expected.'
    bot.rest.checks.create(
        OWNER, NAME, name="test", head_sha=sha, status="completed", conclusion="success"
    )
    assert refusal() == "At least 1 approving review is required by reviewers with write access."
    driver.approve(REPO, number, as_user="bob")
    assert bot.rest.pulls.merge(OWNER, NAME, number, sha=sha).parsed_data.merged is True


def test_bodies_over_65536_characters_are_refused_as_github_does(
    world: World, bot: GitHub[Any]
) -> None:
    """Issue, comment and PR bodies past 65,536 characters get GitHub's 422; at the limit they
    are taken."""
    long, fits = "b" * 65_537, "b" * 65_536
    refusals = []
    with pytest.raises(RequestFailed) as error:
        bot.rest.issues.create(OWNER, NAME, title="t", body=long)
    refusals.append(error)
    number = bot.rest.issues.create(OWNER, NAME, title="t", body=fits).parsed_data.number
    with pytest.raises(RequestFailed) as error:
        bot.rest.issues.update(OWNER, NAME, number, body=long)
    refusals.append(error)
    with pytest.raises(RequestFailed) as error:
        bot.rest.issues.create_comment(OWNER, NAME, number, body=long)
    refusals.append(error)
    world.driver.push(REPO, "feature", {"f": "1"}, as_user="alice")
    with pytest.raises(RequestFailed) as error:
        bot.rest.pulls.create(OWNER, NAME, title="t", head="feature", base="main", body=long)
    refusals.append(error)

    for refused in refusals:
        assert status_of(refused) == 422
        [detail] = refused.value.response.json()["errors"]
        assert detail["message"] == "body is too long (maximum is 65536 characters)"


def test_contents_over_a_megabyte_come_from_the_blob_api(world: World, bot: GitHub[Any]) -> None:
    """Past 1 MB the contents API answers `encoding: "none"` with no content; the blob API
    has the file."""
    text = "x = 1\n" * 200_000
    world.driver.push(REPO, "big", {"big.py": text}, as_user="alice")
    content = bot.rest.repos.get_content(OWNER, NAME, "big.py", ref="big").parsed_data
    assert not isinstance(content, list)
    assert (content.encoding, content.content) == ("none", "")
    blob = bot.rest.git.get_blob(OWNER, NAME, content.sha).parsed_data
    assert base64.b64decode(blob.content).decode() == text


def test_reviewers_and_reviews(world: World, bot: GitHub[Any]) -> None:
    """The bot requests reviewers; a human approves; the author cannot approve their own PR."""
    world.driver.push(REPO, "feature", {"f": "1"}, as_user="alice")
    number = world.driver.open_pr(REPO, "feature", as_user="alice")["number"]
    requested = bot.rest.pulls.request_reviewers(OWNER, NAME, number, reviewers=["bob"])
    assert [u.login for u in requested.parsed_data.requested_reviewers or []] == ["bob"]
    listed = bot.rest.pulls.list_requested_reviewers(OWNER, NAME, number).parsed_data
    assert [u.login for u in listed.users] == ["bob"]
    bob = human_client(world, "bob")
    review = bob.rest.pulls.create_review(OWNER, NAME, number, event="APPROVE").parsed_data
    assert review.state == "APPROVED"
    assert [r.state for r in bot.rest.pulls.list_reviews(OWNER, NAME, number).parsed_data] == [
        "APPROVED"
    ]
    alice = human_client(world, "alice", auto_retry=False)
    with pytest.raises(RequestFailed) as error:
        alice.rest.pulls.create_review(OWNER, NAME, number, event="APPROVE")
    assert status_of(error) == 422


def test_check_runs_limits_and_accumulated_annotations(world: World, bot: GitHub[Any]) -> None:
    """Check runs refuse over 50 annotations or 3 actions per request; annotations add up."""
    sha = world.driver.push(REPO, "feature", {"f": "1"}, as_user="alice")
    annotation = {
        "path": "f",
        "start_line": 1,
        "end_line": 1,
        "annotation_level": "warning",
        "message": "m",
    }
    output = {"title": "t", "summary": "s", "annotations": [annotation] * 50}
    run = bot.rest.checks.create(
        OWNER, NAME, name="review-loop", head_sha=sha, status="in_progress", output=output
    ).parsed_data
    url = f"/repos/{REPO}/check-runs/{run.id}"  # raw requests: githubkit would refuse these
    too_many = {**output, "annotations": [annotation] * 51}
    with pytest.raises(RequestFailed) as error:
        bot.request("PATCH", url, json={"output": too_many}, error_models={"422": ValidationError})
    assert status_of(error) == 422
    actions = [{"label": f"a{n}", "description": "d", "identifier": f"a{n}"} for n in range(4)]
    with pytest.raises(RequestFailed) as error:
        bot.request("PATCH", url, json={"actions": actions}, error_models={"422": ValidationError})
    assert status_of(error) == 422
    assert error.value.response.parsed_data.message == "Validation Failed"
    done = bot.rest.checks.update(
        OWNER, NAME, run.id, conclusion="success", output=output, actions=actions[:3]
    ).parsed_data
    assert (done.status, done.conclusion, done.output.annotations_count) == (
        "completed",
        "success",
        100,
    )
    listed = bot.rest.checks.list_for_ref(OWNER, NAME, "feature", check_name="review-loop")
    assert [r.id for r in listed.parsed_data.check_runs] == [run.id]
    assert (
        bot.rest.checks.list_for_ref(OWNER, NAME, sha, check_name="other").parsed_data.total_count
        == 0
    )
    assert (
        len(bot.rest.checks.list_annotations(OWNER, NAME, run.id, per_page=100).parsed_data) == 100
    )


def test_collaborator_permission_levels(world: World, bot: GitHub[Any]) -> None:
    """Permission levels read as admin, write, read and none."""
    world.driver.create_user("carol")
    world.driver.set_permission(REPO, "carol", "admin")
    levels = {
        login: bot.rest.repos.get_collaborator_permission_level(
            OWNER, NAME, login
        ).parsed_data.permission
        for login in ("alice", "bob", "carol")
    }
    assert levels == {"alice": "write", "bob": "read", "carol": "admin"}
    world.driver.set_permission(REPO, "bob", "none")
    bob = bot.rest.repos.get_collaborator_permission_level(OWNER, NAME, "bob").parsed_data
    assert bob.permission == "none"


def test_triage_and_maintain_read_as_githubs_legacy_levels_with_their_role_name(
    world: World, bot: GitHub[Any]
) -> None:
    """As on GitHub, `permission` folds triage into read and maintain into write, and
    `role_name` keeps the role."""
    world.driver.create_user("carol")
    world.driver.set_permission(REPO, "bob", "triage")
    world.driver.set_permission(REPO, "carol", "maintain")
    read = bot.rest.repos.get_collaborator_permission_level
    bob, carol = (read(OWNER, NAME, login).parsed_data for login in ("bob", "carol"))
    assert (bob.permission, bob.role_name) == ("read", "triage")
    assert (carol.permission, carol.role_name) == ("write", "maintain")


def test_triagers_label_but_cannot_push(world: World) -> None:
    """Triage may add and remove labels, but a push needs write."""
    world.driver.set_permission(REPO, "bob", "triage")
    bob = human_client(world, "bob", auto_retry=False)
    number = world.driver.file_issue(REPO, "q", as_user="alice")["number"]
    labels = bob.rest.issues.add_labels(OWNER, NAME, number, labels=["x"]).parsed_data
    assert [label.name for label in labels] == ["x"]
    bob.rest.issues.remove_label(OWNER, NAME, number, "x")
    with pytest.raises(DriverError, match=r"403|denied|not granted"):
        world.driver.push(REPO, "nope", {"x": "y"}, as_user="bob")


def test_humans_with_read_permission_cannot_label(world: World) -> None:
    """A reader may comment but labelling needs triage: 403 in GitHub's shape."""
    bob = human_client(world, "bob", auto_retry=False)
    number = world.driver.file_issue(REPO, "q", as_user="bob")["number"]
    assert bob.rest.issues.create_comment(OWNER, NAME, number, body="hi").parsed_data.id
    with pytest.raises(RequestFailed) as error:
        bob.rest.issues.add_labels(OWNER, NAME, number, labels=["x"])
    assert status_of(error) == 403


def test_unknown_endpoints_answer_githubs_json_404(world: World) -> None:
    """A path the sandbox does not serve answers `{"message": "Not Found"}` with rate headers."""
    answer = httpx.get(world.sandbox.api_url + "repos/acme/widgets/nothing-here")
    assert (answer.status_code, answer.json()["message"]) == (404, "Not Found")
    assert "x-ratelimit-limit" in answer.headers


def test_check_run_text_over_65535_characters_is_refused(world: World, bot: GitHub[Any]) -> None:
    """A check run's output.summary past 65,535 characters gets GitHub's 422."""
    sha = world.driver.push(REPO, "feature", {"f": "1"}, as_user="alice")
    output = {"title": "t", "summary": "s" * 65_536}
    body = {"name": "review-loop", "head_sha": sha, "output": output}
    with pytest.raises(RequestFailed) as error:
        bot.request(
            "POST", f"/repos/{REPO}/check-runs", json=body, error_models={"422": ValidationError}
        )
    assert status_of(error) == 422
