"""GitHub's JSON shapes for sandbox objects, shared by the REST API and the webhooks.

`webhook=True` leaves out the few fields the REST API has and webhook payloads do not
(labels' `archived_*`, repositories' `subscribers_count`/`network_count`).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.sandbox.state import (
    APP_EVENTS,
    APP_PERMISSIONS,
    Account,
    Comment,
    Installation,
    Issue,
    Label,
    Repo,
    Store,
)

Json = dict[str, Any]


def iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def node_id(kind: str, id_: int) -> str:
    return kind + "_" + base64.b64encode(f"sandbox:{kind}:{id_}".encode()).decode().rstrip("=")


@dataclass(frozen=True)
class Renderer:
    store: Store
    web: str  # http://host:port
    api: str  # http://host:port/api/v3

    # people

    def user(self, account: Account) -> Json:
        api = f"{self.api}/users/{account.login}"
        return {
            "login": account.login,
            "id": account.id,
            "node_id": node_id("U", account.id),
            "avatar_url": f"{self.web}/avatars/{account.login}",
            "gravatar_id": "",
            "url": api,
            "html_url": f"{self.web}/{account.login}",
            "followers_url": f"{api}/followers",
            "following_url": f"{api}/following{{/other_user}}",
            "gists_url": f"{api}/gists{{/gist_id}}",
            "starred_url": f"{api}/starred{{/owner}}{{/repo}}",
            "subscriptions_url": f"{api}/subscriptions",
            "organizations_url": f"{api}/orgs",
            "repos_url": f"{api}/repos",
            "events_url": f"{api}/events{{/privacy}}",
            "received_events_url": f"{api}/received_events",
            "type": account.type,
            "site_admin": account.site_admin,
        }

    def user_id(self, account_id: int) -> Json:
        return self.user(self.store.accounts[account_id])

    def organization(self, account: Account) -> Json:
        api = f"{self.api}/orgs/{account.login}"
        return {
            "login": account.login,
            "id": account.id,
            "node_id": node_id("O", account.id),
            "url": api,
            "repos_url": f"{api}/repos",
            "events_url": f"{api}/events",
            "hooks_url": f"{api}/hooks",
            "issues_url": f"{api}/issues",
            "members_url": f"{api}/members{{/member}}",
            "public_members_url": f"{api}/public_members{{/member}}",
            "avatar_url": f"{self.web}/avatars/{account.login}",
            "description": None,
        }

    # the App

    def app(self) -> Json:
        app = self.store.app
        assert app is not None
        return {
            "id": app.id,
            "slug": app.slug,
            "node_id": node_id("A", app.id),
            "owner": self.user_id(app.owner_id),
            "name": app.name,
            "description": "review-loop on the local GitHub sandbox",
            "external_url": self.web,
            "html_url": f"{self.web}/apps/{app.slug}",
            "created_at": iso(app.created_at),
            "updated_at": iso(app.created_at),
            "permissions": dict(APP_PERMISSIONS),
            "events": list(APP_EVENTS),
        }

    def installation(self, installation: Installation) -> Json:
        app = self.store.app
        assert app is not None
        account = self.store.accounts[installation.account_id]
        return {
            "id": installation.id,
            "account": self.user(account),
            "repository_selection": "all",
            "access_tokens_url": f"{self.api}/app/installations/{installation.id}/access_tokens",
            "repositories_url": f"{self.api}/installation/repositories",
            "html_url": f"{self.web}/settings/installations/{installation.id}",
            "app_id": app.id,
            "app_slug": app.slug,
            "target_id": account.id,
            "target_type": "Organization" if account.type == "Organization" else "User",
            "permissions": dict(APP_PERMISSIONS),
            "events": list(APP_EVENTS),
            "created_at": iso(installation.created_at),
            "updated_at": iso(installation.created_at),
            "single_file_name": None,
            "suspended_by": None,
            "suspended_at": None,
        }

    # repositories

    def repository(self, repo: Repo, *, webhook: bool = False) -> Json:
        full = self.store.full_name(repo)
        api = f"{self.api}/repos/{full}"
        open_issues = sum(1 for i in repo.issues.values() if i.state == "open")
        forks = len(self.store.forks_of(repo))
        data: Json = {
            "id": repo.id,
            "node_id": node_id("R", repo.id),
            "name": repo.name,
            "full_name": full,
            "private": repo.private,
            "owner": self.user_id(repo.owner_id),
            "html_url": f"{self.web}/{full}",
            "description": repo.description,
            "fork": repo.parent_id is not None,
            "url": api,
            "forks_url": f"{api}/forks",
            "keys_url": f"{api}/keys{{/key_id}}",
            "collaborators_url": f"{api}/collaborators{{/collaborator}}",
            "teams_url": f"{api}/teams",
            "hooks_url": f"{api}/hooks",
            "issue_events_url": f"{api}/issues/events{{/number}}",
            "events_url": f"{api}/events",
            "assignees_url": f"{api}/assignees{{/user}}",
            "branches_url": f"{api}/branches{{/branch}}",
            "tags_url": f"{api}/tags",
            "blobs_url": f"{api}/git/blobs{{/sha}}",
            "git_tags_url": f"{api}/git/tags{{/sha}}",
            "git_refs_url": f"{api}/git/refs{{/sha}}",
            "trees_url": f"{api}/git/trees{{/sha}}",
            "statuses_url": f"{api}/statuses/{{sha}}",
            "languages_url": f"{api}/languages",
            "stargazers_url": f"{api}/stargazers",
            "contributors_url": f"{api}/contributors",
            "subscribers_url": f"{api}/subscribers",
            "subscription_url": f"{api}/subscription",
            "commits_url": f"{api}/commits{{/sha}}",
            "git_commits_url": f"{api}/git/commits{{/sha}}",
            "comments_url": f"{api}/comments{{/number}}",
            "issue_comment_url": f"{api}/issues/comments{{/number}}",
            "contents_url": f"{api}/contents/{{+path}}",
            "compare_url": f"{api}/compare/{{base}}...{{head}}",
            "merges_url": f"{api}/merges",
            "archive_url": f"{api}/{{archive_format}}{{/ref}}",
            "downloads_url": f"{api}/downloads",
            "issues_url": f"{api}/issues{{/number}}",
            "pulls_url": f"{api}/pulls{{/number}}",
            "milestones_url": f"{api}/milestones{{/number}}",
            "notifications_url": f"{api}/notifications{{?since,all,participating}}",
            "labels_url": f"{api}/labels{{/name}}",
            "releases_url": f"{api}/releases{{/id}}",
            "deployments_url": f"{api}/deployments",
            "created_at": iso(repo.created_at),
            "updated_at": iso(repo.pushed_at),
            "pushed_at": iso(repo.pushed_at),
            "git_url": f"{self.web}/{full}.git",
            "ssh_url": f"{self.web}/{full}.git",
            "clone_url": f"{self.web}/{full}.git",
            "svn_url": f"{self.web}/{full}",
            "homepage": None,
            "size": 0,
            "stargazers_count": 0,
            "watchers_count": 0,
            "language": None,
            "has_issues": True,
            "has_projects": False,
            "has_downloads": False,
            "has_wiki": False,
            "has_pages": False,
            "has_discussions": False,
            "forks_count": forks,
            "mirror_url": None,
            "archived": False,
            "disabled": False,
            "open_issues_count": open_issues,
            "license": None,
            "allow_forking": True,
            "is_template": False,
            "web_commit_signoff_required": False,
            "topics": [],
            "visibility": "private" if repo.private else "public",
            "custom_properties": {},
            "forks": forks,
            "open_issues": open_issues,
            "watchers": 0,
            "default_branch": repo.default_branch,
        }
        if not webhook:
            data["subscribers_count"] = 0
            data["network_count"] = len(self.store.forks_of(self.store.source(repo)))
        return data

    def full_repository(self, repo: Repo) -> Json:
        """`GET /repos/{owner}/{repo}`'s shape: a fork also names its `parent` and `source`."""
        data = self.repository(repo)
        data["allow_merge_commit"] = "merge" in repo.merge_methods
        data["allow_squash_merge"] = "squash" in repo.merge_methods
        data["allow_rebase_merge"] = "rebase" in repo.merge_methods
        parent = None if repo.parent_id is None else self.store.repos.get(repo.parent_id)
        if parent is not None:
            data["parent"] = self.repository(parent)
            data["source"] = self.repository(self.store.source(repo))
        return data

    # issues, labels, comments

    def label(self, label: Label, repo: Repo, *, webhook: bool = False) -> Json:
        data: Json = {
            "id": label.id,
            "node_id": node_id("LA", label.id),
            "url": f"{self.api}/repos/{self.store.full_name(repo)}/labels/{label.name}",
            "name": label.name,
            "color": label.color,
            "default": False,
            "description": label.description,
        }
        if not webhook:
            data["archived_at"] = None
            data["archived_by"] = None
        return data

    def issue_labels(self, issue: Issue, repo: Repo, *, webhook: bool = False) -> list[Json]:
        return [
            self.label(repo.labels[name.lower()], repo, webhook=webhook)
            for name in issue.label_names
        ]

    def reactions(self, url: str) -> Json:
        counts = dict.fromkeys(
            ("+1", "-1", "laugh", "confused", "heart", "hooray", "eyes", "rocket"), 0
        )
        return {"url": f"{url}/reactions", "total_count": 0, **counts}

    def author_association(self, repo: Repo, account_id: int) -> str:
        if account_id == repo.owner_id:
            return "OWNER"
        if account_id in repo.permissions:
            return "COLLABORATOR"
        return "NONE"

    def issue(self, issue: Issue, repo: Repo, *, webhook: bool = False) -> Json:
        full = self.store.full_name(repo)
        api = f"{self.api}/repos/{full}/issues/{issue.number}"
        data: Json = {
            "url": api,
            "repository_url": f"{self.api}/repos/{full}",
            "labels_url": f"{api}/labels{{/name}}",
            "comments_url": f"{api}/comments",
            "events_url": f"{api}/events",
            "html_url": f"{self.web}/{full}/{'pull' if issue.pull else 'issues'}/{issue.number}",
            "timeline_url": f"{api}/timeline",
            "id": issue.id,
            "node_id": node_id("I", issue.id),
            "number": issue.number,
            "title": issue.title,
            "user": self.user_id(issue.user_id),
            "labels": self.issue_labels(issue, repo, webhook=webhook),
            "state": issue.state,
            "state_reason": issue.state_reason,
            "locked": False,
            "assignee": None,
            "assignees": [],
            "milestone": None,
            "comments": len(issue.comment_ids),
            "created_at": iso(issue.created_at),
            "updated_at": iso(issue.updated_at),
            "closed_at": iso(issue.closed_at),
            "author_association": self.author_association(repo, issue.user_id),
            "active_lock_reason": None,
            "body": issue.body,
            "reactions": self.reactions(api),
            "performed_via_github_app": None,
        }
        if issue.pull is not None:
            pulls = f"{self.web}/{full}/pull/{issue.number}"
            data["draft"] = issue.pull.draft
            data["pull_request"] = {
                "url": f"{self.api}/repos/{full}/pulls/{issue.number}",
                "html_url": pulls,
                "diff_url": f"{pulls}.diff",
                "patch_url": f"{pulls}.patch",
                "merged_at": iso(issue.pull.merged_at),
            }
        return data

    def comment(self, comment: Comment, repo: Repo) -> Json:
        full = self.store.full_name(repo)
        url = f"{self.api}/repos/{full}/issues/comments/{comment.id}"
        html = f"{self.web}/{full}/issues/{comment.issue_number}"
        return {
            "url": url,
            "html_url": f"{html}#issuecomment-{comment.id}",
            "issue_url": f"{self.api}/repos/{full}/issues/{comment.issue_number}",
            "id": comment.id,
            "node_id": node_id("IC", comment.id),
            "user": self.user_id(comment.user_id),
            "created_at": iso(comment.created_at),
            "updated_at": iso(comment.updated_at),
            "author_association": self.author_association(repo, comment.user_id),
            "performed_via_github_app": None,
            "body": comment.body,
            "reactions": self.reactions(url),
        }
