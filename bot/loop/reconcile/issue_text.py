"""The text of a finding's issue: title, body with its marker and links, labels."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from urllib.parse import quote

from bot.audit.findings import Finding
from bot.audit.groups import FindingGroup
from bot.github.markers import render_marker
from bot.labels import FINDING_LABEL, NEEDS_HUMAN_LABEL, agent_label

MAX_TITLE = 200
MAX_LISTED = 30  # findings quoted in one grouped issue; the rest are counted
_LANGUAGES = {".py": "python", ".pyi": "python", ".toml": "toml", ".yml": "yaml", ".yaml": "yaml"}


def render_issue(
    group: FindingGroup,
    pr_number: int,
    pr_url: str,
    head_sha: str,
    agent: str | None,
    why_no_agent: str | None = None,
) -> tuple[str, str, list[str]]:
    """Title, body and labels of the issue for a group; `agent` None means needs a human,
    and `why_no_agent` says why no agent will fix it."""
    first = group.first
    if group.grouped:
        title = f"{first.rule} in {_files(group)}: {len(group.findings)} findings"
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
            where = "this file" if len(group.paths) == 1 else "these files"
            parts.append(f"…and {len(group.findings) - len(listed)} more in {where}.")
        if _same_message(group):
            why = f"**Why:** {_safe(first.message)}"
        else:  # the findings say different things; the rule's own explanation covers them all
            why = f"**Why:** {_safe(first.explanation or _rule_of_group(group))}"
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
    elif why_no_agent is not None:
        parts.append(
            f"**Fix:** no fix pull request will come: {_safe(why_no_agent)}. "
            "Add an `agent:<name>` label to hand it to an agent."
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
    why_no_agent: str | None = None  # told on the issue when it is filed for a person

    @property
    def fingerprint(self) -> str:
        return self.group.fingerprint


def draft_issue(
    group: FindingGroup,
    pr_number: int,
    pr_url: str,
    head_sha: str,
    agent: str | None,
    why: str | None = None,
) -> IssueDraft:
    """`render_issue`, kept together with its group for `plan_ledger`."""
    title, body, labels = render_issue(group, pr_number, pr_url, head_sha, agent, why)
    if agent is not None:
        why = None
    elif why is None:
        why = "no agent is routed to it"
    return IssueDraft(group, title, body, tuple(labels), why)


def _headline(
    group: FindingGroup, pr_number: int, pr_url: str, repo_url: str | None, head_sha: str
) -> str:
    first = group.first
    if len(group.paths) > 1:
        where = ", ".join(
            _location(replace(first, path=path), repo_url, head_sha, whole_file=True)
            for path in group.paths[:MAX_LISTED]
        )
    else:
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


def _files(group: FindingGroup) -> str:
    paths = group.paths
    return paths[0] if len(paths) == 1 else f"{len(paths)} files"


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else ""


def _rule_of_group(group: FindingGroup) -> str:
    return (
        f"each of these findings breaks the repository's rule {group.first.rule} "
        f"({group.first.analyzer}); their messages above say how"
    )


def _same_message(group: FindingGroup) -> bool:
    return len({finding.message for finding in group.findings}) == 1


def _safe(text: str) -> str:
    """Analyzer text shown in the issue: no hidden HTML comments can ride along."""
    return text.replace("<!--", "&lt;!--")
