"""The pure rules of what the bot sends GitHub: which merge method a fix PR is merged with,
and text cut to GitHub's size limits."""

import pytest

from bot.github.records import MAX_BODY, MergeMethod, cap_text, default_merge_method


@pytest.mark.parametrize(
    ("wanted", "allowed", "method"),
    [
        pytest.param(None, ("merge", "squash", "rebase"), "merge", id="default-merge"),
        pytest.param(None, ("squash",), "squash", id="squash-only"),
        pytest.param(None, ("squash", "rebase"), "squash", id="no-merge-commits"),
        pytest.param(None, ("rebase",), "rebase", id="rebase-only"),
        pytest.param("rebase", ("merge", "squash", "rebase"), "rebase", id="configured"),
        pytest.param("merge", ("squash",), "merge", id="configured-but-refused-by-github"),
    ],
)
def test_the_merge_method_is_the_configured_one_else_the_first_allowed(
    wanted: MergeMethod | None, allowed: tuple[MergeMethod, ...], method: MergeMethod
) -> None:
    """`merge_method` wins (GitHub then says why it refuses it); otherwise the first of merge,
    squash, rebase that the repository allows."""
    assert default_merge_method(wanted, allowed) == method


@pytest.mark.parametrize(
    ("length", "limit"),
    [
        pytest.param(MAX_BODY + 1, MAX_BODY, id="one-over"),
        pytest.param(MAX_BODY * 3, MAX_BODY, id="far-over"),
        pytest.param(150, 100, id="small-limit"),
        pytest.param(1_000_000, 99_999, id="the-count-changes-the-notes-length"),
    ],
)
def test_text_over_a_limit_is_cut_to_it_with_a_note_of_what_was_left_out(
    length: int, limit: int
) -> None:
    """The result fits exactly and says how many characters it left out, truthfully."""
    text = "a" * length

    capped = cap_text(text, limit)

    kept, _, note = capped.partition("\n\n… truncated, ")
    omitted = int(note.removesuffix(" characters omitted"))
    assert len(capped) == limit
    assert omitted == length - len(kept)


def test_text_within_the_limit_is_left_alone() -> None:
    assert cap_text("a" * MAX_BODY) == "a" * MAX_BODY
