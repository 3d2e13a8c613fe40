"""A model finding is found again in the worktree by its code, wherever its lines moved."""

from bot.audit.findings import Finding
from bot.loop.fix.model_fix import relocate

FOUND = Finding(
    "review",
    "correctness",
    "correctness",
    "shop/cart.py",
    4,
    5,
    "[high] count",
    "def total(prices, count):\n    return sum(prices[:count])",
)


def test_the_flagged_code_is_found_where_it_moved() -> None:
    text = '"""Cart."""\n\nimport math\n\n\n' + FOUND.snippet + "\n"
    moved = relocate(FOUND, text)
    assert moved is not None
    assert (moved.start_line, moved.end_line) == (6, 7)
    assert moved.fingerprint == FOUND.fingerprint


def test_the_nearest_copy_wins_and_gone_code_is_none() -> None:
    copy = "def total(prices, count):\n    return sum(prices[:count])\n"
    text = copy + "\n" * 3 + copy + "\n" * 20 + copy
    moved = relocate(FOUND, text)
    assert moved is not None and moved.start_line == 6
    assert relocate(FOUND, "def total(prices, count):\n    if count < 0: raise\n") is None
