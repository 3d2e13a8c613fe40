"""The loop's rules as a table: facts about a PR in, the whole Decision out."""

from dataclasses import dataclass, field, replace

import pytest

from bot.labels import LOOP_LABEL
from bot.loop.budget import Caps, InstallationSpend, Spend
from bot.loop.reconcile.decide import (
    Audit,
    Decision,
    Facts,
    Issues,
    Loop,
    NewTask,
    Planner,
    Pull,
    Task,
    caught_up,
    decide,
)
from bot.loop.reconcile.fanout import Costs, FanOut
from bot.loop.store import TaskRow
from bot.repo_config import Budget, RepoConfig

HEAD = "h" * 40
OLD = "o" * 40  # an earlier head of the PR
PULL = Pull(number=7, head_sha=HEAD, head_ref="feature")
PRIORS = Costs(spawn_s=5.0, run_s=10.0)  # (N-1)*t > s from N = 2 on: fan out
PLANNER = Planner(prior=PRIORS, concurrency=4)
# Spawning costs far more than one issue's work: one agent does a batch inline.
DEAR_SPAWN = Planner(prior=PRIORS, concurrency=4, measured={"fix": Costs(60.0, 2.0, samples=3)})


REVIEW_BLOCKED = (
    "GitHub refused to merge fix PR #12 (merge): At least 1 approving review is required by "
    "reviewers with write access."
)


def found(*numbers: int, agent: str | None = "fix", **fields: object) -> Issues:
    """Open findings, one issue each, routed to `agent`."""
    return Issues(
        open={f"fp{n}": n for n in numbers},
        agents={f"fp{n}": agent for n in numbers},
        **fields,
    )


def task(status: str, *issues: int, round: int = 1, **fields: object) -> Task:
    """A task of an earlier head; one that ended badly failed all its issues."""
    failed = issues if status in ("failed", "refused", "conflict", "rejected") else ()
    values: dict[str, object] = {"failed": failed, "round": round, "base_sha": OLD, **fields}
    return Task(status, issues, **values)


def new_task(*issues: int, agent: str = "fix") -> NewTask:
    return NewTask(agent, issues, f"review-loop/pr-7/{issues[0]}", "feature", HEAD)


@dataclass(frozen=True)
class Case:
    expected: Decision
    pull: Pull = PULL
    loop: Loop = field(default_factory=Loop)
    config: RepoConfig = field(default_factory=RepoConfig)
    config_error: str | None = None
    audit: Audit = field(default_factory=Audit)
    issues: Issues = field(default_factory=Issues)
    tasks: tuple[Task, ...] = ()
    planner: Planner = PLANNER
    spend: Spend = field(default_factory=Spend)
    caps: Caps = field(default_factory=Caps)
    installation: InstallationSpend = field(default_factory=InstallationSpend)


# `fix` calls a model and one run costs $0.30 on average; `lint` is deterministic.
PRICED = Planner(prior=PRIORS, concurrency=4, paid=frozenset({"fix"}), expected_usd={"fix": 0.3})
PR_CAP = RepoConfig(budget=Budget(per_pr_usd=1.0))
ROUND_CAP = RepoConfig(budget=Budget(per_round_usd=0.5))
PR_HINT = (
    "no new model runs start. To go on, raise `budget.per_pr_usd` in "
    "`.github/review-loop.yml` on the default branch, then say `@review-loop resume`"
)
ROUND_HINT = PR_HINT.replace("per_pr_usd", "per_round_usd")
DAILY = Caps(daily_usd=2.0)
DAILY_HINT = (
    "no new model runs start. To go on, the operator raises "
    "`REVIEW_LOOP_INSTALLATION_DAILY_USD` (a server setting) or the day ends (00:00 UTC), "
    "then say `@review-loop resume`"
)


NEEDS_HUMAN, READY, FIXING, WAITING = "needs-human", "ready", "fixing", "waiting"
CASES = [
    # -- before the audit: the PR is settled without one
    pytest.param(Case(
        pull=Pull(number=7, head_sha=HEAD, open=False), issues=found(1),
        expected=Decision("audited", "the pull request is closed", 0, tell="row"),
    ), id="closed"),
    pytest.param(Case(
        config_error="max_rounds: must be >= 0", loop=Loop(round=2),
        expected=Decision(
            NEEDS_HUMAN, "`.github/review-loop.yml`: max_rounds: must be >= 0", 2,
            check_title="Configuration error in .github/review-loop.yml",
        ),
    ), id="config-error"),
    pytest.param(Case(
        config=RepoConfig(enabled=False), issues=found(1),
        expected=Decision(
            "audited", "the loop is not enabled on this repository", 0, tell="row"
        ),
    ), id="not-enabled"),
    pytest.param(Case(
        config=RepoConfig(enabled=False),
        pull=Pull(number=7, head_sha=HEAD, labels=frozenset({LOOP_LABEL})),
        expected=Decision(READY, "no open findings", 0),
    ), id="not-enabled-but-the-pr-opts-in"),
    pytest.param(Case(
        pull=Pull(number=7, head_sha=HEAD, draft=True), issues=found(1),
        expected=Decision("audited", "draft pull request: skipped", 0, tell="row"),
    ), id="draft"),
    pytest.param(Case(
        pull=Pull(number=7, head_sha=HEAD, draft=True), loop=Loop(force_audit=True),
        expected=Decision(READY, "no open findings", 0),
    ), id="draft-audited-on-request"),
    pytest.param(Case(
        loop=Loop(round=1, stopped=True), issues=found(1),
        expected=Decision("stopped", "", 1),
    ), id="stopped"),
    pytest.param(Case(
        pull=Pull(number=7, head_sha=HEAD, own_fix_pr=True), config=RepoConfig(max_depth=0),
        expected=Decision("audited", "fix PRs are not audited (max_depth: 0)", 0, tell="row"),
    ), id="own-fix-pr-max-depth-0"),
    # -- the audit settles it before any issue is filed
    pytest.param(Case(
        audit=Audit(error="ruff exited with 2"), issues=found(1),
        expected=Decision(
            NEEDS_HUMAN, "the audit could not run: ruff exited with 2", 0,
            check_title="The audit could not run",
        ),
    ), id="audit-error"),
    pytest.param(Case(
        pull=Pull(number=7, head_sha=HEAD, own_fix_pr=True),
        expected=Decision(READY, "no findings on the lines this fix changed", 0, tell="check"),
    ), id="own-fix-pr-audited-not-fixed"),
    # -- the ledger and the tasks decide
    pytest.param(Case(
        issues=found(1, came_back=[3]), tasks=(task("running", 1),),
        expected=Decision(NEEDS_HUMAN, "finding #3 came back after it had been fixed", 0),
    ), id="oscillation"),
    pytest.param(Case(
        loop=Loop(round=1), tasks=(task("merged", 1),),
        expected=Decision(READY, "no open findings", 1),
    ), id="ready"),
    pytest.param(Case(
        loop=Loop(round=1), issues=found(1, 2), tasks=(task("running", 1), task("queued", 2)),
        expected=Decision(FIXING, "2 fixes running", 1),
    ), id="fixing"),
    pytest.param(Case(
        loop=Loop(round=1), tasks=(task("merged", 1),),
        audit=Audit(incomplete={"review": "the API key was refused (401)"}),
        expected=Decision(NEEDS_HUMAN, "no open findings, but the audit is incomplete, "
                          "auditor(s) that did not finish: `review`: the API key was refused "
                          "(401); re-audit once the auditor works again", 1),
    ), id="incomplete-audit-is-never-ready"),
    pytest.param(Case(
        loop=Loop(round=1), issues=found(1, 2), tasks=(task("running", 1), task("queued", 2)),
        audit=Audit(incomplete={"review": "timed out"}),
        expected=Decision(FIXING, "2 fixes running; the audit is incomplete, auditor(s) that "
                          "did not finish: `review`: timed out", 1),
    ), id="incomplete-audit-told-while-fixing"),
    pytest.param(Case(
        config=RepoConfig(merge_fixes="manual"), loop=Loop(round=1), issues=found(1, 2),
        tasks=(task("pushed", 1, fix_pr=12), task("pushed", 2, fix_pr=11)),
        expected=Decision(
            WAITING, "fix PRs #11, #12 wait for a person to merge them (merge_fixes: manual)", 1
        ),
    ), id="waiting-for-a-person-manual"),
    pytest.param(Case(
        config=RepoConfig(merge_fixes="manual"), loop=Loop(round=1), issues=found(1, 2),
        tasks=(task("pushed", 1, fix_pr=12), task("running", 2)),
        expected=Decision(FIXING, "2 fixes running", 1),
    ), id="manual-with-a-fix-still-running"),
    pytest.param(Case(
        loop=Loop(round=1), issues=found(1),
        tasks=(task("pushed", 1, fix_pr=12, blocked=REVIEW_BLOCKED),),
        expected=Decision(
            WAITING, f"{REVIEW_BLOCKED} (a person merges it once GitHub allows)", 1
        ),
    ), id="waiting-for-a-person-github-blocks-the-merge"),
    pytest.param(Case(
        loop=Loop(round=1), issues=found(1, 2),
        tasks=(task("pushed", 1, fix_pr=12, blocked=REVIEW_BLOCKED), task("running", 2)),
        expected=Decision(FIXING, "2 fixes running", 1),
    ), id="blocked-merge-with-a-fix-still-running"),
    pytest.param(Case(
        pull=Pull(number=7, head_sha=HEAD, fork=True), issues=found(1, 2),
        expected=Decision(
            NEEDS_HUMAN,
            "2 open findings on a pull request from a fork; review-loop audits forks but does "
            "not fix them",
            0,
        ),
    ), id="fork-with-open-findings"),
    pytest.param(Case(
        pull=Pull(number=7, head_sha=HEAD, fork=True),
        expected=Decision(READY, "no open findings", 0),
    ), id="fork-without-findings"),
    pytest.param(Case(
        issues=found(1, agent=None),
        expected=Decision(
            NEEDS_HUMAN, "no agent could fix #1 (no agent is routed to it)", 0,
            needs_human={1: "no agent is routed to it"},
        ),
    ), id="unroutable"),
    pytest.param(Case(
        issues=found(1, agent=None, why_no_agent={"fp1": "ruff has no safe fix for SIM108"}),
        expected=Decision(
            NEEDS_HUMAN, "no agent could fix #1 (ruff has no safe fix for SIM108)", 0,
            needs_human={1: "ruff has no safe fix for SIM108"},
        ),
    ), id="unroutable-with-the-reason-routing-gave"),
    pytest.param(Case(
        loop=Loop(round=1), issues=found(1), tasks=(task("conflict", 1),),
        expected=Decision(
            NEEDS_HUMAN, "no agent could fix #1 (its fix conflicts with the branch)", 1,
            needs_human={1: "its fix conflicts with the branch"},
        ),
    ), id="conflict"),
    pytest.param(Case(
        loop=Loop(round=1), issues=found(1), tasks=(task("rejected", 1),),
        expected=Decision(
            NEEDS_HUMAN, "no agent could fix #1 (a person closed its fix PR)", 1,
            needs_human={1: "a person closed its fix PR"},
        ),
    ), id="rejected"),
    pytest.param(Case(
        loop=Loop(round=2), issues=found(1),
        tasks=(task("failed", 1, round=1), task("refused", 1, round=2)),
        expected=Decision(
            NEEDS_HUMAN, "no agent could fix #1 (failed twice)", 2,
            needs_human={1: "failed twice"},
        ),
    ), id="failed-twice"),
    pytest.param(Case(
        loop=Loop(round=2), issues=found(1, needs_human=frozenset({1})),
        tasks=(task("failed", 1, round=1), task("failed", 1, round=2)),
        expected=Decision(NEEDS_HUMAN, "no agent could fix #1 (failed twice)", 2),
    ), id="failed-twice-labelled-already"),
    pytest.param(Case(
        loop=Loop(round=1), issues=found(1), tasks=(task("merged", 1, failed=(1,)),),
        expected=Decision(
            FIXING, "1 fixes running", 2,
            plans=(FanOut("fix", 1, 10.0, 5.0, width=1),), tasks=(new_task(1),),
        ),
    ), id="failed-once-tried-again"),
    pytest.param(Case(
        loop=Loop(round=5), issues=found(1, 2),
        expected=Decision(NEEDS_HUMAN, "2 findings still open after 5 rounds (max_rounds: 5)", 5),
    ), id="max-rounds"),
    pytest.param(Case(
        config=RepoConfig(max_rounds=0), issues=found(1),
        expected=Decision(NEEDS_HUMAN, "1 findings still open after 0 rounds (max_rounds: 0)", 0),
    ), id="max-rounds-0"),
    pytest.param(Case(
        loop=Loop(round=5), issues=found(1, 2, agent=None),
        expected=Decision(
            NEEDS_HUMAN,
            "no agent could fix #1 (no agent is routed to it), #2 (no agent is routed to it)",
            5,
            needs_human={1: "no agent is routed to it", 2: "no agent is routed to it"},
        ),
    ), id="unroutable-wins-over-max-rounds"),
    # -- a new round: the planner splits each agent's issues into tasks
    pytest.param(Case(
        issues=found(3, 1, 2), planner=DEAR_SPAWN,
        expected=Decision(
            FIXING, "1 fixes running", 1,
            plans=(FanOut("fix", 3, 2.0, 60.0, width=1),), tasks=(new_task(1, 2, 3),),
        ),
    ), id="new-round-inline"),
    pytest.param(Case(
        issues=found(3, 1, 2),
        expected=Decision(
            FIXING, "3 fixes running", 1,
            plans=(FanOut("fix", 3, 10.0, 5.0, width=3),),
            tasks=(new_task(1), new_task(2), new_task(3)),
        ),
    ), id="new-round-parallel"),
    pytest.param(Case(
        issues=found(1, 2, 3), config=RepoConfig(max_parallel=2),
        expected=Decision(
            FIXING, "2 fixes running", 1,
            plans=(FanOut("fix", 3, 10.0, 5.0, width=2, cap="max_parallel"),),
            tasks=(new_task(1, 2), new_task(3)),
        ),
    ), id="new-round-capped-by-max-parallel"),
    pytest.param(Case(
        issues=Issues(
            open={"a": 1, "b": 2, "c": 3}, agents={"a": "lint", "b": None, "c": "fix"}
        ),
        expected=Decision(
            FIXING, "2 fixes running", 1,
            needs_human={2: "no agent is routed to it"},
            plans=(FanOut("fix", 1, 10.0, 5.0, width=1), FanOut("lint", 1, 10.0, 5.0, width=1)),
            tasks=(new_task(3), new_task(1, agent="lint")),
        ),
    ), id="new-round-per-agent-one-stuck"),
    pytest.param(Case(
        issues=found(1), tasks=(task("failed", 1, base_sha=HEAD),),
        expected=Decision(
            NEEDS_HUMAN, "round 1's fixes all ended unfixed", 1,
            plans=(FanOut("fix", 1, 10.0, 5.0, width=1),),
        ),
    ), id="rounds-fixes-all-ended-unfixed"),
    # -- budgets: no model run starts past a cap; deterministic agents go on
    pytest.param(Case(
        config=PR_CAP, planner=PRICED, issues=found(1), spend=Spend(pr_usd=0.6),
        expected=Decision(
            FIXING, "1 fixes running", 1,
            plans=(FanOut("fix", 1, 10.0, 5.0, width=1),), tasks=(new_task(1),),
        ),
    ), id="budget-room-left"),
    pytest.param(Case(
        config=PR_CAP, planner=PRICED, issues=found(1), spend=Spend(pr_usd=0.8),
        loop=Loop(round=1),
        expected=Decision(
            NEEDS_HUMAN,
            "budget `per_pr_usd` reached: $0.80 spent on this pull request of $1.00 allowed, "
            f"and the next runs are expected to cost $0.30; {PR_HINT}",
            1,
        ),
    ), id="budget-per-pr-expected-run-would-pass-it"),
    pytest.param(Case(
        config=PR_CAP, issues=found(1), spend=Spend(pr_usd=1.2),
        planner=Planner(prior=PRIORS, concurrency=4, paid=frozenset({"fix"})),
        expected=Decision(
            NEEDS_HUMAN,
            f"budget `per_pr_usd` reached: $1.20 spent on this pull request of $1.00 allowed; "
            f"{PR_HINT}",
            0,
        ),
    ), id="budget-per-pr-spent-agent-without-history"),
    pytest.param(Case(
        config=ROUND_CAP, issues=found(1, 2), spend=Spend(pr_usd=5.0, round_usd=5.0),
        # The batch of two is expected at 2 x $0.20 = $0.40, within the round's $0.50.
        planner=replace(
            PRICED, measured={"fix": Costs(60.0, 2.0, samples=3)}, expected_usd={"fix": 0.2}
        ),
        expected=Decision(
            FIXING, "1 fixes running", 1,
            plans=(FanOut("fix", 2, 2.0, 60.0, width=1),), tasks=(new_task(1, 2),),
        ),
    ), id="budget-per-round-a-new-round-starts-fresh"),
    pytest.param(Case(
        config=PR_CAP, issues=found(1, 2), spend=Spend(pr_usd=0.5),
        planner=replace(PRICED, measured={"fix": Costs(60.0, 2.0, samples=3)}),
        expected=Decision(
            NEEDS_HUMAN,
            "budget `per_pr_usd` reached: $0.50 spent on this pull request of $1.00 allowed, "
            f"and the next runs are expected to cost $0.60; {PR_HINT}",
            0,
        ),
    ), id="budget-a-batch-is-expected-at-its-agents-cost-per-issue-times-its-issues"),
    pytest.param(Case(
        config=ROUND_CAP, planner=PRICED, issues=found(1, 2, 3),
        expected=Decision(
            NEEDS_HUMAN,
            "budget `per_round_usd` reached: $0.00 spent on one round of $0.50 allowed, "
            f"and the next runs are expected to cost $0.60; {ROUND_HINT}; "
            "1 fixes that fit (or cost nothing) queued",
            1,
            plans=(FanOut("fix", 3, 10.0, 5.0, width=3),),
            tasks=(new_task(1),),
        ),
    ), id="budget-per-round-some-start-the-rest-wait"),
    pytest.param(Case(
        config=PR_CAP, planner=PRICED, spend=Spend(pr_usd=3.0),
        issues=Issues(open={"a": 1, "b": 2}, agents={"a": "lint", "b": "fix"}),
        expected=Decision(
            NEEDS_HUMAN,
            "budget `per_pr_usd` reached: $3.00 spent on this pull request of $1.00 allowed, "
            f"and the next runs are expected to cost $0.30; {PR_HINT}; "
            "1 fixes that fit (or cost nothing) queued",
            1,
            plans=(FanOut("fix", 1, 10.0, 5.0, width=1), FanOut("lint", 1, 10.0, 5.0, width=1)),
            tasks=(new_task(1, agent="lint"),),
        ),
    ), id="budget-deterministic-agents-go-on"),
    pytest.param(Case(
        issues=found(1), tasks=(task("held", 1, base_sha=HEAD),),
        expected=Decision(
            FIXING, "1 fixes running", 1,
            plans=(FanOut("fix", 1, 10.0, 5.0, width=1),), tasks=(new_task(1),),
        ),
    ), id="budget-a-task-held-at-its-start-is-queued-again"),
    # -- the operator's caps per installation: what other PRs spent and reserved counts
    pytest.param(Case(
        planner=PRICED, issues=found(1, 2), caps=DAILY,
        installation=InstallationSpend(day_usd=1.0, month_usd=1.0, reserved_usd=0.3),
        expected=Decision(
            FIXING, "2 fixes running", 1,
            plans=(FanOut("fix", 2, 10.0, 5.0, width=2),), tasks=(new_task(1), new_task(2)),
        ),
    ), id="installation-cap-room-for-both"),
    pytest.param(Case(
        planner=PRICED, caps=DAILY,
        installation=InstallationSpend(day_usd=1.5, month_usd=1.5, reserved_usd=0.3),
        issues=Issues(open={"a": 1, "b": 2}, agents={"a": "lint", "b": "fix"}),
        expected=Decision(
            NEEDS_HUMAN,
            "installation budget `REVIEW_LOOP_INSTALLATION_DAILY_USD` reached: $1.50 spent "
            "today (UTC) by this installation's model runs (and $0.30 reserved by runs under "
            f"way) of $2.00 allowed; the next run is expected to cost $0.30; {DAILY_HINT}; "
            "1 fixes that fit (or cost nothing) queued",
            1,
            plans=(FanOut("fix", 1, 10.0, 5.0, width=1), FanOut("lint", 1, 10.0, 5.0, width=1)),
            tasks=(new_task(1, agent="lint"),),
        ),
    ), id="installation-cap-model-runs-held-deterministic-go-on"),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES)
def test_decide(case: Case) -> None:
    """Each rule of the loop, alone: the first that applies decides all that happens next."""
    facts = Facts(
        case.pull,
        case.loop,
        case.config,
        case.config_error,
        case.spend,
        caps=case.caps,
        installation=case.installation,
    )
    assert decide(facts, case.audit, case.issues, case.tasks, case.planner) == case.expected


def row(task_id: int, status: str, *issues: int, fixed: tuple[int, ...] = ()) -> TaskRow:
    """A fix task's row: one issue, or a batch of `issues`."""
    return TaskRow(
        id=task_id, repo="o/r", pr_number=7, issue_number=issues[0], installation_id=1,
        agent="fix", round=1, base_ref="feature", base_sha=OLD, status=status,
        branch=f"review-loop/pr-7/{issues[0]}", fix_pr=20 + task_id, attempts=1, error=None,
        spawn_s=None, run_s=None, batch=list(issues) if len(issues) > 1 else [],
        fixed=list(fixed), failed=[], warm=False,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("now", "open_issues", "expected"),
    [
        pytest.param([row(1, "pushed", 2)], {2}, ["pushed"], id="still-running"),
        pytest.param([row(1, "merged", 2)], set(), ["merged"], id="merged-and-its-fix-shown"),
        pytest.param(
            [row(1, "merged", 2)], {2}, ["pushed"], id="merged-after-the-head-was-read"
        ),
        pytest.param(
            [row(1, "merged", 2, 3, fixed=(2,))], {3}, ["merged"],
            id="batch-merged-its-unfixed-issue-still-open",
        ),
        pytest.param(
            [row(1, "merged", 2, 3, fixed=(2, 3))], {3}, ["pushed"],
            id="batch-merged-one-fix-not-shown",
        ),
        pytest.param([row(1, "failed", 2)], {2}, ["pushed"], id="failed-waits-for-its-reconcile"),
        pytest.param([], {2}, ["pushed"], id="gone-kept-as-read"),
    ],
)  # fmt: skip
def test_caught_up(now: list[TaskRow], open_issues: set[int], expected: list[str]) -> None:
    """A fix task read in flight that merged since counts as merged only when the audited
    head shows its fixes: none of the issues it fixed is still open."""
    read = [row(1, "pushed", *now[0].issues) if now else row(1, "pushed", 2)]
    assert [t.status for t in caught_up(read, now, open_issues)] == expected


def test_a_reconcile_while_the_rounds_fixes_run_tells_what_the_one_that_queued_them_did() -> None:
    """The round's reason does not change from queueing its fixes to their running (a
    retried or doubled reconcile between): the summary and the check run are not edited."""
    facts = Facts(PULL, Loop(round=0))
    queued = decide(facts, Audit(), found(1, 2), [], PLANNER)
    tasks = [Task("queued", t.issues, round=queued.round, base_sha=HEAD) for t in queued.tasks]
    later = replace(facts, loop=Loop(round=queued.round))
    again = decide(later, Audit(), found(1, 2), tasks, PLANNER)
    assert (queued.state, queued.reason) == (FIXING, "2 fixes running")
    assert (again.state, again.reason) == (queued.state, queued.reason)
