"""The `review-loop` check run: one per commit, created once and edited in place."""

from collections.abc import Sequence
from datetime import datetime

from bot.audit.findings import Finding
from bot.github.repo_api import RepoAPI
from bot.loop import report


def fix_pr_verdict(findings: Sequence[Finding]) -> tuple[str, str]:
    """(state, reason) of the audit of one of the bot's own fix PRs: its findings are shown,
    never filed or fixed (the depth cap that keeps the loop from recursing)."""
    if not findings:
        return report.READY, "no findings on the lines this fix changed"
    return report.AUDITED, (
        f"{len(findings)} findings on the lines this fix changed; the bot's own fix PRs are "
        "audited but not fixed (depth cap); once merged, the pull request's audit files them"
    )


async def upsert_loop_check(
    api: RepoAPI,
    head_sha: str,
    state: str,
    reason: str,
    findings: Sequence[Finding],
    *,
    title: str | None = None,
    noun: str = "open finding",
    born: datetime | None = None,
) -> None:
    """The `review-loop` check run of a commit, created once and edited in place. `findings`
    are what the run annotates and counts: a PR's open findings (waived ones are not), or
    what a fix PR's audit found; `title` replaces the state's own (a config error, say).
    `born`: when the pull request was made (`PullInfo.created_at`): on one made since the bot
    records what it begins, a head's first run is created without a lookup."""
    status, conclusion = report.check_conclusion(state)
    title = title or f"{STATE_TITLES[state]}: {count(len(findings), noun)}"
    await api.upsert_check_run(
        report.CHECK_NAME,
        head_sha,
        status=status,
        conclusion=conclusion,
        title=title,
        summary=reason or title,
        annotations=report.annotations(findings),
        actions=[
            {
                "label": "Re-audit",
                "identifier": "reaudit",
                "description": "Audit this pull request again",
            }
        ],
        born=born,
    )


STATE_TITLES = {
    report.READY: "Ready for human review",
    report.NEEDS_HUMAN: "Needs a human",
    report.FIXING: "Fixing findings",
    report.WAITING: "Waiting for fix PRs to be merged",
    report.STOPPED: "Stopped",
    report.AUDITED: "Audited",
}


def count(n: int, noun: str) -> str:
    """`n` things in words: "no open findings", "1 open finding", "3 open findings"."""
    if n == 0:
        return f"no {noun}s"
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"
