"""Server settings: a misspelt `REVIEW_LOOP_*` variable is reported, not ignored in silence."""

import pytest

from bot.config import unknown_settings


@pytest.mark.parametrize(
    ("environ", "warnings"),
    [
        pytest.param(
            {"REVIEW_LOOP_WORKER_CONCURENCY": "99"},
            [
                "REVIEW_LOOP_WORKER_CONCURENCY is not a review-loop setting and is ignored; "
                "did you mean REVIEW_LOOP_WORKER_CONCURRENCY?"
            ],
            id="misspelt",
        ),
        pytest.param(
            {"review_loop_prewarn": "false"},
            [
                "review_loop_prewarn is not a review-loop setting and is ignored; did you mean "
                "REVIEW_LOOP_PREWARM?"
            ],
            id="lower-case-misspelt",
        ),
        pytest.param(
            {"REVIEW_LOOP_COLOUR": "blue"},
            ["REVIEW_LOOP_COLOUR is not a review-loop setting and is ignored"],
            id="nothing-close",
        ),
        pytest.param(
            {
                "REVIEW_LOOP_WORKER_CONCURRENCY": "8",
                "review_loop_port": "9000",
                "REVIEW_LOOP_TEST_DATABASE_URL": "postgresql://x",
                "REVIEW_LOOP_KEY_GID": "1000",
                "PATH": "/bin",
                "GITHUB_TOKEN": "x",
            },
            [],
            id="known-names-and-other-variables",
        ),
    ],
)
def test_unknown_review_loop_variables_are_warned_about(
    environ: dict[str, str], warnings: list[str]
) -> None:
    """Every `REVIEW_LOOP_*` name no setting reads gets a warning, with the closest setting."""
    assert unknown_settings(environ) == warnings
