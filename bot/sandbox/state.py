"""The sandbox's in-memory world: accounts, repositories, issues, pulls, check runs, tokens."""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

AccountType = Literal["User", "Organization", "Bot"]
Permission = Literal["admin", "write", "read", "none"]
# Repository roles, weakest first. GitHub's legacy `permission` field folds triage into read
# and maintain into write; `role_name` keeps them.
PERMISSION_RANK: dict[str, int] = {
    "none": 0,
    "read": 1,
    "triage": 2,
    "write": 3,
    "maintain": 4,
    "admin": 5,
}
LEGACY_PERMISSION: dict[str, str] = {"triage": "read", "maintain": "write"}
PRIVATE_KEY_FILE = "app-private-key.pem"  # the App's key, in the sandbox's data directory

APP_PERMISSIONS: dict[str, str] = {
    "checks": "write",
    "contents": "write",
    "issues": "write",
    "metadata": "read",
    "pull_requests": "write",
}
# The events the sandbox's App subscribes to (the bot's app.yml): GitHub sends an App only
# these, and the installation events, which every App gets.
APP_EVENTS: list[str] = [
    "check_run",
    "check_suite",
    "issue_comment",
    "issues",
    "label",
    "pull_request",
    "push",
]
ALWAYS_SENT_EVENTS = frozenset({"installation", "installation_repositories"})


class Clock:
    """Wall-clock time that tests can move forward (token expiry, rate windows)."""

    def __init__(self) -> None:
        self.offset_s = 0.0

    def now(self) -> datetime:
        return datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=self.offset_s)

    def monotonic(self) -> float:
        return time.monotonic() + self.offset_s

    def advance(self, seconds: float) -> None:
        self.offset_s += seconds


@dataclass
class Account:
    id: int
    login: str
    type: AccountType
    token: str | None = None  # personal access token (users only)
    site_admin: bool = False  # the sandbox's own operator account: admin everywhere


@dataclass
class App:
    id: int
    slug: str
    name: str
    owner_id: int
    bot_id: int
    public_key_pem: bytes
    webhook_secret: str | None
    webhook_url: str | None
    created_at: datetime


@dataclass
class PendingManifest:
    """A manifest posted through the web flow, waiting for its one-time code's conversion."""

    manifest: dict[str, object]
    owner_id: int
    expires_at: datetime


@dataclass
class Installation:
    id: int
    account_id: int
    created_at: datetime


@dataclass
class Token:
    token: str
    installation_id: int
    expires_at: datetime
    repo_ids: frozenset[int] | None


@dataclass
class Label:
    id: int
    name: str
    color: str
    description: str | None


@dataclass
class PullData:
    id: int
    head_ref: str
    head_sha: str
    # Where the head branch lives: the base repository itself or a fork of it. None once
    # that fork is deleted (GitHub then sends `head.repo: null`); the label keeps its owner.
    head_repo_id: int | None
    head_owner_id: int
    base_ref: str
    draft: bool
    maintainer_can_modify: bool = True
    merged_at: datetime | None = None
    merged_by_id: int | None = None
    merge_commit_sha: str | None = None
    requested_reviewer_ids: list[int] = field(default_factory=list)


@dataclass
class Issue:
    """An issue, or the issue half of a pull request (`pull` set): they share numbers."""

    id: int
    number: int
    title: str
    body: str | None
    user_id: int
    created_at: datetime
    updated_at: datetime
    state: Literal["open", "closed"] = "open"
    state_reason: str | None = None
    closed_at: datetime | None = None
    label_names: list[str] = field(default_factory=list)
    comment_ids: list[int] = field(default_factory=list)
    pull: PullData | None = None


@dataclass
class Comment:
    id: int
    issue_number: int
    user_id: int
    body: str
    created_at: datetime
    updated_at: datetime
    via_app: bool = False


@dataclass
class Review:
    id: int
    number: int
    user_id: int
    state: str
    body: str
    commit_id: str
    submitted_at: datetime


@dataclass
class Protection:
    """A branch protection rule: the check runs that must have passed on a pull request's
    head and the approving reviews it needs before GitHub merges it into the branch."""

    required_checks: list[str] = field(default_factory=list)
    required_approvals: int = 0


@dataclass
class CheckRun:
    id: int
    suite_id: int
    name: str
    head_sha: str
    status: str
    conclusion: str | None
    started_at: datetime
    completed_at: datetime | None
    external_id: str | None
    details_url: str | None
    title: str | None = None
    summary: str | None = None
    text: str | None = None
    annotations: list[dict[str, object]] = field(default_factory=list)
    actions: list[dict[str, str]] = field(default_factory=list)


@dataclass
class Repo:
    id: int
    owner_id: int
    name: str
    path: Path
    default_branch: str
    private: bool
    description: str | None
    created_at: datetime
    pushed_at: datetime
    parent_id: int | None = None  # set on forks: the repository this one was forked from
    next_number: int = 1
    issues: dict[int, Issue] = field(default_factory=dict)
    labels: dict[str, Label] = field(default_factory=dict)  # key: lower-case name
    comments: dict[int, Comment] = field(default_factory=dict)
    reviews: list[Review] = field(default_factory=list)
    check_runs: dict[int, CheckRun] = field(default_factory=dict)
    permissions: dict[int, str] = field(default_factory=dict)  # account id -> permission
    # The merge button settings: which of "merge", "squash", "rebase" GitHub accepts.
    merge_methods: set[str] = field(default_factory=lambda: {"merge", "squash", "rebase"})
    protection: dict[str, Protection] = field(default_factory=dict)  # branch -> its rules

    def take_number(self) -> int:
        number = self.next_number
        self.next_number += 1
        return number


class Store:
    """Everything the sandbox knows. Mutated on the server's event loop; `lock` guards readers
    on other threads (the delivery log is written by the delivery worker)."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.repos_dir = data_dir / "repos"
        self.lock = threading.RLock()
        self.clock = Clock()
        self._next_id = 1000
        self.accounts: dict[int, Account] = {}
        self.repos: dict[int, Repo] = {}
        self.installations: dict[int, Installation] = {}
        self.tokens: dict[str, Token] = {}
        self.app: App | None = None
        self.manifest_codes: dict[str, PendingManifest] = {}

    def new_id(self) -> int:
        with self.lock:
            self._next_id += 1
            return self._next_id

    def now(self) -> datetime:
        return self.clock.now()

    # accounts

    def add_account(self, login: str, type_: AccountType) -> Account:
        token = None if type_ != "User" else "ghp_" + secrets.token_hex(18)
        account = Account(id=self.new_id(), login=login, type=type_, token=token)
        self.accounts[account.id] = account
        return account

    def account_by_login(self, login: str) -> Account | None:
        wanted = login.lower()
        return next((a for a in self.accounts.values() if a.login.lower() == wanted), None)

    def account_by_token(self, token: str) -> Account | None:
        return next((a for a in self.accounts.values() if a.token == token), None)

    def bot(self) -> Account:
        assert self.app is not None
        return self.accounts[self.app.bot_id]

    # repositories

    def repo_by_name(self, owner: str, name: str) -> Repo | None:
        account = self.account_by_login(owner)
        if account is None:
            return None
        wanted = name.lower().removesuffix(".git")
        return next(
            (
                r
                for r in self.repos.values()
                if r.owner_id == account.id and r.name.lower() == wanted
            ),
            None,
        )

    def full_name(self, repo: Repo) -> str:
        return f"{self.accounts[repo.owner_id].login}/{repo.name}"

    def source(self, repo: Repo) -> Repo:
        """The root of `repo`'s fork network (the repository itself when it is no fork)."""
        while repo.parent_id is not None and repo.parent_id in self.repos:
            repo = self.repos[repo.parent_id]
        return repo

    def forks_of(self, repo: Repo) -> list[Repo]:
        return [r for r in self.repos.values() if r.parent_id == repo.id]

    def permission(self, repo: Repo, account: Account) -> str:
        """A user's permission on a repository: owner and org admins are admins."""
        if account.id == repo.owner_id or account.site_admin:
            return "admin"
        granted = repo.permissions.get(account.id)
        if granted is not None:
            return granted
        return "none" if repo.private else "read"

    # installations and tokens

    def installation_for(self, owner_id: int) -> Installation | None:
        return next((i for i in self.installations.values() if i.account_id == owner_id), None)

    def issue_token(self, installation: Installation, repo_ids: frozenset[int] | None) -> Token:
        token = Token(
            token="ghs_" + secrets.token_hex(18),
            installation_id=installation.id,
            expires_at=self.now() + timedelta(hours=1),
            repo_ids=repo_ids,
        )
        self.tokens[token.token] = token
        return token
