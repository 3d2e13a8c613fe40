"""What the loop tells people: the summary comment and the check run (pure rendering)."""

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.audit.findings import Finding
from bot.github.records import CheckConclusion, CheckStatus
from bot.loop.budget import Spend, usd
from bot.loop.store import TaskRow

CHECK_NAME = "review-loop"
MAX_ANNOTATIONS = 500  # GitHub keeps at most this many per check run we send

READY = "ready"
NEEDS_HUMAN = "needs-human"
FIXING = "fixing"
STOPPED = "stopped"
AUDITED = "audited"
WAITING = "waiting"  # `merge_fixes: manual`: fix PRs wait for a person to merge them

HELD_LISTED = 30  # held findings named in the summary; the rest are counted

_STATE_LINE = {
    READY: "✅ **Ready for human review**: no open findings, no fixes running.",
    NEEDS_HUMAN: "🛑 **Needs a human**: {reason}",
    FIXING: "🔧 **Fixing**: {reason}",
    STOPPED: "⏸️ **Stopped** by `@review-loop stop`; say `@review-loop resume` to go on.",
    AUDITED: "🔎 **Audited**: {reason}",
    WAITING: "⏳ **Waiting for a person**: {reason}",
}


@dataclass(frozen=True)
class IssueLine:
    number: int
    title: str
    state: str  # open | fixed | waived | needs-human
    agent: str | None


@dataclass(frozen=True)
class Summary:
    state: str
    reason: str
    round: int
    max_rounds: int
    head_sha: str
    issues: Sequence[IssueLine] = ()
    tasks: Sequence[TaskRow] = ()
    fanout: Sequence[str] = field(default_factory=tuple)  # the latest round's decisions
    spend: Spend | None = None  # what the PR's model calls cost, from the ledger
    held: Sequence[str] = ()  # titles of findings not filed yet (`max_open_issues` open)
    max_open_issues: int = 10


def render_summary(s: Summary) -> str:
    lines = [
        "### review-loop",
        "",
        _STATE_LINE[s.state].format(reason=s.reason),
        "",
        f"Round {s.round} of at most {s.max_rounds} · audited at `{s.head_sha[:7]}`",
    ]
    if s.issues:
        lines += ["", "| finding | state | agent |", "| --- | --- | --- |"]
        for issue in s.issues:
            agent = f"`{issue.agent}`" if issue.agent else "—"
            lines.append(f"| #{issue.number} {_cell(issue.title)} | {issue.state} | {agent} |")
    if s.held:
        lines += [
            "",
            f"{len(s.held)} more finding{'s' if len(s.held) != 1 else ''} wait to be filed "
            f"until fewer than {s.max_open_issues} of this PR's issues are open "
            "(`max_open_issues`; the most severe are filed first):",
        ]
        lines += [f"- {_cell(title)}" for title in s.held[:HELD_LISTED]]
        if len(s.held) > HELD_LISTED:
            lines.append(f"- …and {len(s.held) - HELD_LISTED} more")
    fix_prs = [t for t in s.tasks if t.fix_pr is not None]
    if fix_prs:
        lines += [
            "",
            "Fix pull requests: "
            + ", ".join(
                f"#{t.fix_pr} ({t.status}, fixes {', '.join(f'#{n}' for n in t.issues)})"
                for t in fix_prs
            ),
        ]
    waived = {issue.number for issue in s.issues if issue.state == "waived"}
    not_landed = [(n, why) for n, why in did_not_land(s.tasks).items() if n not in waived]
    if not_landed:
        lines += ["", "Fixes that did not land:"]
        lines += [
            f"- #{n} `{agent}`: {status} — {_one_line(reason)}"
            for n, (agent, status, reason) in sorted(not_landed)
        ]
    if s.spend is not None and s.spend.by_agent:
        lines += ["", *_cost_lines(s.spend)]
    if s.fanout:
        lines += ["", "<details><summary>Fan-out: spawn agents only when (N-1)*t > s</summary>", ""]
        lines += [f"- {decision}" for decision in s.fanout]
        lines += ["", "</details>"]
    lines += ["", "<sub>Commands: `@review-loop help`. This comment is updated in place.</sub>"]
    return "\n".join(lines)


def did_not_land(tasks: Sequence[TaskRow]) -> dict[int, tuple[str, str, str]]:
    """Issue -> (agent, status, reason) of its latest fix that did not land; an issue a
    later task fixed and landed is not listed. `tasks` oldest first."""
    out: dict[int, tuple[str, str, str]] = {}
    for t in sorted(tasks, key=lambda t: t.id):
        if t.status == "merged":
            for n in t.fixed or t.issues:
                if n not in t.failed:
                    out.pop(n, None)
        for n, (status, reason) in t.failure_reasons().items():
            out[n] = (t.agent, status, reason)
    return out


def render_fix_failure(agent: str, status: str, reason: str, output: str, said: str = "") -> str:
    """The comment on an issue whose fix failed or was refused: why, by which agent, and the
    end of the agent's output and (a coding-agent CLI's) its last message, collapsed."""
    lines = [
        f"**review-loop could not fix this** (agent `{agent}`, {status}): {_one_line(reason)}",
    ]
    if said.strip():
        lines += ["", collapsed("What the agent said last", said)]
    if output.strip():
        lines += ["", collapsed("The end of the agent's output", output)]
    lines += [
        "",
        "<sub>This comment is updated in place on the next failure. `@review-loop retry #n` "
        "on the pull request tries again.</sub>",
    ]
    return "\n".join(lines)


def collapsed(summary: str, text: str) -> str:
    """`text` quoted verbatim in a fence, inside a closed <details> block."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return "\n".join([
        f"<details><summary>{summary}</summary>",
        "",
        f"{fence}text",
        text.rstrip().replace("<!--", "&lt;!--"),
        fence,
        "",
        "</details>",
    ])  # fmt: skip


def _one_line(text: str) -> str:
    return " ".join(text.split()).replace("<!--", "&lt;!--")[:1000]


def _cost_lines(spend: Spend) -> list[str]:
    """Cost so far (this round, this PR) and per agent; the agents' amounts add up to the PR's."""
    per_agent = ", ".join(f"`{name}` {usd(amount)}" for name, amount in spend.by_agent.items())
    lines = [
        f"Model cost so far: {usd(spend.round_usd)} this round (round {spend.round}), "
        f"{usd(spend.pr_usd)} on this PR; per agent: {per_agent}"
    ]
    if spend.unpriced_calls:
        lines.append(
            f"({spend.unpriced_calls} calls to models without a price in the catalog are "
            "counted as tokens only: the real cost is higher)"
        )
    return lines


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")[:120]


def annotations(findings: Sequence[Finding]) -> list[dict[str, Any]]:
    """Check-run annotations for findings (GitHub takes 50 per request; the API layer batches)."""
    out: list[dict[str, Any]] = []
    for f in findings[:MAX_ANNOTATIONS]:
        out.append(
            {
                "path": f.path,
                "start_line": f.start_line,
                "end_line": max(f.end_line, f.start_line),
                "annotation_level": "warning",
                "title": f"{f.analyzer} {f.rule}"[:255],
                "message": f.message[:64000] or f.rule,
            }
        )
    return out


def check_conclusion(state: str) -> tuple[CheckStatus, CheckConclusion | None]:
    """(status, conclusion) of the check run for a loop state."""
    if state == READY:
        return "completed", "success"
    if state == NEEDS_HUMAN:
        return "completed", "action_required"
    if state == STOPPED:
        return "completed", "neutral"
    if state == AUDITED:
        return "completed", "neutral"
    return "in_progress", None
