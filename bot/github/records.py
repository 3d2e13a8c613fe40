"""Plain records of the GitHub objects the bot reads (the bot never sees githubkit's models),
and the pure rules for what it sends."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from githubkit_schemas.latest.models import (
    FullRepository,
    Issue,
    IssueComment,
    PullRequest,
    PullRequestSimple,
    ReposOwnerRepoIssuesIssueNumberPatchResponse200,
)

IssueState = Literal["open", "closed"]
ListState = Literal["open", "closed", "all"]
StateReason = Literal["completed", "not_planned", "duplicate", "reopened"]
CheckStatus = Literal["queued", "in_progress", "completed"]
CheckConclusion = Literal[
    "action_required", "cancelled", "failure", "neutral", "success", "skipped", "stale", "timed_out"
]
MergeMethod = Literal["merge", "squash", "rebase"]
MERGE_METHODS: tuple[MergeMethod, ...] = ("merge", "squash", "rebase")  # the default's order
# Why GitHub refused a merge with 405 (it answers 405 for all of these, and 409 only for a
# head that is not the `sha` asked for).
MergeRefusal = Literal[
    "conflict", "base_modified", "method_not_allowed", "checks", "reviews", "rules", "other"
]

WRITE_PERMISSIONS = frozenset({"admin", "maintain", "write"})
MAX_BODY = 65_536  # issue, comment and PR bodies: GitHub answers 422 past this
MAX_CHECK_TEXT = 65_535  # a check run's output.summary and output.text
MAX_ANNOTATIONS_PER_REQUEST = 50
MAX_ACTIONS = 3
# GitHub's limits on a check run's action buttons: field -> max length.
ACTION_LIMITS = {"label": 20, "identifier": 20, "description": 40}


def cap_text(text: str, limit: int = MAX_BODY) -> str:
    """`text` when it fits in `limit` characters, else its start and a visible note of how
    much was cut (GitHub refuses longer bodies instead of cutting them)."""
    if len(text) <= limit:
        return text
    omitted = len(text) - limit
    while True:  # the note's own length depends on the number in it: settles in two steps
        note = f"\n\n… truncated, {omitted} characters omitted"
        keep = limit - len(note)
        if len(text) - keep == omitted:
            return text[:keep] + note
        omitted = len(text) - keep


def can_write(permission: str) -> bool:
    """Whether a collaborator permission (from `RepoAPI.permission`) allows pushing."""
    return permission in WRITE_PERMISSIONS


@dataclass(frozen=True)
class RepoInfo:
    full_name: str
    default_branch: str
    clone_url: str
    private: bool
    owner_login: str
    owner_type: str  # "User" | "Organization"
    merge_methods: tuple[MergeMethod, ...] = MERGE_METHODS  # what the repository allows


@dataclass(frozen=True)
class PullInfo:
    number: int
    state: str
    merged: bool
    draft: bool
    title: str
    body: str
    head_ref: str
    head_sha: str
    head_repo: str | None  # full name; None when the fork was deleted
    base_ref: str
    base_sha: str
    labels: tuple[str, ...]
    user_login: str
    html_url: str
    merge_commit_sha: str | None = None
    created_at: datetime | None = None  # when GitHub made it (`bot.github.intents`)


@dataclass(frozen=True)
class IssueInfo:
    number: int
    state: str
    state_reason: str | None
    title: str
    body: str
    labels: tuple[str, ...]
    user_login: str
    is_pull: bool
    html_url: str
    closed_by_login: str | None


@dataclass(frozen=True)
class CommentInfo:
    id: int
    body: str
    user_login: str


@dataclass(frozen=True)
class MergeResult:
    merged: bool
    sha: str | None
    conflict: bool  # 405: GitHub cannot merge it as it stands
    message: str
    head_moved: bool = False  # 409: the head is not the sha we asked to merge (yet)
    closed: bool = False  # 405 because the pull request was closed
    refusal: MergeRefusal | None = None  # why GitHub answered 405 (`conflict` sets `conflict`)


# GitHub's 405 messages on `PUT /pulls/{n}/merge`, by what they mean (lower case, in order).
_REFUSALS: tuple[tuple[str, MergeRefusal], ...] = (
    ("base branch was modified", "base_modified"),
    ("are not allowed on this repository", "method_not_allowed"),  # "Merge commits are not..."
    ("required status check", "checks"),  # 'Required status check "test" is expected.'
    ("status checks are expected", "checks"),  # "2 of 3 required status checks are expected."
    ("approving review", "reviews"),  # "At least 1 approving review is required by ..."
    ("review is required", "reviews"),  # "Changes requested" / "Code owner review is required"
    ("rule violation", "rules"),  # "Repository rule violations found"
    ("not mergeable", "conflict"),  # "Pull Request is not mergeable"
)


def merge_refusal(message: str) -> MergeRefusal:
    """What a 405 from GitHub's merge endpoint means, from its message."""
    lowered = message.lower()
    return next((kind for text, kind in _REFUSALS if text in lowered), "other")


def default_merge_method(wanted: MergeMethod | None, allowed: Sequence[MergeMethod]) -> MergeMethod:
    """The method to merge with: the configured one (GitHub refuses it, saying so, when the
    repository does not allow it), else the first the repository allows of merge, squash,
    rebase."""
    if wanted is not None:
        return wanted
    return next((m for m in MERGE_METHODS if m in allowed), "merge")


def repo_info(repo: FullRepository) -> RepoInfo:
    return RepoInfo(
        full_name=repo.full_name,
        default_branch=repo.default_branch,
        clone_url=repo.clone_url,
        private=repo.private,
        owner_login=repo.owner.login,
        owner_type=repo.owner.type,
        # GitHub leaves these out for tokens that cannot see the settings: assume allowed.
        merge_methods=tuple(
            method
            for method, allowed in zip(
                MERGE_METHODS,
                (repo.allow_merge_commit, repo.allow_squash_merge, repo.allow_rebase_merge),
                strict=True,
            )
            if allowed is not False
        ),
    )


def pull_info(pull: PullRequest | PullRequestSimple, raw: Any = None) -> PullInfo:
    """`raw` is the JSON object: `merge_commit_sha` is missing from githubkit's models."""
    merge_sha = raw.get("merge_commit_sha") if isinstance(raw, dict) else None
    return PullInfo(
        number=pull.number,
        state=pull.state,
        merged=pull.merged_at is not None,
        draft=bool(pull.draft),
        title=pull.title,
        body=pull.body or "",
        head_ref=pull.head.ref,
        head_sha=pull.head.sha,
        head_repo=pull.head.repo.full_name if pull.head.repo else None,
        base_ref=pull.base.ref,
        base_sha=pull.base.sha,
        labels=tuple(label.name for label in pull.labels),
        user_login=pull.user.login if pull.user else "",
        html_url=pull.html_url,
        merge_commit_sha=merge_sha if isinstance(merge_sha, str) else None,
        created_at=pull.created_at,
    )


def issue_info(issue: Issue | ReposOwnerRepoIssuesIssueNumberPatchResponse200) -> IssueInfo:
    labels = tuple(
        name
        for name in (label if isinstance(label, str) else label.name for label in issue.labels)
        if name
    )
    return IssueInfo(
        number=issue.number,
        state=issue.state,
        state_reason=issue.state_reason or None,
        title=issue.title,
        body=issue.body or "",
        labels=labels,
        user_login=issue.user.login if issue.user else "",
        is_pull=bool(issue.pull_request),
        html_url=issue.html_url,
        closed_by_login=issue.closed_by.login if issue.closed_by else None,
    )


def comment_info(comment: IssueComment) -> CommentInfo:
    return CommentInfo(
        id=comment.id,
        body=comment.body or "",
        user_login=comment.user.login if comment.user else "",
    )


def check_actions(actions: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The action buttons as GitHub accepts them, or ValueError saying which limit is broken."""
    if len(actions) > MAX_ACTIONS:
        raise ValueError(f"a check run takes at most {MAX_ACTIONS} actions, got {len(actions)}")
    for action in actions:
        for field, limit in ACTION_LIMITS.items():
            value = action.get(field)
            if not isinstance(value, str) or not 0 < len(value) <= limit:
                raise ValueError(f"check run action {field} must be 1-{limit} chars: {value!r}")
    return [dict(action) for action in actions]


def check_run_bodies(
    name: str,
    *,
    status: CheckStatus,
    conclusion: CheckConclusion | None,
    title: str,
    summary: str,
    text: str | None,
    annotations: Sequence[Mapping[str, Any]],
    actions: Sequence[Mapping[str, Any]],
    external_id: str | None,
) -> list[dict[str, Any]]:
    """The body that creates or updates a check run, then one update per further 50
    annotations (GitHub takes at most 50 per request and appends them)."""
    if status == "completed" and conclusion is None:
        raise ValueError("a completed check run needs a conclusion")
    batches = [
        [dict(a) for a in annotations[i : i + MAX_ANNOTATIONS_PER_REQUEST]]
        for i in range(0, len(annotations), MAX_ANNOTATIONS_PER_REQUEST)
    ] or [[]]
    summary = cap_text(summary, MAX_CHECK_TEXT)
    output: dict[str, Any] = {"title": title, "summary": summary, "annotations": batches[0]}
    if text is not None:
        output["text"] = cap_text(text, MAX_CHECK_TEXT)
    first: dict[str, Any] = {
        "name": name,
        "status": status,
        "output": output,
        "actions": check_actions(actions),
    }
    if conclusion is not None:
        first["conclusion"] = conclusion
    if external_id is not None:
        first["external_id"] = external_id
    more = [
        {"output": {"title": title, "summary": summary, "annotations": batch}}
        for batch in batches[1:]
    ]
    return [first, *more]
