"""`@review-loop <verb>` parsing, from a table of named cases."""

import pytest

from bot.loop.commands import BadCommand, Command, parse_command


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
                     BadCommand("Unknown command `dance`: try `@review-loop help`."),
                     id="unknown-verb"),
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
