"""Every rule of the PR loop, as pure functions: facts in, a Decision out.

The reconciler reads (GitHub, the database, the audit, the ledger), asks `decide`, and then
performs the Decision. Nothing here does I/O. The rules run in the order below and the first
that applies decides. `before_audit` and `after_audit` are the first rules on their own, so the
reconciler reads no more than the next rule needs: no audit of a draft, no ledger after an
audit that could not run.
"""

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

from bot.audit.findings import Finding
from bot.labels import LOOP_LABEL, fix_branch
from bot.loop import report
from bot.loop.budget import Caps, InstallationSpend, Spend, over_budget, over_cap
from bot.loop.checks import fix_pr_verdict
from bot.loop.reconcile.fanout import Costs, FanOut, Mode, plan_fanout, split
from bot.loop.store import ACTIVE_TASK_STATES, HELD, PR_CLOSED_REASON, TaskRow
from bot.repo_config import RepoConfig

MAX_FAILED_TASKS = 2  # per issue, before it is handed to a human
CONFIG_ERROR_TITLE = "Configuration error in .github/review-loop.yml"
AUDIT_ERROR_TITLE = "The audit could not run"

# How a decision is told: on the PR's row only (the loop does not run on this PR), on the
# check run only (one of the bot's own fix PRs), or to everyone (summary comment, check run,
# the PR's labels and reviewers).
Tell = Literal["row", "check", "summary"]


# -- what the rules look at ---------------------------------------------------------------------


@dataclass(frozen=True)
class Pull:
    """The pull request as GitHub has it now."""

    number: int
    head_sha: str
    head_ref: str = ""
    open: bool = True
    draft: bool = False
    fork: bool = False  # its head lives in another repository (or in a deleted fork)
    own_fix_pr: bool = False  # one of the bot's fix PRs into another PR's branch
    labels: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Loop:
    """The loop's own record of the PR: its round and what people told it."""

    round: int = 0
    stopped: bool = False
    force_audit: bool = False  # audit even where the loop is off, drafts too


@dataclass(frozen=True)
class Facts:
    """What the rules before the audit look at."""

    pull: Pull
    loop: Loop = Loop()
    config: RepoConfig = field(default_factory=RepoConfig)
    config_error: str | None = None  # why `.github/review-loop.yml` could not be read
    spend: Spend = field(
        default_factory=Spend
    )  # what the PR's model calls cost so far (round: the loop's round)
    # The operator's caps on the installation (per UTC day and month), and what it has spent.
    caps: Caps = field(default_factory=Caps)
    installation: InstallationSpend = field(default_factory=InstallationSpend)


@dataclass(frozen=True)
class Audit:
    """The audit of the PR's head: its findings, or why it could not run.

    `incomplete` names the auditors (model reviewers) that failed, with why: the others'
    findings count, but an audit with a gap never makes the PR ready.
    """

    findings: Sequence[Finding] = ()
    error: str | None = None
    incomplete: Mapping[str, str] = field(default_factory=dict)

    def gap(self) -> str:
        """The failed auditors, said for the summary and the check run ('' when none)."""
        if not self.incomplete:
            return ""
        named = "; ".join(f"`{name}`: {why}" for name, why in sorted(self.incomplete.items()))
        return f"the audit is incomplete, auditor(s) that did not finish: {named}"


@dataclass(frozen=True)
class Issues:
    """The PR's finding issues, as the ledger left them after this audit."""

    open: Mapping[str, int] = field(default_factory=dict)  # fingerprint -> issue, found and open
    agents: Mapping[str, str | None] = field(default_factory=dict)  # fingerprint -> routed agent
    why_no_agent: Mapping[str, str] = field(default_factory=dict)  # fingerprint -> why none
    came_back: Sequence[int] = ()  # issues whose finding returned after it had been fixed
    needs_human: frozenset[int] = frozenset()  # issues labelled needs-human already


@dataclass(frozen=True)
class Task:
    """One fix task of the PR, as the database has it."""

    status: str
    issues: tuple[int, ...]  # the first names the task's row (with its base_sha and round)
    failed: tuple[int, ...] = ()  # the issues it counts as failed
    fix_pr: int | None = None
    round: int = 0
    base_sha: str = ""
    blocked: str | None = None  # a pushed fix PR GitHub would not merge: its message

    @classmethod
    def of(cls, row: TaskRow) -> "Task":
        return cls(
            status=row.status,
            issues=tuple(row.issues),
            failed=tuple(row.failed_issues),
            fix_pr=row.fix_pr,
            round=row.round,
            base_sha=row.base_sha,
            blocked=row.error if row.status == "pushed" else None,
        )


@dataclass(frozen=True)
class Planner:
    """What the fan-out planner weighs: costs measured per agent, else the priors."""

    prior: Costs
    concurrency: int  # fix tasks the workers run at once
    mode: Mode = "auto"
    measured: Mapping[str, Costs] = field(default_factory=dict)
    # Agents that call models (they cost money), and what each is expected to cost per issue
    # (a batch costs that for each of its issues): the moving average of its recorded runs,
    # or its price for a typical run before it has any.
    paid: frozenset[str] = frozenset()
    expected_usd: Mapping[str, float] = field(default_factory=dict)

    def costs(self, agent: str) -> Costs:
        return self.measured.get(agent, self.prior)


# -- what the rules say -------------------------------------------------------------------------


@dataclass(frozen=True)
class NewTask:
    """A fix task to create: one agent on a batch of issues, from the PR's head."""

    agent: str
    issues: tuple[int, ...]
    branch: str
    base_ref: str
    base_sha: str


@dataclass(frozen=True)
class Decision:
    state: str
    reason: str
    round: int
    tell: Tell = "summary"
    needs_human: Mapping[int, str] = field(default_factory=dict)  # issue to label -> why
    plans: tuple[FanOut, ...] = ()  # the new round's fan-out per agent, to record
    tasks: tuple[NewTask, ...] = ()  # the new round's tasks that do not exist yet
    check_title: str | None = None  # the check run's title when not the state's own


# -- the rules ----------------------------------------------------------------------------------


def caught_up(
    read: Sequence[TaskRow], now: Sequence[TaskRow], open_issues: Collection[int]
) -> list[TaskRow]:
    """The PR's fix tasks as read before its head (`read`), each that has merged since
    taken as it is `now` when the audited head shows its fixes: none of the issues it fixed
    is among `open_issues`. Its merge is in that head (or the head fixed them anyway), so
    the reconcile decides as the one its end queued will, which then finds nothing to
    change. Any other change waits for that reconcile: a task that merged after the head was
    read leaves its findings in the audit, and counting it merged would fix them again."""
    later = {t.id: t for t in now}
    out = []
    for task in read:
        new = later.get(task.id, task)
        shown = not set(fixed_issues(new)) & set(open_issues)
        out.append(new if new.status == "merged" and task.status != "merged" and shown else task)
    return out


def fixed_issues(task: TaskRow) -> list[int]:
    """The issues a merged task fixed: those it names, or its one issue."""
    return list(task.fixed) or [task.issue_number]


def before_audit(facts: Facts) -> Decision | None:
    """The rules that settle a PR without auditing it; None: audit it."""
    pull, loop, config = facts.pull, facts.loop, facts.config
    if not pull.open:
        return Decision(report.AUDITED, PR_CLOSED_REASON, loop.round, tell="row")
    if facts.config_error is not None:
        # Told on the PR, not only logged: only a person can mend the file.
        reason = f"`.github/review-loop.yml`: {facts.config_error}"
        return Decision(report.NEEDS_HUMAN, reason, loop.round, check_title=CONFIG_ERROR_TITLE)
    # A repository opts out in its config; one PR opts back in with the label or a command.
    if not (config.enabled or LOOP_LABEL in pull.labels or loop.force_audit):
        reason = "the loop is not enabled on this repository"
        return Decision(report.AUDITED, reason, loop.round, tell="row")
    if pull.draft and not config.drafts and not loop.force_audit:
        return Decision(report.AUDITED, "draft pull request: skipped", loop.round, tell="row")
    if loop.stopped:
        return Decision(report.STOPPED, "", loop.round)
    if pull.own_fix_pr and config.max_depth == 0:
        reason = "fix PRs are not audited (max_depth: 0)"
        return Decision(report.AUDITED, reason, loop.round, tell="row")
    return None


def opted_in_by_command(facts: Facts) -> bool:
    """`@review-loop audit` (or Re-audit) on a PR the config leaves out and no label opts in:
    the loop starts, so the PR gets the `review-loop` label, which keeps it in for the next
    reconciles (they carry no command) and shows people why it runs."""
    pull = facts.pull
    return (
        facts.loop.force_audit
        and not facts.config.enabled
        and LOOP_LABEL not in pull.labels
        and not pull.own_fix_pr
    )


def after_audit(facts: Facts, audit: Audit) -> Decision | None:
    """The rules the audit settles before any issue is filed; None: file and fix."""
    round_ = facts.loop.round
    if audit.error is not None:
        reason = f"the audit could not run: {audit.error}"
        return Decision(report.NEEDS_HUMAN, reason, round_, check_title=AUDIT_ERROR_TITLE)
    if facts.pull.own_fix_pr:
        # The fleet's own work is audited too, but one level deep only: no issues, no fixes.
        state, reason = fix_pr_verdict(audit.findings)
        return Decision(state, reason, round_, tell="check")
    return None


def decide(
    facts: Facts, audit: Audit, issues: Issues, tasks: Sequence[Task], planner: Planner
) -> Decision:
    """Every rule of the loop, in order: the first that applies decides. An incomplete audit
    is told with every decision, and turns "ready" into "needs a human"."""
    decision = _decide(facts, audit, issues, tasks, planner)
    gap = audit.gap()
    if not gap or decision.tell != "summary":
        return decision
    if decision.state == report.READY:
        reason = f"no open findings, but {gap}; re-audit once the auditor works again"
        return replace(decision, state=report.NEEDS_HUMAN, reason=reason)
    return replace(decision, reason=f"{decision.reason}; {gap}" if decision.reason else gap)


def _decide(
    facts: Facts, audit: Audit, issues: Issues, tasks: Sequence[Task], planner: Planner
) -> Decision:
    early = before_audit(facts) or after_audit(facts, audit)
    if early is not None:
        return early
    config, round_ = facts.config, facts.loop.round
    active = [t for t in tasks if t.status in ACTIVE_TASK_STATES]
    if issues.came_back:
        # Fixes that undo each other are a sign the rules disagree: looping on would not end.
        names = ", ".join(f"#{n}" for n in issues.came_back)
        reason = f"finding {names} came back after it had been fixed"
        return Decision(report.NEEDS_HUMAN, reason, round_)
    if not issues.open and not active:
        return Decision(report.READY, "no open findings", round_)
    if active:
        return _in_flight(active, config, round_)
    if facts.pull.fork:
        # Fix branches would have to live in the base repository and be merged into the
        # fork's branch, which the App cannot push to: fork PRs are audit only.
        reason = (
            f"{len(issues.open)} open findings on a pull request from a fork; review-loop "
            "audits forks but does not fix them"
        )
        return Decision(report.NEEDS_HUMAN, reason, round_)
    stuck, fixable = _triage(issues, tasks)
    to_label = {n: why for n, why in stuck.items() if n not in issues.needs_human}
    if not fixable:
        listed = ", ".join(f"#{n} ({why})" for n, why in sorted(stuck.items()))
        reason = f"no agent could fix {listed}"
        return Decision(report.NEEDS_HUMAN, reason, round_, needs_human=to_label)
    if round_ >= config.max_rounds:
        reason = (
            f"{len(issues.open)} findings still open after {round_} rounds "
            f"(max_rounds: {config.max_rounds})"
        )
        return Decision(report.NEEDS_HUMAN, reason, round_, needs_human=to_label)
    return _new_round(facts, fixable, tasks, planner, to_label)


def _in_flight(active: Sequence[Task], config: RepoConfig, round_: int) -> Decision:
    """Fixes are under way: wait for them (for a person, when every one waits to be merged:
    `merge_fixes: manual`, or GitHub refused to merge it, e.g. for a required review)."""
    waiting = [
        t
        for t in active
        if t.status == "pushed" and t.fix_pr and (config.merge_fixes == "manual" or t.blocked)
    ]
    if waiting and len(waiting) == len(active):
        if config.merge_fixes == "manual":
            listed = ", ".join(f"#{t.fix_pr}" for t in sorted(waiting, key=_fix_pr))
            reason = f"fix PRs {listed} wait for a person to merge them (merge_fixes: manual)"
        else:
            reason = "; ".join(f"{t.blocked}" for t in sorted(waiting, key=_fix_pr))
            reason += " (a person merges it once GitHub allows)"
        return Decision(report.WAITING, reason, round_)
    return Decision(report.FIXING, _running(len(active)), round_)


def _running(n: int) -> str:
    """The reason of a round whose `n` fixes are under way, the same from the reconcile
    that queues them to the last one before they end: a reconcile between (another event,
    a retry) finds the summary and the check run as they are and edits neither."""
    return f"{n} fixes running"


def _fix_pr(task: Task) -> int:
    return task.fix_pr or 0


def _triage(issues: Issues, tasks: Sequence[Task]) -> tuple[dict[int, str], list[tuple[int, str]]]:
    """The open issues no agent will be given again (with why), and the (issue, agent) to fix."""
    failures: dict[int, int] = {}
    conflicts: set[int] = set()
    rejected: set[int] = set()
    for t in tasks:
        if t.status == "conflict":
            # A conflict survived a rebase and a fresh run on the new head: a person's call.
            conflicts.update(t.issues)
        if t.status == "rejected":  # a person closed the fix PR: not proposed again
            rejected.update(t.issues)
        for number in set(t.failed):
            failures[number] = failures.get(number, 0) + 1
    stuck: dict[int, str] = {}
    fixable: list[tuple[int, str]] = []
    for fp, number in issues.open.items():
        agent = issues.agents.get(fp)
        if agent is None:
            stuck[number] = issues.why_no_agent.get(fp, "no agent is routed to it")
        elif number in conflicts:
            stuck[number] = "its fix conflicts with the branch"
        elif number in rejected:
            stuck[number] = "a person closed its fix PR"
        elif failures.get(number, 0) >= MAX_FAILED_TASKS:
            stuck[number] = "failed twice"
        else:
            fixable.append((number, agent))
    return stuck, fixable


def _new_round(
    facts: Facts,
    fixable: Sequence[tuple[int, str]],
    tasks: Sequence[Task],
    planner: Planner,
    to_label: Mapping[int, str],
) -> Decision:
    """The next round: per agent, the planner says how many tasks share its issues."""
    pull, round_ = facts.pull, facts.loop.round + 1
    by_agent: dict[str, list[int]] = {}
    for number, agent in fixable:
        by_agent.setdefault(agent, []).append(number)
    # A task row is unique per (first issue, base commit, round): those that exist stay as
    # they are, so a retried reconcile queues nothing twice; one the budget held back before
    # it started is queued again.
    existing = {(t.issues[0], t.base_sha, t.round) for t in tasks if t.status != HELD}
    plans: list[FanOut] = []
    new: list[NewTask] = []
    for agent, numbers in sorted(by_agent.items()):
        plan = plan_fanout(
            agent,
            len(numbers),
            planner.costs(agent),
            max_parallel=facts.config.max_parallel,
            concurrency=planner.concurrency,
            mode=planner.mode,
        )
        plans.append(plan)
        for batch in split(sorted(numbers), plan.width):
            if (batch[0], pull.head_sha, round_) not in existing:
                branch = fix_branch(pull.number, batch[0])
                new.append(NewTask(agent, tuple(batch), branch, pull.head_ref, pull.head_sha))
    new, held = _within_budget(facts, planner, new)
    if held is not None:
        # No model run starts; the free ones (deterministic agents) still do. A round that
        # starts nothing is not counted: after `resume` it starts as this one would have.
        queued = f"; {len(new)} fixes that fit (or cost nothing) queued" if new else ""
        if not new:
            round_, plans = facts.loop.round, []
        return Decision(
            report.NEEDS_HUMAN,
            held + queued,
            round_,
            needs_human=to_label,
            plans=tuple(plans),
            tasks=tuple(new),
        )
    if new:
        state, reason = report.FIXING, _running(len(new))
    else:  # this round's tasks exist already and ended: nothing will move
        state, reason = report.NEEDS_HUMAN, f"round {round_}'s fixes all ended unfixed"
    return Decision(
        state, reason, round_, needs_human=to_label, plans=tuple(plans), tasks=tuple(new)
    )


def _within_budget(
    facts: Facts, planner: Planner, new: Sequence[NewTask]
) -> tuple[list[NewTask], str | None]:
    """The new tasks the budget lets start (in order, each at its agent's expected cost per
    issue times its issues), and
    why the others are held (None: none is). Agents that cost nothing always start."""
    budget, spend = facts.config.budget, facts.spend
    if budget is None and not facts.caps.any:
        return list(new), None
    # The new round has spent nothing yet; the PR has spent `spend.pr_usd`.
    fresh = Spend(pr_usd=spend.pr_usd, round=facts.loop.round + 1)
    start: list[NewTask] = []
    expected = 0.0
    held: str | None = None
    for task in new:
        if task.agent not in planner.paid:
            start.append(task)
            continue
        cost = planner.expected_usd.get(task.agent, 0.0) * len(task.issues)
        why = over_budget(budget, fresh, expected + cost, expected + cost)
        if why is None and facts.caps.any:
            why = over_cap(facts.caps, facts.installation, expected + cost)
        if why is None and held is None:
            start.append(task)
            expected += cost
        else:
            held = held or why
    return start, held
