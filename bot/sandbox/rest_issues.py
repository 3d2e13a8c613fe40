"""REST: issues (which include pull requests), their labels and their comments."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from bot.sandbox import events
from bot.sandbox.api import Call, Routes, json_response, paginate
from bot.sandbox.errors import ApiError
from bot.sandbox.rest_repos import ensure_label
from bot.sandbox.state import Comment, Issue, Repo

STATE_REASONS = ("completed", "not_planned", "reopened", "duplicate")


MAX_BODY = 65_536  # GitHub's limit on issue, pull request and comment bodies


def check_body(resource: str, text: object) -> None:
    """GitHub's 422 for a body over 65,536 characters (it refuses, it does not cut)."""
    if isinstance(text, str) and len(text) > MAX_BODY:
        message = f"body is too long (maximum is {MAX_BODY} characters)"
        raise ApiError.invalid(resource, "body", "custom", message)


def find_issue(call: Call, repo: Repo) -> Issue:
    issue = repo.issues.get(call.int_param("number"))
    if issue is None:
        raise ApiError.not_found()
    return issue


def _may_edit(call: Call, repo: Repo, author_id: int) -> None:
    if call.sender.id != author_id and not call.hub.can(call.who, repo, "write"):
        raise ApiError(403, "Must have write access to this repository")


def _label_names(value: Any) -> list[str]:
    if not isinstance(value, list):
        raise ApiError.invalid("Issue", "labels")
    names = []
    for item in value:
        name = item.get("name") if isinstance(item, dict) else item
        if not isinstance(name, str) or not name:
            raise ApiError.invalid("Label", "name")
        names.append(name)
    return names


async def create_issue(call: Call) -> Response:
    repo = call.repo()
    body = await call.body()
    title = body.get("title")
    if not isinstance(title, (str, int)) or not str(title).strip():
        raise ApiError.invalid("Issue", "title", "missing_field")
    check_body("Issue", body.get("body"))
    now = call.hub.store.now()
    issue = Issue(
        id=call.hub.store.new_id(),
        number=repo.take_number(),
        title=str(title),
        body=body.get("body"),
        user_id=call.sender.id,
        created_at=now,
        updated_at=now,
    )
    repo.issues[issue.number] = issue
    events.issue_changed(call.hub, repo, issue, "opened", call.sender)
    # As on GitHub, labels given at creation (writers only) also arrive as `labeled` events.
    if body.get("labels") and call.hub.can(call.who, repo, "write"):
        set_labels(call, repo, issue, _label_names(body["labels"]))
    return json_response(call.hub.render.issue(issue, repo), status=201)


async def get_issue(call: Call) -> Response:
    repo = call.repo()
    return json_response(call.hub.render.issue(find_issue(call, repo), repo))


def set_state(call: Call, repo: Repo, issue: Issue, state: str, reason: str | None) -> None:
    """Close or reopen an issue (or pull request) and send the matching event."""
    if state not in ("open", "closed"):
        raise ApiError.invalid("Issue", "state")
    if state == issue.state:
        return
    now = call.hub.store.now()
    issue.updated_at = now
    if state == "closed":
        issue.state, issue.closed_at = "closed", now
        issue.state_reason = None if issue.pull else (reason or "completed")
        events.issue_changed(call.hub, repo, issue, "closed", call.sender)
    else:
        issue.state, issue.closed_at = "open", None
        issue.state_reason = None if issue.pull else "reopened"
        events.issue_changed(call.hub, repo, issue, "reopened", call.sender)


def set_labels(call: Call, repo: Repo, issue: Issue, names: list[str]) -> None:
    """Replace an issue's labels, sending `labeled`/`unlabeled` for each difference."""
    wanted = [ensure_label(call, repo, n).name for n in dict.fromkeys(names)]
    removed = [n for n in issue.label_names if n.lower() not in {w.lower() for w in wanted}]
    added = [n for n in wanted if n.lower() not in {h.lower() for h in issue.label_names}]
    if not removed and not added:
        return
    issue.label_names = [n for n in issue.label_names if n not in removed] + added
    issue.updated_at = call.hub.store.now()
    for name in removed:
        label = repo.labels[name.lower()]
        events.issue_changed(call.hub, repo, issue, "unlabeled", call.sender, label=label)
    for name in added:
        label = repo.labels[name.lower()]
        events.issue_changed(call.hub, repo, issue, "labeled", call.sender, label=label)


async def update_issue(call: Call) -> Response:
    repo = call.repo()
    issue = find_issue(call, repo)
    _may_edit(call, repo, issue.user_id)
    body = await call.body()
    await apply_issue_update(call, repo, issue, body)
    return json_response(call.hub.render.issue(issue, repo))


async def apply_issue_update(call: Call, repo: Repo, issue: Issue, body: dict[str, Any]) -> None:
    changes: dict[str, Any] = {}
    check_body("PullRequest" if issue.pull else "Issue", body.get("body"))
    for field in ("title", "body"):
        if field in body and body[field] != getattr(issue, field):
            if field == "title" and not str(body[field] or "").strip():
                raise ApiError.invalid("Issue", "title", "missing_field")
            changes[field] = {"from": getattr(issue, field) or ""}
            setattr(issue, field, body[field])
    if changes:
        issue.updated_at = call.hub.store.now()
        events.issue_changed(call.hub, repo, issue, "edited", call.sender, changes=changes)
    if "labels" in body:
        set_labels(call, repo, issue, _label_names(body["labels"]))
    reason = body.get("state_reason")
    if reason is not None and reason not in STATE_REASONS:
        raise ApiError.invalid("Issue", "state_reason")
    if "state" in body:
        set_state(call, repo, issue, str(body["state"]), reason)
    elif reason is not None and issue.state == "closed" and issue.pull is None:
        issue.state_reason = reason


def _sorted(items: list[Issue], call: Call) -> list[Issue]:
    sort = call.query("sort", "created")
    keys = {
        "created": lambda i: (i.created_at, i.number),
        "updated": lambda i: (i.updated_at, i.number),
        "comments": lambda i: (len(i.comment_ids), i.number),
    }
    if sort not in keys:
        raise ApiError.invalid("Issue", "sort")
    return sorted(items, key=keys[sort], reverse=call.query("direction", "desc") != "asc")


async def list_issues(call: Call) -> Response:
    repo = call.repo()
    state = call.query("state", "open")
    issues = [i for i in repo.issues.values() if state == "all" or i.state == state]
    if labels := call.query("labels"):
        wanted = {n.strip().lower() for n in labels.split(",") if n.strip()}
        issues = [i for i in issues if wanted <= {n.lower() for n in i.label_names}]
    if creator := call.query("creator"):
        issues = [
            i for i in issues if call.hub.store.accounts[i.user_id].login.lower() == creator.lower()
        ]
    page, links = paginate(call, _sorted(issues, call))
    rendered = [call.hub.render.issue(i, repo) for i in page]
    return json_response(rendered, headers=links)


# labels on an issue


async def add_labels(call: Call) -> Response:
    repo = call.repo("triage")  # as on GitHub: triagers label, though they cannot push
    issue = find_issue(call, repo)
    body = await call.json_any()
    names = _label_names(body.get("labels", []) if isinstance(body, dict) else body)
    set_labels(call, repo, issue, issue.label_names + names)
    return json_response(call.hub.render.issue_labels(issue, repo))


async def replace_labels(call: Call) -> Response:
    repo = call.repo("triage")  # as on GitHub: triagers label, though they cannot push
    issue = find_issue(call, repo)
    body = await call.body()
    set_labels(call, repo, issue, _label_names(body.get("labels", [])))
    return json_response(call.hub.render.issue_labels(issue, repo))


async def remove_label(call: Call) -> Response:
    repo = call.repo("triage")  # as on GitHub: triagers label, though they cannot push
    issue = find_issue(call, repo)
    name = call.param("name").lower()
    if name not in {n.lower() for n in issue.label_names}:
        raise ApiError(404, "Label does not exist")
    set_labels(call, repo, issue, [n for n in issue.label_names if n.lower() != name])
    return json_response(call.hub.render.issue_labels(issue, repo))


async def list_issue_labels(call: Call) -> Response:
    repo = call.repo()
    issue = find_issue(call, repo)
    return json_response(call.hub.render.issue_labels(issue, repo))


# comments


async def create_comment(call: Call) -> Response:
    repo = call.repo()
    issue = find_issue(call, repo)
    body = await call.body()
    text = body.get("body")
    if not isinstance(text, str) or not text:
        raise ApiError.invalid("IssueComment", "body", "missing_field")
    check_body("IssueComment", text)
    now = call.hub.store.now()
    comment = Comment(
        id=call.hub.store.new_id(),
        issue_number=issue.number,
        user_id=call.sender.id,
        body=text,
        created_at=now,
        updated_at=now,
        via_app=call.who.kind == "installation",
    )
    repo.comments[comment.id] = comment
    issue.comment_ids.append(comment.id)
    issue.updated_at = now
    events.comment_created(call.hub, repo, issue, comment, call.sender)
    return json_response(call.hub.render.comment(comment, repo), status=201)


def _find_comment(call: Call, repo: Repo) -> Comment:
    comment = repo.comments.get(call.int_param("comment_id"))
    if comment is None:
        raise ApiError.not_found()
    return comment


async def get_comment(call: Call) -> Response:
    repo = call.repo()
    return json_response(call.hub.render.comment(_find_comment(call, repo), repo))


async def update_comment(call: Call) -> Response:
    repo = call.repo()
    comment = _find_comment(call, repo)
    _may_edit(call, repo, comment.user_id)
    text = (await call.body()).get("body")
    if not isinstance(text, str) or not text:
        raise ApiError.invalid("IssueComment", "body", "missing_field")
    check_body("IssueComment", text)
    comment.body, comment.updated_at = text, call.hub.store.now()
    return json_response(call.hub.render.comment(comment, repo))


async def list_comments(call: Call) -> Response:
    repo = call.repo()
    issue = find_issue(call, repo)
    comments = [repo.comments[i] for i in issue.comment_ids]
    page, links = paginate(call, [call.hub.render.comment(c, repo) for c in comments])
    return json_response(page, headers=links)


def add_routes(routes: Routes) -> None:
    issues = "/repos/{owner}/{repo}/issues"
    routes.add("POST", issues, create_issue, creates=True)
    routes.add("GET", issues, list_issues)
    routes.add("GET", issues + "/comments/{comment_id}", get_comment)
    routes.add("PATCH", issues + "/comments/{comment_id}", update_comment)
    routes.add("GET", issues + "/{number}", get_issue)
    routes.add("PATCH", issues + "/{number}", update_issue)
    routes.add("GET", issues + "/{number}/labels", list_issue_labels)
    routes.add("POST", issues + "/{number}/labels", add_labels)
    routes.add("PUT", issues + "/{number}/labels", replace_labels)
    routes.add("DELETE", issues + "/{number}/labels/{name:path}", remove_label)
    routes.add("GET", issues + "/{number}/comments", list_comments)
    routes.add("POST", issues + "/{number}/comments", create_comment, creates=True)
