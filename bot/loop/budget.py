"""What model runs have cost, and whether a budget lets another start; pure.

Two kinds of budget: the repository's (`budget: {per_pr_usd, per_round_usd}` in its config)
and the operator's per installation (`REVIEW_LOOP_INSTALLATION_DAILY_USD` / `_MONTHLY_USD`,
per UTC day and month).

The ledger is `review_loop_model_calls` (one row per model call). A budget is checked before a
model run starts, against the run's expected cost (the moving average of that agent's recorded
runs), and after each run, against what was spent. Deterministic agents and the built-in
analyzers cost nothing and are never held back.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field

from bot.agents.catalog import Price
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


@dataclass(frozen=True)
class RunCost:
    """What one fix task's model calls cost (all its runs), from the ledger."""

    usd: float = 0.0
    tokens_in: int = 0
    tokens_out: int = 0
    calls: int = 0
    unpriced_calls: int = 0

    def line(self) -> str:
        """The cost for the fix PR and the issue: '' when the run made no model call."""
        if not self.calls:
            return ""
        text = (
            f"Model cost of this fix: {usd(self.usd)} ({self.calls} calls, "
            f"{self.tokens_in} tokens in, {self.tokens_out} out)"
        )
        if self.unpriced_calls:
            text += f"; {self.unpriced_calls} calls to models without a price are not counted"
        return text + "."


def usd(amount: float) -> str:
    """An amount for people: in cents, or below a dollar to four decimals where cents would
    round it (so that the small figures of a reason add up as said)."""
    cents = amount >= 1 or round(amount, 2) == round(amount, 4)
    return f"${amount:.2f}" if cents else f"${amount:.4f}"


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


# A run of an agent with no recorded runs yet is expected to cost its model's price for this
# many tokens (a brief with one finding's file, and the edits back); unpriced: 0.
TYPICAL_TOKENS_IN = 4000
TYPICAL_TOKENS_OUT = 1000


def first_run_estimate(price: Price | None) -> float:
    """What the first run of an agent priced `price` is expected to cost (before the ledger
    has any of its runs to average)."""
    if price is None:
        return 0.0
    return (
        TYPICAL_TOKENS_IN * price.input_per_mtok + TYPICAL_TOKENS_OUT * price.output_per_mtok
    ) / 1_000_000


@dataclass(frozen=True)
class Caps:
    """The operator's caps on one installation's model runs (USD; None: no cap)."""

    daily_usd: float | None = None
    monthly_usd: float | None = None

    @property
    def any(self) -> bool:
        return self.daily_usd is not None or self.monthly_usd is not None


@dataclass(frozen=True)
class InstallationSpend:
    """What an installation's model calls cost this UTC day and month (from the ledger), and
    what the runs admitted but not finished yet are expected to cost (their reservations)."""

    day_usd: float = 0.0
    month_usd: float = 0.0
    reserved_usd: float = 0.0


CAP_SETTINGS = {
    "daily": ("REVIEW_LOOP_INSTALLATION_DAILY_USD", "today (UTC)", "the day ends (00:00 UTC)"),
    "monthly": ("REVIEW_LOOP_INSTALLATION_MONTHLY_USD", "this month (UTC)", "the month ends"),
}


def over_cap(
    caps: Caps, spend: InstallationSpend, expected: float, *, strict: bool = True
) -> str | None:
    """Before a run: the installation cap that admitting a run expected to cost `expected`
    would pass (what was spent, what runs under way have reserved, plus `expected`), said for
    a person with how to raise it; None: it may start. `strict=False` asks only whether the
    ledger has reached a cap already (spent >= cap)."""
    checks = (
        ("daily", caps.daily_usd, spend.day_usd),
        ("monthly", caps.monthly_usd, spend.month_usd),
    )
    for period, cap, spent in checks:
        if cap is None:
            continue
        committed = spent + spend.reserved_usd
        reached = spent >= cap if not strict else spent >= cap or committed + expected > cap
        if not reached:
            continue
        setting, when, resets = CAP_SETTINGS[period]
        under_way = (
            f" (and {usd(spend.reserved_usd)} reserved by runs under way)"
            if spend.reserved_usd
            else ""
        )
        more = f"; the next run is expected to cost {usd(expected)}" if strict and expected else ""
        return (
            f"installation budget `{setting}` reached: {usd(spent)} spent {when} by this "
            f"installation's model runs{under_way} of {usd(cap)} allowed{more}; no new model "
            f"runs start. To go on, the operator raises `{setting}` (a server setting) or "
            f"{resets}, then say `@review-loop resume`"
        )
    return None
