"""GitHub's JSON shapes for pull requests, reviews and check runs."""

from __future__ import annotations

from typing import Any

from bot.sandbox import gitops
from bot.sandbox.render import Json, Renderer, iso, node_id
from bot.sandbox.state import CheckRun, Issue, PullData, Repo, Review


def pull_of(issue: Issue) -> PullData:
    assert issue.pull is not None
    return issue.pull


def _branch_side(
    r: Renderer, owner_id: int, repo: Repo | None, ref: str, sha: str, webhook: bool
) -> Json:
    """`head` or `base`: `repo` is None for the head of a pull request whose fork is gone."""
    owner = r.store.accounts[owner_id]
    return {
        "label": f"{owner.login}:{ref}",
        "ref": ref,
        "sha": sha,
        "user": r.user(owner),
        "repo": None if repo is None else r.repository(repo, webhook=webhook),
    }


def head_repo(r: Renderer, pull: PullData) -> Repo | None:
    return None if pull.head_repo_id is None else r.store.repos.get(pull.head_repo_id)


def pull_request(
    r: Renderer, issue: Issue, repo: Repo, *, webhook: bool = False, full: bool = True
) -> Json:
    """A pull request; `full` adds what only `GET /pulls/{n}` and webhooks carry."""
    pull = pull_of(issue)
    name = r.store.full_name(repo)
    api = f"{r.api}/repos/{name}/pulls/{issue.number}"
    issue_api = f"{r.api}/repos/{name}/issues/{issue.number}"
    html = f"{r.web}/{name}/pull/{issue.number}"
    base_sha = gitops.resolve(repo.path, pull.base_ref) or pull.head_sha
    links = {
        "self": {"href": api},
        "html": {"href": html},
        "issue": {"href": issue_api},
        "comments": {"href": f"{issue_api}/comments"},
        "review_comments": {"href": f"{api}/comments"},
        "review_comment": {"href": f"{r.api}/repos/{name}/pulls/comments{{/number}}"},
        "commits": {"href": f"{api}/commits"},
        "statuses": {"href": f"{r.api}/repos/{name}/statuses/{pull.head_sha}"},
    }
    data: Json = {
        "url": api,
        "id": pull.id,
        "node_id": node_id("PR", pull.id),
        "html_url": html,
        "diff_url": f"{html}.diff",
        "patch_url": f"{html}.patch",
        "issue_url": issue_api,
        "commits_url": f"{api}/commits",
        "review_comments_url": f"{api}/comments",
        "review_comment_url": f"{r.api}/repos/{name}/pulls/comments{{/number}}",
        "comments_url": f"{issue_api}/comments",
        "statuses_url": f"{r.api}/repos/{name}/statuses/{pull.head_sha}",
        "number": issue.number,
        "state": issue.state,
        "locked": False,
        "title": issue.title,
        "user": r.user_id(issue.user_id),
        "body": issue.body,
        "labels": r.issue_labels(issue, repo, webhook=webhook),
        "milestone": None,
        "active_lock_reason": None,
        "created_at": iso(issue.created_at),
        "updated_at": iso(issue.updated_at),
        "closed_at": iso(issue.closed_at),
        "merged_at": iso(pull.merged_at),
        "merge_commit_sha": pull.merge_commit_sha,
        "assignee": None,
        "assignees": [],
        "requested_reviewers": [r.user_id(i) for i in pull.requested_reviewer_ids],
        "requested_teams": [],
        "head": _branch_side(
            r, pull.head_owner_id, head_repo(r, pull), pull.head_ref, pull.head_sha, webhook
        ),
        "base": _branch_side(r, repo.owner_id, repo, pull.base_ref, base_sha, webhook),
        "_links": links,
        "author_association": r.author_association(repo, issue.user_id),
        "auto_merge": None,
        "draft": pull.draft,
    }
    if not full:
        return data
    mergeable: bool | None = None
    if issue.state == "open":
        mergeable = gitops.merged_tree(repo.path, base_sha, pull.head_sha) is not None
    stats = gitops.diff_stats(repo.path, base_sha, pull.head_sha)
    data.update(
        {
            "merged": pull.merged_at is not None,
            "mergeable": mergeable,
            "rebaseable": mergeable,
            "mergeable_state": {True: "clean", False: "dirty", None: "unknown"}[mergeable],
            "merged_by": None if pull.merged_by_id is None else r.user_id(pull.merged_by_id),
            "comments": len(issue.comment_ids),
            "review_comments": 0,
            "maintainer_can_modify": pull.maintainer_can_modify,
            "commits": stats.commits,
            "additions": stats.additions,
            "deletions": stats.deletions,
            "changed_files": stats.changed_files,
        }
    )
    return data


def review(r: Renderer, item: Review, repo: Repo) -> Json:
    name = r.store.full_name(repo)
    html = f"{r.web}/{name}/pull/{item.number}"
    return {
        "id": item.id,
        "node_id": node_id("PRR", item.id),
        "user": r.user_id(item.user_id),
        "body": item.body,
        "state": item.state,
        "html_url": f"{html}#pullrequestreview-{item.id}",
        "pull_request_url": f"{r.api}/repos/{name}/pulls/{item.number}",
        "_links": {
            "html": {"href": f"{html}#pullrequestreview-{item.id}"},
            "pull_request": {"href": f"{r.api}/repos/{name}/pulls/{item.number}"},
        },
        "submitted_at": iso(item.submitted_at),
        "commit_id": item.commit_id,
        "author_association": r.author_association(repo, item.user_id),
    }


def _minimal_pull(r: Renderer, issue: Issue, repo: Repo) -> Json:
    pull = pull_of(issue)
    name = r.store.full_name(repo)
    repo_ref = {"id": repo.id, "url": f"{r.api}/repos/{name}", "name": repo.name}
    return {
        "id": pull.id,
        "number": issue.number,
        "url": f"{r.api}/repos/{name}/pulls/{issue.number}",
        "head": {"ref": pull.head_ref, "sha": pull.head_sha, "repo": repo_ref},
        "base": {
            "ref": pull.base_ref,
            "sha": gitops.resolve(repo.path, pull.base_ref) or pull.head_sha,
            "repo": repo_ref,
        },
    }


def check_run(r: Renderer, run: CheckRun, repo: Repo, *, webhook: bool = False) -> Json:
    name = r.store.full_name(repo)
    url = f"{r.api}/repos/{name}/check-runs/{run.id}"
    # As on GitHub, only pull requests whose head branch is in this repository are listed:
    # "pushes to a branch in a forked repository are not detected" (an empty list for forks).
    pulls = [
        _minimal_pull(r, i, repo)
        for i in repo.issues.values()
        if i.pull is not None
        and i.state == "open"
        and i.pull.head_sha == run.head_sha
        and i.pull.head_repo_id == repo.id
    ]
    head_branch = next((p["head"]["ref"] for p in pulls), None)
    suite_conclusion = run.conclusion if run.status == "completed" else None
    suite: Json = {
        "id": run.suite_id,
        "node_id": node_id("CS", run.suite_id),
        "head_branch": head_branch,
        "head_sha": run.head_sha,
        "status": run.status,
        "conclusion": suite_conclusion,
        "url": f"{r.api}/repos/{name}/check-suites/{run.suite_id}",
        "before": None,
        "after": run.head_sha,
        "pull_requests": pulls,
        "app": r.app(),
        "created_at": iso(run.started_at),
        "updated_at": iso(run.completed_at or run.started_at),
    }
    data: Json = {
        "id": run.id,
        "node_id": node_id("CR", run.id),
        "head_sha": run.head_sha,
        "external_id": run.external_id or "",
        "url": url,
        "html_url": f"{r.web}/{name}/runs/{run.id}",
        "details_url": run.details_url or f"{r.web}/{name}/runs/{run.id}",
        "status": run.status,
        "conclusion": run.conclusion,
        "started_at": iso(run.started_at),
        "completed_at": iso(run.completed_at),
        "output": {
            "title": run.title,
            "summary": run.summary,
            "text": run.text,
            "annotations_count": len(run.annotations),
            "annotations_url": f"{url}/annotations",
        },
        "name": run.name,
        "check_suite": suite,
        "app": r.app(),
        "pull_requests": pulls,
    }
    return data


def annotation_list(run: CheckRun) -> list[dict[str, Any]]:
    defaults = {"title": None, "raw_details": None, "start_column": None, "end_column": None}
    return [
        {**defaults, **a, "blob_href": "", "message": a.get("message", "")} for a in run.annotations
    ]
