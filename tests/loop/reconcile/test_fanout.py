"""The planner's decision table: fan out only when (N - 1) * t > s."""

import pytest

from bot.loop.reconcile.fanout import Costs, plan_fanout, split


@pytest.mark.parametrize(
    ("n", "t", "s", "max_parallel", "concurrency", "mode", "width", "text"),
    [
        pytest.param(1, 30, 5, 4, 4, "auto", 1, "1 fix issue: one agent", id="single-issue"),
        pytest.param(4, 42, 18, 4, 4, "auto", 4,
                     "4 fix issues: (N-1)*t = 3*42 s = 126 s > s = 18 s -> 4 agents in parallel",
                     id="pays-off"),
        pytest.param(4, 2, 18, 4, 4, "auto", 1,
                     "4 fix issues: (N-1)*t = 3*2 s = 6 s <= s = 18 s -> one agent does the "
                     "batch inline", id="spawn-tax-too-high"),
        pytest.param(3, 9, 18, 4, 4, "auto", 1,
                     "3 fix issues: (N-1)*t = 2*9 s = 18 s <= s = 18 s -> one agent does the "
                     "batch inline", id="break-even-stays-inline"),
        pytest.param(10, 60, 5, 3, 8, "auto", 3,
                     "10 fix issues: (N-1)*t = 9*60 s = 540 s > s = 5 s -> 3 agents in "
                     "parallel (capped by max_parallel)", id="capped-by-repo"),
        pytest.param(10, 60, 5, 8, 2, "auto", 2,
                     "10 fix issues: (N-1)*t = 9*60 s = 540 s > s = 5 s -> 2 agents in "
                     "parallel (capped by worker concurrency)", id="capped-by-workers"),
        pytest.param(4, 2, 18, 4, 4, "parallel", 4,
                     "4 fix issues: (N-1)*t = 3*2 s = 6 s <= s = 18 s -> 4 agents in parallel "
                     "(forced by REVIEW_LOOP_FANOUT)", id="forced-parallel"),
        pytest.param(4, 42, 18, 4, 4, "inline", 1,
                     "4 fix issues: (N-1)*t = 3*42 s = 126 s > s = 18 s -> one agent does the "
                     "batch inline (forced by REVIEW_LOOP_FANOUT)", id="forced-inline"),
    ],
)  # fmt: skip
def test_fanout_decision(
    n: int,
    t: float,
    s: float,
    max_parallel: int,
    concurrency: int,
    mode: str,
    width: int,
    text: str,
) -> None:
    """Parallel only when (N-1)*t > s, within the caps; the arithmetic is shown."""
    decision = plan_fanout(
        "fix",
        n,
        Costs(spawn_s=s, run_s=t),
        max_parallel=max_parallel,
        concurrency=concurrency,
        mode=mode,
    )  # type: ignore[arg-type]
    assert decision.width == width
    assert decision.explain() == text


@pytest.mark.parametrize(
    ("issues", "width", "batches"),
    [
        pytest.param([1, 2, 3, 4], 4, [[1], [2], [3], [4]], id="one-each"),
        pytest.param([1, 2, 3, 4, 5], 2, [[1, 2, 3], [4, 5]], id="uneven"),
        pytest.param([1, 2, 3], 1, [[1, 2, 3]], id="inline"),
        pytest.param([7], 3, [[7]], id="fewer-issues-than-width"),
    ],
)
def test_split_into_batches(issues: list[int], width: int, batches: list[list[int]]) -> None:
    """Issues are split into `width` near-equal batches, keeping their order."""
    assert split(issues, width) == batches
