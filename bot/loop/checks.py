"""The `review-loop` check run: one per commit, created once and edited in place."""

from collections.abc import Sequence

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
    api: RepoAPI, head_sha: str, state: str, reason: str, findings: Sequence[Finding]
) -> None:
    """The `review-loop` check run of a commit, created once and edited in place."""
    status, conclusion = report.check_conclusion(state)
    title = {
        report.READY: "Ready for human review",
        report.NEEDS_HUMAN: "Needs a human",
        report.FIXING: "Fixing findings",
        report.WAITING: "Waiting for fix PRs to be merged",
        report.STOPPED: "Stopped",
        report.AUDITED: "Audited",
    }[state]
    await api.upsert_check_run(
        report.CHECK_NAME,
        head_sha,
        status=status,
        conclusion=conclusion,
        title=f"{title}: {len(findings)} findings",
        summary=reason or title,
        annotations=report.annotations(findings),
        actions=[
            {
                "label": "Re-audit",
                "identifier": "reaudit",
                "description": "Audit this pull request again",
            }
        ],
    )
