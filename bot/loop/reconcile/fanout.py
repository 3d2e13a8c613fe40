"""Fan out only when it pays: the spawn-tax rule, a pure function.

One agent already at work on a warm worktree does N issues of t seconds each in N·t. N agents
in parallel each need a worktree, a warm-up, a start and, at the end, a fix PR of their own
(the spawn cost s, paid side by side), then take t: s + t. Parallel wins only when
s + t < N·t, that is (N - 1)·t > s. Both are measured per repository and agent: t is one
issue's work (agent, verification, commit, push), s a cold spawn plus its fix PR and merge.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

Mode = Literal["auto", "parallel", "inline"]


@dataclass(frozen=True)
class Costs:
    """Measured (moving averages) or prior seconds for one agent on one repository."""

    spawn_s: float
    run_s: float
    samples: int = 0

    @property
    def measured(self) -> bool:
        return self.samples > 0


@dataclass(frozen=True)
class FanOut:
    agent: str
    n: int
    t: float
    s: float
    width: int
    forced: bool = False
    cap: str | None = None

    @property
    def parallel(self) -> bool:
        return self.width > 1

    def explain(self) -> str:
        """The decision and its arithmetic, as the summary comment shows it."""
        issues = f"{self.n} {self.agent} issue{'s' if self.n != 1 else ''}"
        if self.n <= 1:
            return f"{issues}: one agent"
        lhs = f"(N-1)*t = {self.n - 1}*{_s(self.t)} s = {_s((self.n - 1) * self.t)} s"
        rel = ">" if (self.n - 1) * self.t > self.s else "<="
        rule = f"{lhs} {rel} s = {_s(self.s)} s"
        if self.parallel:
            what = f"{self.width} agents in parallel"
            if self.cap:
                what += f" (capped by {self.cap})"
        else:
            what = "one agent does the batch inline"
        if self.forced:
            what += " (forced by REVIEW_LOOP_FANOUT)"
        return f"{issues}: {rule} -> {what}"


def plan_fanout(
    agent: str,
    n: int,
    costs: Costs,
    *,
    max_parallel: int,
    concurrency: int,
    mode: Mode = "auto",
) -> FanOut:
    """How many agents to run for `n` routed issues of one agent on one PR."""
    t, s = costs.run_s, costs.spawn_s
    if n <= 1:
        return FanOut(agent, n, t, s, width=1)
    if mode == "inline" or (mode == "auto" and (n - 1) * t <= s):
        return FanOut(agent, n, t, s, width=1, forced=mode == "inline")
    width, cap = n, None
    if max_parallel < width:
        width, cap = max_parallel, "max_parallel"
    if concurrency < width:
        width, cap = concurrency, "worker concurrency"
    return FanOut(agent, n, t, s, width=max(width, 1), forced=mode == "parallel", cap=cap)


def split(issues: Sequence[int], width: int) -> list[list[int]]:
    """`width` batches of near-equal size, in issue order (one batch = one task)."""
    width = max(1, min(width, len(issues)))
    size, extra = divmod(len(issues), width)
    out, start = [], 0
    for i in range(width):
        end = start + size + (1 if i < extra else 0)
        out.append(list(issues[start:end]))
        start = end
    return out


def moving_average(old: float | None, sample: float, alpha: float = 0.3) -> float:
    """Exponential moving average; the first sample stands alone."""
    return sample if old is None else (1 - alpha) * old + alpha * sample


def _s(seconds: float) -> str:
    """Seconds as people read them: whole from 10 up or when whole, else one decimal."""
    return f"{seconds:.0f}" if seconds >= 10 or seconds == int(seconds) else f"{seconds:.1f}"
