"""The pure rules of what the bot sends GitHub: which merge method a fix PR is merged with."""

import pytest

from bot.github.records import MergeMethod, default_merge_method


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
