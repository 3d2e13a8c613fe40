"""Webhook payloads for what happens in the sandbox, built with the shared renderers."""

from __future__ import annotations

from typing import Any

from bot.sandbox import gitops, render_pulls
from bot.sandbox.hub import Hub
from bot.sandbox.state import Account, CheckRun, Comment, Installation, Issue, Label, Repo


def issue_changed(
    hub: Hub,
    repo: Repo,
    issue: Issue,
    action: str,
    sender: Account,
    *,
    label: Label | None = None,
    changes: dict[str, Any] | None = None,
) -> None:
    """`issues.<action>`, or `pull_request.<action>` when the issue is a pull request."""
    if issue.pull is not None:
        extra: dict[str, Any] = {}
        if label is not None:
            extra["label"] = hub.render.label(label, repo, webhook=True)
        if changes is not None:
            extra["changes"] = changes
        pull_request_changed(hub, repo, issue, action, sender, **extra)
        return
    payload: dict[str, Any] = {
        "action": action,
        "issue": hub.render.issue(issue, repo, webhook=True),
    }
    if label is not None:
        payload["label"] = hub.render.label(label, repo, webhook=True)
    if changes is not None:
        payload["changes"] = changes
    hub.send("issues", repo, sender, payload)


def pull_request_changed(
    hub: Hub, repo: Repo, issue: Issue, action: str, sender: Account, **extra: Any
) -> None:
    payload = {
        "action": action,
        "number": issue.number,
        "pull_request": render_pulls.pull_request(hub.render, issue, repo, webhook=True),
        **extra,
    }
    hub.send("pull_request", repo, sender, payload)


def comment_created(hub: Hub, repo: Repo, issue: Issue, comment: Comment, sender: Account) -> None:
    payload = {
        "action": "created",
        "issue": hub.render.issue(issue, repo, webhook=True),
        "comment": hub.render.comment(comment, repo),
    }
    hub.send("issue_comment", repo, sender, payload)


def check_run_changed(
    hub: Hub,
    repo: Repo,
    run: CheckRun,
    action: str,
    sender: Account,
    identifier: str | None = None,
) -> None:
    payload: dict[str, Any] = {
        "action": action,
        "check_run": render_pulls.check_run(hub.render, run, repo, webhook=True),
    }
    if identifier is not None:
        payload["requested_action"] = {"identifier": identifier}
    hub.send("check_run", repo, sender, payload)


def installation_created(hub: Hub, installation: Installation, sender: Account) -> None:
    store = hub.store
    repos = [r for r in store.repos.values() if r.owner_id == installation.account_id]
    payload = {
        "action": "created",
        "installation": hub.render.installation(installation),
        "repositories": [
            {
                "id": r.id,
                "node_id": hub.render.repository(r)["node_id"],
                "name": r.name,
                "full_name": store.full_name(r),
                "private": r.private,
            }
            for r in repos
        ],
    }
    hub.send("installation", None, sender, payload)


def pushed(hub: Hub, repo: Repo, branch: str, before: str, after: str, sender: Account) -> None:
    """`push` for one branch that moved, was created or (`after` all zeros) was deleted in
    `repo`; a deletion lists no commits."""
    name = hub.store.full_name(repo)
    deleted = after == gitops.ZERO_SHA
    new: list[gitops.PushedCommit] = []
    if not deleted:
        since = None
        if branch != repo.default_branch:
            since = gitops.resolve(repo.path, f"refs/heads/{repo.default_branch}")
        new = gitops.pushed_commits(repo.path, before, after, since=since)
    commits = [
        {
            "id": c.sha,
            "tree_id": c.tree,
            "distinct": True,
            "message": c.message,
            "timestamp": c.timestamp,
            "url": f"{hub.render.web}/{name}/commit/{c.sha}",
            "author": {"name": c.author[0], "email": c.author[1]},
            "committer": {"name": c.committer[0], "email": c.committer[1]},
            "added": c.added,
            "removed": c.removed,
            "modified": c.modified,
        }
        for c in new
    ]
    payload: dict[str, Any] = {
        "ref": f"refs/heads/{branch}",
        "before": before,
        "after": after,
        "created": before == gitops.ZERO_SHA,
        "deleted": deleted,
        "forced": before != gitops.ZERO_SHA
        and not deleted
        and not gitops.is_ancestor(repo.path, before, after),
        "base_ref": None,
        "compare": f"{hub.render.web}/{name}/compare/{before[:12]}...{after[:12]}",
        "commits": commits,
        "head_commit": commits[-1] if commits else None,
        "pusher": {"name": sender.login, "email": None},
    }
    hub.send("push", repo, sender, payload)
