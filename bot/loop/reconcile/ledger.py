"""The ledger of findings as issues: what to create, update, close and reopen so the issues
match the current audit.

Pure logic: the reconciler reads the issues, asks `plan_ledger` what to do, and does it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import quote

from bot.github.markers import replace_marker
from bot.github.records import cap_text
from bot.labels import WAIVED_LABEL
from bot.loop.reconcile.issue_text import IssueDraft

FIXED_COMMENT = "Fixed in {sha}"
DUPLICATE_COMMENT = "Duplicate of #{number}: review-loop tracks this finding there."
# The marker key of a duplicate the bot closed: the issue it kept (so the close is the bot's).
DUPLICATE_OF = "duplicate_of"
CAME_BACK_COMMENT = (
    "This finding came back in {sha} after it had been fixed. The loop stops here and asks "
    "a person to look (fixes that undo each other are a sign the rules disagree)."
)


@dataclass(frozen=True)
class ExistingIssue:
    """A ledger issue of this pull request as GitHub has it now (filed by the bot)."""

    number: int
    state: Literal["open", "closed"]
    state_reason: str | None
    labels: Sequence[str]
    marker: Mapping[str, Any] | None
    closed_by_bot: bool
    title: str = ""
    body: str = ""

    @property
    def fingerprint(self) -> str | None:
        fp = self.marker.get("fp") if self.marker else None
        return fp if isinstance(fp, str) and fp else None

    @property
    def waived(self) -> bool:
        """Closed by a person, or waived on a person's command: the bot leaves it alone."""
        closed_by_person = self.state == "closed" and not self.closed_by_bot
        return closed_by_person or WAIVED_LABEL in self.labels

    @property
    def fixed_by_bot(self) -> bool:
        return self.state == "closed" and self.closed_by_bot and self.state_reason != "not_planned"


@dataclass(frozen=True)
class IssueUpdate:
    number: int
    title: str
    body: str


@dataclass(frozen=True)
class IssueClose:
    number: int
    comment: str
    state_reason: Literal["completed", "not_planned"]
    fingerprint: str = ""  # of a finding closed as fixed: recorded before the close
    # The issue's new body, set in the same request as the close: a duplicate's marker names
    # the issue kept, so the close reads as the bot's, not as a person's (a waiver).
    body: str | None = None


@dataclass(frozen=True)
class IssueReopen:
    number: int
    title: str
    body: str
    comment: str


@dataclass(frozen=True)
class Oscillation:
    """A finding the bot closed as fixed that a later audit found again."""

    fingerprint: str
    number: int


@dataclass(frozen=True)
class LedgerPlan:
    """Everything to change so the issues match the current audit, and what it revealed."""

    create: tuple[IssueDraft, ...] = ()
    update: tuple[IssueUpdate, ...] = ()
    close: tuple[IssueClose, ...] = ()
    reopen: tuple[IssueReopen, ...] = ()
    oscillations: tuple[Oscillation, ...] = ()
    waived: tuple[int, ...] = ()  # findings still present whose issue a person closed or waived
    unchanged: tuple[int, ...] = ()
    issue_for: Mapping[str, int] = field(default_factory=dict)  # fingerprint -> issue number
    held: tuple[IssueDraft, ...] = ()  # not filed yet: the PR has `max_open` issues open

    @property
    def has_changes(self) -> bool:
        return bool(self.create or self.update or self.close or self.reopen)

    @property
    def open(self) -> frozenset[int]:
        """The existing issues open once the plan is done: kept open or reopened, not
        waived (issues it files are new, and are open too)."""
        waived = set(self.waived)
        return frozenset(n for n in self.issue_for.values() if n not in waived)


def plan_ledger(
    drafts: Sequence[IssueDraft],
    existing: Sequence[ExistingIssue],
    head_sha: str,
    max_open: int | None = None,
) -> LedgerPlan:
    """What to create, update, close and reopen so the ledger matches the audit at `head_sha`.

    `existing` is the bot's issues for this pull request (selected by marker). Issues a
    person closed or waived are never touched and their findings never filed again. New
    issues are filed only while fewer than `max_open` of the PR's issues are open, the most
    severe first; the others are `held` until fixes close some (a round's worth at a time).
    """
    by_fp: dict[str, list[ExistingIssue]] = {}
    for issue in sorted(existing, key=lambda i: i.number):
        if issue.fingerprint is not None:
            by_fp.setdefault(issue.fingerprint, []).append(issue)

    create: list[IssueDraft] = []
    update: list[IssueUpdate] = []
    close: list[IssueClose] = []
    reopen: list[IssueReopen] = []
    oscillations: list[Oscillation] = []
    waived: list[int] = []
    unchanged: list[int] = []
    issue_for: dict[str, int] = {}

    seen: set[str] = set()
    for draft in drafts:
        fp = draft.fingerprint
        if fp in seen:
            continue
        seen.add(fp)
        related = by_fp.get(fp, [])
        opened = [issue for issue in related if issue.state == "open"]
        if opened:
            keeper, duplicates = opened[0], opened[1:]
            issue_for[fp] = keeper.number
            if keeper.waived:
                waived.append(keeper.number)
            elif _changed(keeper, draft, head_sha):
                update.append(IssueUpdate(keeper.number, draft.title, draft.body))
            else:
                unchanged.append(keeper.number)
            close.extend(
                IssueClose(
                    dup.number,
                    DUPLICATE_COMMENT.format(number=keeper.number),
                    "not_planned",
                    body=replace_marker(
                        dup.body, {**(dup.marker or {}), DUPLICATE_OF: keeper.number}
                    ),
                )
                for dup in duplicates
                if not dup.waived
            )
            continue
        by_person = [issue for issue in related if issue.waived]
        if by_person:
            issue_for[fp] = by_person[-1].number
            waived.append(by_person[-1].number)
            continue
        fixed = [issue for issue in related if issue.fixed_by_bot]
        if fixed:
            came_back = fixed[-1]
            issue_for[fp] = came_back.number
            oscillations.append(Oscillation(fp, came_back.number))
            comment = CAME_BACK_COMMENT.format(sha=head_sha)
            reopen.append(IssueReopen(came_back.number, draft.title, draft.body, comment))
            continue
        create.append(draft)

    for fp, issues in by_fp.items():
        if fp in seen:
            continue
        close.extend(
            IssueClose(issue.number, FIXED_COMMENT.format(sha=head_sha), "completed", fp)
            for issue in issues
            if issue.state == "open" and not issue.waived
        )

    held: list[IssueDraft] = []
    if max_open is not None:
        # Kept open and reopened: what stays open whatever is filed now.
        open_now = sum(1 for n in issue_for.values() if n not in waived)
        room = max(0, max_open - open_now)
        ranked = sorted(create, key=_severity_rank)  # stable: audit order among equals
        create, held = ranked[:room], ranked[room:]

    return LedgerPlan(
        create=tuple(create),
        update=tuple(update),
        close=tuple(sorted(close, key=lambda c: c.number)),
        reopen=tuple(reopen),
        oscillations=tuple(oscillations),
        waived=tuple(waived),
        unchanged=tuple(unchanged),
        issue_for=issue_for,
        held=tuple(held),
    )


# Model reviewers' severities and SARIF levels; an analyzer that gives none ranks as medium.
_RANKS = {"critical": 0, "error": 1, "high": 1, "medium": 2, "warning": 2, "low": 3, "note": 3}


def _severity_rank(draft: IssueDraft) -> int:
    return min(_RANKS.get(f.severity or "medium", 2) for f in draft.group.findings)


def _changed(issue: ExistingIssue, draft: IssueDraft, head_sha: str) -> bool:
    """Whether title or body differ beyond the commit they were rendered at and the lines
    they point to.

    The marker and the headline name the commit the issue was written at, and every link is
    a permalink at that commit (`/blob/<sha>/<path>#L<n>`): after a new commit, or code added
    above the finding, the issue is still true as it stands. Neither is reason to edit it
    (and spend a rate-limited write); what it says of the finding changing is.
    """
    if issue.title != draft.title:
        return True
    old_body = issue.body
    old_sha = issue.marker.get("sha") if issue.marker else None
    if isinstance(old_sha, str) and old_sha:
        old_body = old_body.replace(old_sha, head_sha).replace(old_sha[:12], head_sha[:12])
    # GitHub holds the body as the bot capped it (bot/github/repo_api.py): compare like that.
    new_body = cap_text(draft.body)
    paths = draft.group.paths
    return _without_lines(old_body.strip(), paths, head_sha) != _without_lines(
        new_body.strip(), paths, head_sha
    )


def _without_lines(body: str, paths: Sequence[str], sha: str) -> str:
    """`body` with the line numbers of its locations in `paths` left out: the text
    `` `path:12` `` or `` `path:12-14` `` and the anchor `#L12` or `#L12-L14` of a link to
    the file at `sha` (as `issue_text` renders them)."""
    for path in paths:
        text = f"`{path}:"
        body = re.sub(re.escape(text) + r"\d+(?:-\d+)?`", _literal(text + "…`"), body)
        link = f"/blob/{sha}/{quote(path)}#L"
        body = re.sub(re.escape(link) + r"\d+(?:-L\d+)?\)", _literal(link + "…)"), body)
    return body


def _literal(text: str) -> str:
    """`text` as a replacement for `re.sub`, taken as it is."""
    return text.replace("\\", "\\\\")
