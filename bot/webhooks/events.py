"""Lenient models of just the payload fields the bot reads.

githubkit's generated webhook models are strict and reject many real payloads (older ones lack
fields now marked required). A correctly signed delivery is never refused because of a model:
these models ignore what they do not know and default what may be missing.
"""

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class User(Lenient):
    login: str
    id: int | None = None
    type: str = "User"


class Label(Lenient):
    name: str


class Repository(Lenient):
    id: int | None = None
    full_name: str
    name: str | None = None
    owner: User | None = None
    default_branch: str = "main"
    private: bool = False
    fork: bool = False
    clone_url: str | None = None


class Installation(Lenient):
    id: int


class PullRef(Lenient):
    ref: str
    sha: str
    repo: Repository | None = None


class PullRequest(Lenient):
    number: int
    state: str = "open"
    title: str = ""
    body: str | None = None
    draft: bool = False
    merged: bool | None = None
    user: User | None = None
    labels: list[Label] = Field(default_factory=list)
    head: PullRef
    base: PullRef
    html_url: str | None = None


class Issue(Lenient):
    number: int
    state: str = "open"
    title: str = ""
    body: str | None = None
    user: User | None = None
    labels: list[Label] = Field(default_factory=list)
    pull_request: dict[str, Any] | None = None
    html_url: str | None = None

    @property
    def is_pull_request(self) -> bool:
        return self.pull_request is not None


class Comment(Lenient):
    id: int
    body: str = ""
    user: User | None = None


class CheckRunApp(Lenient):
    slug: str | None = None


class CheckRun(Lenient):
    id: int
    name: str = ""
    head_sha: str = ""
    external_id: str | None = None
    app: CheckRunApp | None = None


class RequestedAction(Lenient):
    identifier: str


class PushedCommit(Lenient):
    added: list[str] = []
    removed: list[str] = []
    modified: list[str] = []


class CheckSuite(Lenient):
    id: int
    head_sha: str = ""
    app: CheckRunApp | None = None
    pull_requests: list[dict[str, Any]] = []


class Envelope(Lenient):
    """The common top of every webhook payload, plus the objects handlers read."""

    action: str | None = None
    sender: User | None = None
    repository: Repository | None = None
    installation: Installation | None = None
    pull_request: PullRequest | None = None
    issue: Issue | None = None
    comment: Comment | None = None
    label: Label | None = None
    check_run: CheckRun | None = None
    requested_action: RequestedAction | None = None
    check_suite: CheckSuite | None = None
    before: str | None = None
    after: str | None = None
    # push
    ref: str | None = None
    forced: bool = False
    commits: list[PushedCommit] = []
