"""What the loop tells people: the summary comment and a failed fix's comment."""

from collections.abc import Sequence
from typing import Any

from bot.loop import report
from bot.loop.store import TaskRow, failures_text

HEAD = "c" * 40


def task(id: int, issue: int, status: str, error: str | None = None, **fields: Any) -> TaskRow:
    values: dict[str, Any] = {
        "id": id, "repo": "octo/app", "pr_number": 12, "issue_number": issue,
        "installation_id": 1, "agent": "ruff-fix", "round": 1, "base_ref": "feature",
        "base_sha": "b" * 40, "status": status, "branch": f"review-loop/pr-12/{issue}",
        "fix_pr": None, "attempts": 1, "error": error, "spawn_s": None, "run_s": None,
        "batch": [], "fixed": [], "failed": [], "warm": False,
    }  # fmt: skip
    return TaskRow(**(values | fields))


def summary(tasks: list[TaskRow], issues: Sequence[report.IssueLine] = ()) -> str:
    return report.render_summary(
        report.Summary(
            state=report.NEEDS_HUMAN,
            reason="no agent could fix #3",
            round=2,
            max_rounds=3,
            head_sha=HEAD,
            issues=issues,
            tasks=tasks,
            fanout=["ruff-fix: N=2, (N-1)*t = 10 s > s = 5 s -> 2 agents"],
        )
    )


def test_fixes_that_did_not_land_name_each_issue_once_with_its_latest_reason() -> None:
    """A batch's failures are told under each issue's own number (not the batch's first),
    a retry's newer reason replaces the older one, and a fix that landed later drops out."""
    batch_error = failures_text([(4, "refused", "verification failed: F401 is still there")])
    tasks = [
        task(1, 3, "failed", "agent ruff-fix changed nothing"),
        task(2, 3, "merged", batch_error, batch=[3, 4, 5], fixed=[3, 5], failed=[4]),
        task(3, 6, "failed", "agent ruff-fix changed nothing"),
        task(4, 6, "refused", "the repository's tests fail with this change"),
        task(5, 7, "failed", "agent claude failed: exit code 1", agent="claude"),
    ]
    text = summary(tasks)
    landed = text.split("Fixes that did not land:\n", 1)[1].split("\n\n", 1)[0]
    assert landed.splitlines() == [
        "- #4 `ruff-fix`: refused — verification failed: F401 is still there",
        "- #6 `ruff-fix`: refused — the repository's tests fail with this change",
        "- #7 `claude`: failed — agent claude failed: exit code 1",
    ]


def test_waived_issues_are_not_listed_as_fixes_that_did_not_land() -> None:
    """A person waived the finding: its failed fix is no longer news."""
    tasks = [task(1, 3, "failed", "agent ruff-fix changed nothing")]
    waived = [report.IssueLine(3, "F401 in a.py", "waived", "ruff-fix")]
    assert "Fixes that did not land" in summary(tasks)
    assert "Fixes that did not land" not in summary(tasks, waived)


def test_the_fan_out_arithmetic_is_collapsed() -> None:
    """The planner's numbers are there for whoever opens them, not in everyone's way."""
    text = summary([])
    assert "<details><summary>Fan-out: spawn agents only when (N-1)*t > s</summary>" in text
    assert text.index("<details>") < text.index("- ruff-fix: N=2") < text.index("</details>")


def test_a_failed_fix_comment_gives_reason_agent_and_the_agents_output_collapsed() -> None:
    """Why, by which agent, and the end of its output in a collapsed block that backticks in
    the output cannot break."""
    body = report.render_fix_failure(
        "claude", "failed", "agent claude failed:\nexit code 1", "tried ``` things\nno luck"
    )
    assert body.startswith(
        "**review-loop could not fix this** (agent `claude`, failed): agent claude failed: "
        "exit code 1"
    )
    assert "<details><summary>The end of the agent's output</summary>" in body
    assert "````text\ntried ``` things\nno luck\n````" in body
    assert "<details>" not in report.render_fix_failure("ruff-fix", "refused", "why", "  ")
    said = report.render_fix_failure("claude", "failed", "401", "", said="Failed to authenticate.")
    assert "<details><summary>What the agent said last</summary>" in said
    assert "Failed to authenticate." in said


def test_findings_waiting_to_be_filed_are_named_and_counted() -> None:
    held = [f"E501 in a.py:{n}: line too long" for n in range(33)]
    text = report.render_summary(
        report.Summary(
            state=report.FIXING,
            reason="2 fixes running",
            round=1,
            max_rounds=5,
            head_sha=HEAD,
            held=held,
            max_open_issues=10,
        )
    )
    assert "33 more findings wait to be filed until fewer than 10 of this PR's issues" in text
    assert "- E501 in a.py:29: line too long" in text and "a.py:30:" not in text
    assert "- …and 3 more" in text
