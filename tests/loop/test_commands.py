"""`@review-loop <verb>` parsing, from a table of named cases."""

import pytest

from bot.loop.commands import BadCommand, Command, fix_one_refusal, parse_command
from bot.loop.store import TaskRow


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param("@review-loop audit", Command("audit"), id="audit"),
        pytest.param("thanks!\n@review-loop fix #12\n", Command("fix", 12), id="fix-one"),
        pytest.param("@review-loop fix", Command("fix"), id="fix-all"),
        pytest.param("@Review-Loop STATUS", Command("status"), id="case-insensitive"),
        pytest.param("@review-loop waive #3 false positive", Command("waive", 3, "false positive"),
                     id="waive-with-reason"),
        pytest.param("@review-loop retry #7", Command("retry", 7), id="retry"),
        pytest.param("no mention here", None, id="not-addressed"),
        pytest.param("as @review-loop said earlier, audit", None, id="mention-mid-line"),
        pytest.param("> quoting\nplease ask @review-loop", None, id="mention-in-prose"),
        pytest.param("@review-loop", BadCommand("Say what to do: try `@review-loop help`."),
                     id="bare-mention"),
        pytest.param("@review-loop dance",
                     BadCommand("Unknown command `dance`. Try `@review-loop help`."),
                     id="unknown-verb"),
        pytest.param("@review-loop waiv #3 dup",
                     BadCommand("Unknown command `waiv`. Did you mean `@review-loop waive`? "
                                "Try `@review-loop help`."),
                     id="misspelt-verb-did-you-mean"),
        pytest.param("@review-loop Halp",
                     BadCommand("Unknown command `halp`. Did you mean `@review-loop help`? "
                                "Try `@review-loop help`."),
                     id="misspelt-help"),
        pytest.param("@review-loop waive #3",
                     BadCommand(
                         "`waive` needs a reason: `@review-loop waive #123 false positive`."
                     ),
                     id="waive-without-reason"),
        pytest.param("@review-loop retry",
                     BadCommand("`retry` needs an issue: `@review-loop retry #123`."),
                     id="retry-without-issue"),
        pytest.param("@review-loop stop now",
                     BadCommand("`stop` takes no arguments: try `@review-loop help`."),
                     id="stop-with-arguments"),
    ],
)  # fmt: skip
def test_parse_command(body: str, expected: Command | BadCommand | None) -> None:
    """A comment commands the bot only from a line that starts with the mention."""
    assert parse_command(body) == expected


def row(status: str) -> TaskRow:
    """A task of finding #3 that is (or ended) `status`."""
    return TaskRow(
        id=1, repo="o/r", pr_number=1, issue_number=3, installation_id=1, agent="ruff-fix",
        round=1, base_ref="feature", base_sha="a" * 40, status=status, branch="b", fix_pr=None,
        attempts=0, error=None, spawn_s=None, run_s=None, batch=[], fixed=[], failed=[],
        warm=False,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("state", "agent", "tasks", "refusal"),
    [
        pytest.param("open", "ruff-fix", [], None, id="start"),
        pytest.param("open", "ruff-fix", [row("failed")], None, id="after-a-failure"),
        pytest.param(
            "open", "ruff-fix", [row("running")], "A fix of #3 is already under way.",
            id="already-running",
        ),
        pytest.param(
            "closed", "ruff-fix", [], "#3 is closed: reopen it to have it fixed.", id="closed"
        ),
        pytest.param(
            "open", None, [],
            "#3 has no `agent:<name>` label naming an agent of the server's catalog: label it, "
            "then `@review-loop fix` it again.",
            id="no-agent",
        ),
    ],
)  # fmt: skip
def test_fix_one_issue_starts_unless_there_is_a_reason_not_to(
    state: str, agent: str | None, tasks: list[TaskRow], refusal: str | None
) -> None:
    """`fix #n` starts a fix of an open, routed finding that has no fix under way."""
    assert fix_one_refusal(state, agent, tasks, 3) == refusal
