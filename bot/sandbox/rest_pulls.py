"""REST: pull requests — create, read, list, update, real merges, reviews and reviewers."""

from __future__ import annotations

from starlette.responses import Response

from bot.sandbox import events, gitops, pushes
from bot.sandbox.api import Call, Routes, flag, json_response, paginate
from bot.sandbox.errors import ApiError
from bot.sandbox.render_pulls import pull_of, pull_request, review
from bot.sandbox.rest_issues import apply_issue_update, check_body, find_issue
from bot.sandbox.state import Issue, PullData, Repo, Review

NOT_MERGEABLE = "Pull Request is not mergeable"
BASE_MODIFIED = "Base branch was modified. Review and try the merge again."
# GitHub's 405 for a merge method the repository's settings do not allow.
NOT_ALLOWED = {
    "merge": "Merge commits are not allowed on this repository.",
    "squash": "Squash merges are not allowed on this repository.",
    "rebase": "Rebase merges are not allowed on this repository.",
}
PASSED = ("success", "neutral", "skipped")
REVIEW_EVENTS = {
    "APPROVE": "APPROVED",
    "REQUEST_CHANGES": "CHANGES_REQUESTED",
    "COMMENT": "COMMENTED",
}


def find_pull(call: Call, repo: Repo) -> Issue:
    issue = find_issue(call, repo)
    if issue.pull is None:
        raise ApiError.not_found()
    return issue


def _branch(repo: Repo, spec: str, field: str) -> str:
    """The branch a `head`/`base` names (`owner:branch` or `branch`), which must exist."""
    branch = spec.split(":", 1)[1] if ":" in spec else spec
    if gitops.resolve(repo.path, f"refs/heads/{branch}") is None:
        raise ApiError.invalid("PullRequest", field)
    return branch


def _head_repo(call: Call, base: Repo, spec: str, head_repo: object) -> Repo:
    """The repository `head` (`branch` or `owner:branch`, GitHub's cross-repository form)
    names: the base repository or a fork in its network that the caller can read.
    `head_repo` picks among one owner's repositories, as on GitHub."""
    store = call.hub.store
    login = spec.partition(":")[0] if ":" in spec else store.accounts[base.owner_id].login
    owner = store.account_by_login(login)
    network = store.source(base).id
    candidates = sorted(
        (
            r
            for r in store.repos.values()
            if owner is not None
            and r.owner_id == owner.id
            and store.source(r).id == network
            and (head_repo is None or r.name.lower() == str(head_repo).lower())
        ),
        key=lambda r: (r.id != base.id, r.id),
    )
    if not candidates or not call.hub.can(call.who, candidates[0], "read"):
        raise ApiError.invalid("PullRequest", "head")
    return candidates[0]


async def create_pull(call: Call) -> Response:
    repo = call.repo()
    body = await call.body()
    for field in ("title", "head", "base"):
        if not isinstance(body.get(field), str) or not body[field].strip():
            raise ApiError.invalid("PullRequest", field, "missing_field")
    check_body("PullRequest", body.get("body"))
    source = _head_repo(call, repo, body["head"], body.get("head_repo"))
    head = _branch(source, body["head"], "head")
    base = _branch(repo, body["base"], "base")
    label = f"{call.hub.store.accounts[source.owner_id].login}:{head}"
    for other in repo.issues.values():
        pull = other.pull
        if (
            pull is not None
            and other.state == "open"
            and (pull.head_repo_id, pull.head_ref, pull.base_ref) == (source.id, head, base)
        ):
            raise ApiError.invalid(
                "PullRequest", "head", "custom", f"A pull request already exists for {label}."
            )
    head_sha = gitops.resolve(source.path, f"refs/heads/{head}")
    assert head_sha is not None
    gitops.fetch_commit(repo.path, source.path, head_sha)
    if gitops.diff_stats(repo.path, f"refs/heads/{base}", head_sha).commits == 0:
        raise ApiError.invalid(
            "PullRequest", "head", "custom", f"No commits between {base} and {head}"
        )
    now = call.hub.store.now()
    issue = Issue(
        id=call.hub.store.new_id(),
        number=repo.take_number(),
        title=body["title"],
        body=body.get("body"),
        user_id=call.sender.id,
        created_at=now,
        updated_at=now,
        pull=PullData(
            id=call.hub.store.new_id(),
            head_ref=head,
            head_sha=head_sha,
            head_repo_id=source.id,
            head_owner_id=source.owner_id,
            base_ref=base,
            draft=flag(body.get("draft")),
            maintainer_can_modify=body.get("maintainer_can_modify", True) is not False,
        ),
    )
    repo.issues[issue.number] = issue
    gitops.set_pull_head(repo.path, issue.number, head_sha)
    events.pull_request_changed(call.hub, repo, issue, "opened", call.sender)
    return json_response(pull_request(call.hub.render, issue, repo), status=201)


async def get_pull(call: Call) -> Response:
    repo = call.repo()
    return json_response(pull_request(call.hub.render, find_pull(call, repo), repo))


async def list_pulls(call: Call) -> Response:
    repo = call.repo()
    state = call.query("state", "open")
    pulls = [i for i in repo.issues.values() if i.pull and (state == "all" or i.state == state)]
    if head := call.query("head"):
        owner, _, branch = head.rpartition(":")
        accounts = call.hub.store.accounts
        pulls = [
            i
            for i in pulls
            if pull_of(i).head_ref == branch
            and (not owner or accounts[pull_of(i).head_owner_id].login.lower() == owner.lower())
        ]
    if base := call.query("base"):
        pulls = [i for i in pulls if pull_of(i).base_ref == base]
    key = "updated_at" if call.query("sort") == "updated" else "created_at"
    pulls.sort(key=lambda i: (getattr(i, key), i.number), reverse=call.query("direction") != "asc")
    page, links = paginate(call, pulls)
    rendered = [pull_request(call.hub.render, i, repo, full=False) for i in page]
    return json_response(rendered, headers=links)


async def update_pull(call: Call) -> Response:
    repo = call.repo()
    issue = find_pull(call, repo)
    if call.sender.id != issue.user_id and not call.hub.can(call.who, repo, "write"):
        raise ApiError(403, "Must have write access to this repository")
    body = await call.body()
    pull = pull_of(issue)
    if "base" in body:
        pull.base_ref = _branch(repo, str(body["base"]), "base")
    if pull.merged_at is not None and body.get("state") == "open":
        raise ApiError.invalid(
            "PullRequest", "state", "custom", "Cannot reopen a merged pull request"
        )
    await apply_issue_update(
        call, repo, issue, {k: body[k] for k in ("title", "body", "state") if k in body}
    )
    # Sandbox extension: GitHub marks drafts ready through GraphQL; here `draft` is patchable.
    if "draft" in body and flag(body["draft"]) != pull.draft:
        pull.draft = flag(body["draft"])
        action = "converted_to_draft" if pull.draft else "ready_for_review"
        events.pull_request_changed(call.hub, repo, issue, action, call.sender)
    return json_response(pull_request(call.hub.render, issue, repo))


async def merge_pull(call: Call) -> Response:
    repo = call.repo("write")
    issue = find_pull(call, repo)
    pull = pull_of(issue)
    body = await call.body()
    if issue.state != "open":
        raise ApiError(405, NOT_MERGEABLE)
    if pull.draft:
        raise ApiError(405, "Pull Request is still a draft")
    if call.hub.faults.base_modified():
        raise ApiError(405, BASE_MODIFIED)
    if body.get("sha") and body["sha"] != pull.head_sha:
        raise ApiError(409, "Head branch was modified. Review and try the merge again.")
    method = body.get("merge_method", "merge")
    if method not in NOT_ALLOWED:
        raise ApiError.invalid("PullRequest", "merge_method")
    if method not in repo.merge_methods:
        raise ApiError(405, NOT_ALLOWED[method])
    _check_protection(repo, issue, pull)
    before = gitops.branch_heads(repo.path)
    base_sha = before.get(pull.base_ref)
    tree = None if base_sha is None else gitops.merged_tree(repo.path, base_sha, pull.head_sha)
    if base_sha is None or tree is None:
        raise ApiError(405, NOT_MERGEABLE)
    owner = call.hub.store.accounts[pull.head_owner_id].login
    title = body.get("commit_title") or (
        f"Merge pull request #{issue.number} from {owner}/{pull.head_ref}"
        if method == "merge"
        else f"{issue.title} (#{issue.number})"
    )
    message = f"{title}\n\n{body.get('commit_message') or issue.title}"
    # A squash and (approximated here) a rebase both land as one commit on the base branch.
    parents = [base_sha, pull.head_sha] if method == "merge" else [base_sha]
    login = call.sender.login
    author = (login, f"{call.sender.id}+{login}@users.noreply.github.com")
    sha = gitops.commit_merge(
        repo.path,
        branch=pull.base_ref,
        base_sha=base_sha,
        tree=tree,
        parents=parents,
        message=message,
        author=author,
    )
    if sha is None:
        raise ApiError(405, BASE_MODIFIED)  # GitHub answers 405, not 409, for this one
    pushes.record_merge(call.hub, repo, issue, sha, call.sender)
    pushes.branches_moved(call.hub, repo, before, gitops.branch_heads(repo.path), call.sender)
    return json_response(
        {"sha": sha, "merged": True, "message": "Pull Request successfully merged"}
    )


def _check_protection(repo: Repo, issue: Issue, pull: PullData) -> None:
    """GitHub's 405s for a base branch whose protection the pull request does not meet yet:
    "Method Not Allowed if merge cannot be performed"
    (https://docs.github.com/en/rest/pulls/pulls#merge-a-pull-request). A required check
    counts on the pull request's latest commit only ("Required check needs to succeed
    against the latest commit SHA", https://docs.github.com/en/pull-requests/collaborating-with-pull-requests/collaborating-on-repositories-with-code-quality-features/troubleshooting-required-status-checks),
    so a check run posted on the head after a refusal lets the next merge through."""
    rule = repo.protection.get(pull.base_ref)
    if rule is None:
        return
    passed = {
        run.name
        for run in repo.check_runs.values()
        if run.head_sha == pull.head_sha and run.conclusion in PASSED
    }
    missing = [name for name in rule.required_checks if name not in passed]
    if len(missing) == 1:
        raise ApiError(405, required_check_message(missing[0]))
    if missing:
        count = len(rule.required_checks)
        raise ApiError(405, f"{len(missing)} of {count} required status checks are expected.")
    latest: dict[int, str] = {}
    for item in repo.reviews:
        if item.number == issue.number and item.state in ("APPROVED", "CHANGES_REQUESTED"):
            latest[item.user_id] = item.state
    approvals = sum(state == "APPROVED" for state in latest.values())
    if approvals < rule.required_approvals:
        raise ApiError(405, required_reviews_message(rule.required_approvals))


def required_check_message(name: str) -> str:
    """GitHub's words for a required check that has not passed (a merge's 405, a push's GH006)."""
    return f'Required status check "{name}" is expected.'


def required_reviews_message(n: int) -> str:
    """GitHub's words for `n` required approving reviews that are missing."""
    reviews = "approving review is" if n == 1 else "approving reviews are"
    return f"At least {n} {reviews} required by reviewers with write access."


async def request_reviewers(call: Call) -> Response:
    repo = call.repo("write")
    issue = find_pull(call, repo)
    pull = pull_of(issue)
    body = await call.body()
    for login in body.get("reviewers") or []:
        user = call.hub.store.account_by_login(str(login))
        if user is None or call.hub.store.permission(repo, user) == "none":
            raise ApiError.invalid(
                "PullRequest",
                "reviewers",
                "custom",
                "Reviews may only be requested from collaborators. One or more of the users "
                "or teams you specified is not a collaborator of the repository.",
            )
        if user.id == issue.user_id:
            raise ApiError.invalid(
                "PullRequest",
                "reviewers",
                "custom",
                "Review cannot be requested from pull request author.",
            )
        if user.id not in pull.requested_reviewer_ids:
            pull.requested_reviewer_ids.append(user.id)
    return json_response(pull_request(call.hub.render, issue, repo, full=False), status=201)


async def list_requested_reviewers(call: Call) -> Response:
    repo = call.repo()
    pull = pull_of(find_pull(call, repo))
    users = [call.hub.render.user_id(i) for i in pull.requested_reviewer_ids]
    return json_response({"users": users, "teams": []})


async def create_review(call: Call) -> Response:
    repo = call.repo()
    issue = find_pull(call, repo)
    pull = pull_of(issue)
    body = await call.body()
    event = body.get("event")
    state = REVIEW_EVENTS.get(str(event), "PENDING") if event else "PENDING"
    if event and event not in REVIEW_EVENTS:
        raise ApiError.invalid("PullRequestReview", "event")
    if state != "PENDING" and call.sender.id == issue.user_id and event != "COMMENT":
        verb = "approve" if event == "APPROVE" else "request changes on"
        raise ApiError.invalid(
            "PullRequestReview", "event", "custom", f"Can not {verb} your own pull request"
        )
    item = Review(
        id=call.hub.store.new_id(),
        number=issue.number,
        user_id=call.sender.id,
        state=state,
        body=str(body.get("body") or ""),
        commit_id=str(body.get("commit_id") or pull.head_sha),
        submitted_at=call.hub.store.now(),
    )
    repo.reviews.append(item)
    if call.sender.id in pull.requested_reviewer_ids:
        pull.requested_reviewer_ids.remove(call.sender.id)
    return json_response(review(call.hub.render, item, repo))


async def list_reviews(call: Call) -> Response:
    repo = call.repo()
    issue = find_pull(call, repo)
    items = [r for r in repo.reviews if r.number == issue.number]
    page, links = paginate(call, [review(call.hub.render, r, repo) for r in items])
    return json_response(page, headers=links)


def add_routes(routes: Routes) -> None:
    pulls = "/repos/{owner}/{repo}/pulls"
    routes.add("POST", pulls, create_pull, creates=True)
    routes.add("GET", pulls, list_pulls)
    routes.add("GET", pulls + "/{number}", get_pull)
    routes.add("PATCH", pulls + "/{number}", update_pull)
    routes.add("PUT", pulls + "/{number}/merge", merge_pull, creates=True)
    routes.add("POST", pulls + "/{number}/requested_reviewers", request_reviewers)
    routes.add("GET", pulls + "/{number}/requested_reviewers", list_requested_reviewers)
    routes.add("POST", pulls + "/{number}/reviews", create_review, creates=True)
    routes.add("GET", pulls + "/{number}/reviews", list_reviews)
