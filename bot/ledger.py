"""The ledger of findings as issues: hidden markers, grouping, issue text, and what to change.

Pure logic: the reconciler reads the issues, asks `plan_ledger` what to do, and does it.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import quote

from bot.audit.findings import Finding
from bot.router import agent_label

__all__ = [
    "FINDING_LABEL",
    "NEEDS_HUMAN_LABEL",
    "WAIVED_LABEL",
    "ExistingIssue",
    "FindingGroup",
    "IssueClose",
    "IssueDraft",
    "IssueReopen",
    "IssueUpdate",
    "LedgerPlan",
    "Oscillation",
    "draft_issue",
    "group_findings",
    "parse_marker",
    "plan_ledger",
    "render_issue",
    "render_marker",
]

FINDING_LABEL = "review-loop:finding"
NEEDS_HUMAN_LABEL = "review-loop:needs-human"
WAIVED_LABEL = "review-loop:waived"

FIXED_COMMENT = "Fixed in {sha}"
DUPLICATE_COMMENT = "Duplicate of #{number}: review-loop tracks this finding there."
CAME_BACK_COMMENT = (
    "This finding came back in {sha} after it had been fixed. The loop stops here and asks "
    "a person to look (fixes that undo each other are a sign the rules disagree)."
)
MAX_TITLE = 200
MAX_LISTED = 30  # findings quoted in one grouped issue; the rest are counted

_MARKER_START = re.compile(r"<!--\s*review-loop(?=\s|\{)")
_LANGUAGES = {".py": "python", ".pyi": "python", ".toml": "toml", ".yml": "yaml", ".yaml": "yaml"}


def render_marker(data: Mapping[str, Any]) -> str:
    """A hidden HTML comment carrying `data` as JSON; `<`, `>`, `&` are escaped inside it."""
    payload = json.dumps(dict(data), ensure_ascii=True)
    payload = payload.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return f"<!-- review-loop {payload} -->"


def parse_marker(body: str | None) -> dict[str, Any] | None:
    """The data of the first well-formed marker in `body`, or None.

    Text and other HTML comments around it are ignored, and so are broken markers;
    the bot writes its marker first, so a copy pasted further down cannot take over.
    """
    if not body:
        return None
    for start in _MARKER_START.finditer(body):
        end = body.find("-->", start.end())
        if end == -1:
            return None
        try:
            data = json.loads(body[start.end() : end])
        except ValueError:
            continue
        if isinstance(data, dict):
            return data
    return None


@dataclass(frozen=True)
class FindingGroup:
    """What one issue is about: one finding, or same-rule findings in one file."""

    findings: tuple[Finding, ...]

    def __post_init__(self) -> None:
        if not self.findings:
            raise ValueError("a finding group needs at least one finding")

    @property
    def first(self) -> Finding:
        return self.findings[0]

    @property
    def grouped(self) -> bool:
        return len(self.findings) > 1

    @property
    def fingerprint(self) -> str:
        """A lone finding's own fingerprint; for a group, one over analyzer, rule and path."""
        if not self.grouped:
            return self.first.fingerprint
        key = json.dumps(["group", self.first.analyzer, self.first.rule, self.first.path])
        return hashlib.sha256(key.encode()).hexdigest()


def group_findings(findings: Iterable[Finding], threshold: int) -> list[FindingGroup]:
    """One group per finding, except that more than `threshold` same-rule findings in one
    file share a group. Ordered by path and line."""
    buckets: dict[tuple[str, str, str], list[Finding]] = {}
    for finding in sorted(findings, key=lambda f: (f.path, f.start_line, f.end_line, f.rule)):
        buckets.setdefault((finding.analyzer, finding.rule, finding.path), []).append(finding)
    groups: list[FindingGroup] = []
    for bucket in buckets.values():
        if len(bucket) > max(threshold, 1):
            groups.append(FindingGroup(tuple(bucket)))
        else:
            groups.extend(FindingGroup((finding,)) for finding in bucket)
    return sorted(groups, key=lambda g: (g.first.path, g.first.start_line, g.first.rule))


def render_issue(
    group: FindingGroup, pr_number: int, pr_url: str, head_sha: str, agent: str | None
) -> tuple[str, str, list[str]]:
    """Title, body and labels of the issue for a group; `agent` None means needs a human."""
    first = group.first
    if group.grouped:
        title = f"{first.rule} in {first.path}: {len(group.findings)} findings"
    else:
        title = f"{first.rule} in {first.path}: {_first_line(first.message)}"
    if len(title) > MAX_TITLE:
        title = title[: MAX_TITLE - 1] + "…"
    repo_url = pr_url.split("/pull/", 1)[0] if "/pull/" in pr_url else None
    marker = render_marker({"fp": group.fingerprint, "pr": pr_number, "sha": head_sha})
    parts = [marker, _headline(group, pr_number, pr_url, repo_url, head_sha)]
    if group.grouped:
        listed = group.findings[:MAX_LISTED]
        for finding in listed:
            link = _location(finding, repo_url, head_sha)
            parts.append(f"- {link}: {_safe(_first_line(finding.message))}\n\n{_fenced(finding)}")
        if len(group.findings) > len(listed):
            parts.append(f"…and {len(group.findings) - len(listed)} more in this file.")
        why = f"**Why:** {_safe(first.message)}" if _same_message(group) else "**Why:**"
    else:
        parts.append(_fenced(first))
        why = f"**Why:** {_safe(first.message)}"
    if first.help_uri:
        why += f" ([{first.rule} documentation]({first.help_uri}))"
    parts.append(why)
    if agent is not None:
        parts.append(
            f"**Fix:** agent `{agent}` will propose a fix as its own pull request "
            f"into the branch of #{pr_number}. Relabel this issue to pick another agent."
        )
    else:
        parts.append(
            "**Fix:** no agent is configured for this finding; a person is needed. "
            "Add an `agent:<name>` label to hand it to an agent."
        )
    parts.append(
        "<sub>Filed by review-loop. Closing this issue waives the finding for this pull "
        "request: it will not be filed again.</sub>"
    )
    labels = [FINDING_LABEL, agent_label(agent) if agent is not None else NEEDS_HUMAN_LABEL]
    return title, "\n\n".join(parts) + "\n", labels


@dataclass(frozen=True)
class IssueDraft:
    """An issue as the current audit would file it."""

    group: FindingGroup
    title: str
    body: str
    labels: tuple[str, ...]

    @property
    def fingerprint(self) -> str:
        return self.group.fingerprint


def draft_issue(
    group: FindingGroup, pr_number: int, pr_url: str, head_sha: str, agent: str | None
) -> IssueDraft:
    """`render_issue`, kept together with its group for `plan_ledger`."""
    title, body, labels = render_issue(group, pr_number, pr_url, head_sha, agent)
    return IssueDraft(group, title, body, tuple(labels))


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

    @property
    def has_changes(self) -> bool:
        return bool(self.create or self.update or self.close or self.reopen)


def plan_ledger(
    drafts: Sequence[IssueDraft], existing: Sequence[ExistingIssue], head_sha: str
) -> LedgerPlan:
    """What to create, update, close and reopen so the ledger matches the audit at `head_sha`.

    `existing` is the bot's issues for this pull request (selected by marker). Issues a
    person closed or waived are never touched and their findings never filed again.
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
                    dup.number, DUPLICATE_COMMENT.format(number=keeper.number), "not_planned"
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
            IssueClose(issue.number, FIXED_COMMENT.format(sha=head_sha), "completed")
            for issue in issues
            if issue.state == "open" and not issue.waived
        )

    return LedgerPlan(
        create=tuple(create),
        update=tuple(update),
        close=tuple(sorted(close, key=lambda c: c.number)),
        reopen=tuple(reopen),
        oscillations=tuple(oscillations),
        waived=tuple(waived),
        unchanged=tuple(unchanged),
        issue_for=issue_for,
    )


def _changed(issue: ExistingIssue, draft: IssueDraft, head_sha: str) -> bool:
    """Whether title or body differ beyond the commit they were rendered at.

    Links and the marker name the head commit; a new commit alone, with the finding
    unchanged, is no reason to edit the issue (and spend a rate-limited write).
    """
    if issue.title != draft.title:
        return True
    old_body = issue.body
    old_sha = issue.marker.get("sha") if issue.marker else None
    if isinstance(old_sha, str) and old_sha:
        old_body = old_body.replace(old_sha, head_sha).replace(old_sha[:12], head_sha[:12])
    return old_body.strip() != draft.body.strip()


def _headline(
    group: FindingGroup, pr_number: int, pr_url: str, repo_url: str | None, head_sha: str
) -> str:
    first = group.first
    where = _location(first, repo_url, head_sha, whole_file=group.grouped)
    count = f"{len(group.findings)} findings of " if group.grouped else ""
    return (
        f"{count}**`{first.rule}`** ({first.analyzer}, {first.category}) in {where}, "
        f"found in [#{pr_number}]({pr_url}) at `{head_sha[:12]}`."
    )


def _location(
    finding: Finding, repo_url: str | None, head_sha: str, *, whole_file: bool = False
) -> str:
    if whole_file:
        text, anchor = finding.path, ""
    elif finding.end_line > finding.start_line:
        text = f"{finding.path}:{finding.start_line}-{finding.end_line}"
        anchor = f"#L{finding.start_line}-L{finding.end_line}"
    else:
        text, anchor = f"{finding.path}:{finding.start_line}", f"#L{finding.start_line}"
    if repo_url is None:
        return f"`{text}`"
    return f"[`{text}`]({repo_url}/blob/{head_sha}/{quote(finding.path)}{anchor})"


def _fenced(finding: Finding) -> str:
    longest = max((len(run) for run in re.findall(r"`+", finding.snippet)), default=0)
    fence = "`" * max(3, longest + 1)
    suffix = finding.path[finding.path.rfind(".") :] if "." in finding.path else ""
    language = _LANGUAGES.get(suffix, "")
    return f"{fence}{language}\n{finding.snippet}\n{fence}"


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else ""


def _same_message(group: FindingGroup) -> bool:
    return len({finding.message for finding in group.findings}) == 1


def _safe(text: str) -> str:
    """Analyzer text shown in the issue: no hidden HTML comments can ride along."""
    return text.replace("<!--", "&lt;!--")
