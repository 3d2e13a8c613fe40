"""What a pull request's model runs have cost, and whether its budget lets another start; pure.

The ledger is `review_loop_model_calls` (one row per model call). A budget is checked before a
model run starts, against the run's expected cost (the moving average of that agent's recorded
runs), and after each run, against what was spent. Deterministic agents and the built-in
analyzers cost nothing and are never held back.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field

from bot.repo_config import Budget

RAISE_HINT = (
    "raise `budget.{key}` in `.github/review-loop.yml` on the default branch, "
    "then say `@review-loop resume`"
)


@dataclass(frozen=True)
class Spend:
    """What the PR's model calls cost so far, from the ledger (USD; unpriced calls count 0)."""

    pr_usd: float = 0.0
    round_usd: float = 0.0  # the calls of the loop's current round
    round: int = 0
    by_agent: Mapping[str, float] = field(default_factory=dict)
    unpriced_calls: int = 0  # calls of models the catalog gives no price: their cost is unknown


def usd(amount: float) -> str:
    """An amount for people: cents, or four decimals below one cent."""
    return f"${amount:.2f}" if amount >= 0.01 or amount == 0 else f"${amount:.4f}"


def spent_out(budget: Budget | None, spend: Spend) -> str | None:
    """After a run: the budget the PR has used up (reason for a person), or None."""
    return over_budget(budget, spend, 0.0, 0.0, strict=False)


def over_budget(
    budget: Budget | None,
    spend: Spend,
    expected_pr: float,
    expected_round: float,
    *,
    strict: bool = True,
) -> str | None:
    """Before a run: the budget that spending `expected_*` more would pass (the PR's, or the
    round's whose spend so far is `spend.round_usd` when the run joins the current round),
    said for a person with what was spent and how to raise it; None: the runs may start.

    `strict=False` asks only whether a cap is reached already (spent >= cap)."""
    if budget is None:
        return None
    checks = (
        ("per_pr_usd", budget.per_pr_usd, spend.pr_usd, expected_pr, "this pull request"),
        ("per_round_usd", budget.per_round_usd, spend.round_usd, expected_round, "one round"),
    )
    for key, cap, spent, expected, what in checks:
        if cap is None:
            continue
        reached = spent >= cap if not strict else spent + expected > cap or spent >= cap
        if reached:
            more = f", and the next runs are expected to cost {usd(expected)}" if expected else ""
            return (
                f"budget `{key}` reached: {usd(spent)} spent on {what} of "
                f"{usd(cap)} allowed{more}; no new model runs start. To go on, "
                + RAISE_HINT.format(key=key)
            )
    return None
