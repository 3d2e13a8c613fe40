"""The reconciler around the pure rules: it reads, asks `decide`, and does what it says."""

import contextlib
import dataclasses

import pytest
from githubkit.exception import RequestError, RequestFailed

from bot.audit.findings import Finding
from bot.engine.leases import Lease
from bot.github.repo_api import RepoAPI
from bot.labels import LOOP_LABEL, NEEDS_HUMAN_LABEL
from bot.loop.fleet import Fleet
from bot.loop.reconcile.decide import Audit, Facts, Issues, Planner, Pull, before_audit, decide
from bot.loop.reconcile.fanout import Costs
from bot.loop.reconcile.ledger import IssueClose, IssueReopen, LedgerPlan
from bot.loop.reconcile.reconciler import PrReconciler
from bot.loop.store import LoopStore
from bot.repo_config import RepoConfig
from tests.fakes.github import FakeGitHub

HEAD = "a" * 40
CONFIG = ".github/review-loop.yml"


async def reconciler_for(
    fleet: Fleet, api: RepoAPI, number: int, started: list[int], fail_to_queue: bool = False
) -> PrReconciler:
    """A reconciler of PR `number`, holding its lease, that records the fix tasks it queues."""
    runtime = fleet.runtime
    store = LoopStore(runtime.pool)
    await store.bump(api.full_name, number, installation_id=1)
    row = await store.get(api.full_name, number)
    assert row is not None
    lease = await runtime.leases.acquire(f"pr:{api.full_name}#{number}", "test", 60)
    assert isinstance(lease, Lease)

    async def start_fix(task_id: int, *_: object) -> None:
        if fail_to_queue:
            raise ConnectionError("the queue is gone")
        started.append(task_id)

    return PrReconciler(fleet, api, row, lease, start_fix=start_fix)


async def test_apply_does_what_the_decision_says_once(
    fleet: Fleet, fake: FakeGitHub, api: RepoAPI
) -> None:
    """Stuck issues get needs-human and one comment saying why, each new task is created and
    queued once; again: no change."""
    for n in (1, 2, 3):
        fake.add_issue(f"finding {n}", labels=["review-loop:finding"])
    pr = fake.add_pull("feature", HEAD)
    started: list[int] = []
    reconciler = await reconciler_for(fleet, api, pr.number, started)
    issues = Issues(open={"a": 1, "b": 2, "c": 3}, agents={"a": None, "b": "fix", "c": "fix"})
    planner = Planner(prior=Costs(spawn_s=5.0, run_s=10.0), concurrency=4)
    facts = Facts(Pull(number=pr.number, head_sha=HEAD, head_ref="feature"))
    decision = decide(facts, Audit(), issues, [], planner)
    assert (decision.state, decision.needs_human) == ("fixing", {1: "no agent is routed to it"})

    await reconciler.apply(decision)
    store = LoopStore(fleet.runtime.pool)
    tasks = await store.tasks_for_pr(api.full_name, pr.number)
    assert [(t.agent, t.issues, t.branch, t.base_ref, t.base_sha, t.round) for t in tasks] == [
        ("fix", [2], f"review-loop/pr-{pr.number}/2", "feature", HEAD, 1),
        ("fix", [3], f"review-loop/pr-{pr.number}/3", "feature", HEAD, 1),
    ]
    assert started == [t.id for t in tasks]
    assert [fake.issues[n].labels for n in (1, 2, 3)] == [
        ["review-loop:finding", NEEDS_HUMAN_LABEL],
        ["review-loop:finding"],
        ["review-loop:finding"],
    ]
    plans = await store.plans(api.full_name, pr.number)
    assert plans == [decision.plans[0].explain()]
    told = [c.body for c in fake.comments.values() if c.issue == 1]
    assert len(told) == 1 and "to a person: no agent is routed to it." in told[0]

    await reconciler.apply(decision)
    assert await store.tasks_for_pr(api.full_name, pr.number) == tasks
    assert started == [t.id for t in tasks]
    assert fake.issues[1].labels == ["review-loop:finding", NEEDS_HUMAN_LABEL]
    assert [c.body for c in fake.comments.values() if c.issue == 1] == told
    assert await store.plans(api.full_name, pr.number) == plans


async def test_a_broken_config_is_told_on_the_pr_without_an_audit(
    fleet: Fleet, fake: FakeGitHub, api: RepoAPI
) -> None:
    """A config error is the decision before the audit: summary, check run (titled as a
    config error, not as "0 findings"), label, row."""
    fake.files[CONFIG] = "max_rounds: -1\n"
    pr = fake.add_pull("feature", HEAD)
    started: list[int] = []
    reconciler = await reconciler_for(fleet, api, pr.number, started)

    await reconciler.run()

    row = await LoopStore(fleet.runtime.pool).get(api.full_name, pr.number)
    assert row is not None
    assert row.state == "needs-human"
    assert row.reason is not None and row.reason.startswith(f"`{CONFIG}`: ")
    assert NEEDS_HUMAN_LABEL in pr.labels
    assert [c.issue for c in fake.comments.values()] == [pr.number]
    assert [(r.head_sha, r.conclusion, r.title) for r in fake.check_runs.values()] == [
        (HEAD, "action_required", "Configuration error in .github/review-loop.yml")
    ]
    assert started == []


async def test_a_closed_pr_is_settled_from_the_pull_alone(
    fleet: Fleet, fake: FakeGitHub, api: RepoAPI
) -> None:
    """Of a closed PR only the pull is read; its row says so and nothing is told on GitHub."""
    pr = fake.add_pull("feature", HEAD, state="closed")
    reconciler = await reconciler_for(fleet, api, pr.number, [])

    await reconciler.run()

    row = await LoopStore(fleet.runtime.pool).get(api.full_name, pr.number)
    assert row is not None
    assert (row.state, row.reason, row.audited_sha) == (
        "audited",
        "the pull request is closed",
        HEAD,
    )
    assert [(r.method, r.url.path) for r in fake.requests] == [
        ("GET", f"/repos/{api.full_name}/pulls/{pr.number}")
    ]


async def test_closing_and_reopening_a_finding_again_after_a_failure_comments_once(
    fleet: Fleet, fake: FakeGitHub, api: RepoAPI
) -> None:
    """The close (and reopen) comment is marked: when closing fails after the comment was
    posted, the retried reconcile finds it and posts no second one."""
    closing = fake.add_issue("gone", labels=["review-loop:finding"])
    reopening = fake.add_issue("back", labels=["review-loop:finding"], state="closed")
    pr = fake.add_pull("feature", HEAD)
    reconciler = await reconciler_for(fleet, api, pr.number, [])
    plan = LedgerPlan(
        close=(IssueClose(closing.number, f"Fixed in {HEAD[:7]}.", "completed"),),
        reopen=(IssueReopen(reopening.number, "back", "body", "It came back."),),
    )
    refused = {"message": "Resource not accessible by integration"}
    fake.inject("PATCH", rf"/repos/{api.full_name}/issues/{closing.number}", 403, refused)

    with pytest.raises(RequestFailed):
        await reconciler._apply_ledger(plan, HEAD)
    fake.inject("POST", rf"/repos/{api.full_name}/issues/{reopening.number}/labels", 403, refused)
    with pytest.raises(RequestFailed):
        await reconciler._apply_ledger(plan, HEAD)
    await reconciler._apply_ledger(plan, HEAD)

    assert fake.issues[closing.number].state == "closed"
    assert fake.issues[reopening.number].state == "open"
    bodies = {n: [c.body for c in fake.comments.values() if c.issue == n] for n in (1, 2)}
    assert [len(bodies[closing.number]), len(bodies[reopening.number])] == [1, 1]
    assert bodies[closing.number][0].endswith(f"Fixed in {HEAD[:7]}.")


FINDING = Finding(
    analyzer="ruff",
    rule="F401",
    category="lint",
    path="src/a.py",
    start_line=1,
    end_line=1,
    message="`os` imported but unused",
    snippet="import os",
)


async def test_a_finding_closed_as_fixed_just_before_a_crash_counts_as_fixed(
    fleet: Fleet, fake: FakeGitHub, api: RepoAPI
) -> None:
    """The worker dies once GitHub has closed the issue, before it learns so: when the
    finding comes back, the next reconcile sees the bot's own fix come undone (it reopens
    the issue), not an issue a person closed (waived)."""
    number = fake.add_pull("feature", HEAD).number
    reconciler = await reconciler_for(fleet, api, number, [])
    pr = await api.get_pull(number)
    filed, _ = await reconciler._ledger(pr, [FINDING], RepoConfig(), [])
    (issue,) = filed.issue_for.values()

    def close_then_die() -> None:
        fake.issues[issue].state, fake.issues[issue].state_reason = "closed", "completed"
        raise ConnectionResetError("the worker dies here")

    fake.inject("PATCH", rf"/repos/{api.full_name}/issues/{issue}", 200, side_effect=close_then_die)
    with pytest.raises(RequestError):
        await reconciler._ledger(pr, [], RepoConfig(), [])
    assert fake.issues[issue].state == "closed"

    back, _ = await reconciler._ledger(pr, [FINDING], RepoConfig(), [])

    assert (back.plan.waived, [o.number for o in back.plan.oscillations]) == ((), [issue])
    assert fake.issues[issue].state == "open"


async def test_a_fixed_record_whose_close_never_happened_is_forgotten(
    fleet: Fleet, fake: FakeGitHub, api: RepoAPI
) -> None:
    """The worker dies after recording the fix, before the close; the finding comes back and
    the issue stays open. A person who then closes it waives it: it is not taken for the
    bot's fix come undone."""
    number = fake.add_pull("feature", HEAD).number
    reconciler = await reconciler_for(fleet, api, number, [])
    pr = await api.get_pull(number)
    filed, _ = await reconciler._ledger(pr, [FINDING], RepoConfig(), [])
    (issue,) = filed.issue_for.values()

    def die() -> None:
        raise ConnectionResetError("the worker dies here")

    fake.inject("PATCH", rf"/repos/{api.full_name}/issues/{issue}", 200, side_effect=die)
    with pytest.raises(RequestError):
        await reconciler._ledger(pr, [], RepoConfig(), [])
    assert fake.issues[issue].state == "open"
    await reconciler._ledger(pr, [FINDING], RepoConfig(), [])  # back before the close happened
    fake.issues[issue].state, fake.issues[issue].state_reason = "closed", "not_planned"

    after, _ = await reconciler._ledger(pr, [FINDING], RepoConfig(), [])

    assert (after.plan.waived, after.plan.oscillations) == ((issue,), ())
    assert fake.issues[issue].state == "closed"


async def test_a_duplicate_the_bot_closed_is_not_taken_for_a_waiver(
    fleet: Fleet, fake: FakeGitHub, api: RepoAPI
) -> None:
    """Two issues for one finding (a create raced another): the bot closes the younger as a
    duplicate. When the finding is later fixed and comes back, the kept issue is reopened:
    the duplicate the bot closed is not read as closed by a person (a waiver)."""
    number = fake.add_pull("feature", HEAD).number
    reconciler = await reconciler_for(fleet, api, number, [])
    pr = await api.get_pull(number)
    filed, _ = await reconciler._ledger(pr, [FINDING], RepoConfig(), [])
    (kept,) = filed.issue_for.values()
    original = fake.issues[kept]
    twin = fake.add_issue(original.title, body=original.body, labels=["review-loop:finding"])

    deduped, _ = await reconciler._ledger(pr, [FINDING], RepoConfig(), [])
    assert [(c.number, c.state_reason) for c in deduped.plan.close] == [
        (twin.number, "not_planned")
    ]
    await reconciler._ledger(pr, [], RepoConfig(), [])  # fixed: the kept issue closes
    assert fake.issues[kept].state == "closed"

    back, _ = await reconciler._ledger(pr, [FINDING], RepoConfig(), [])

    assert back.plan.waived == ()
    assert [o.number for o in back.plan.oscillations] == [kept]
    assert fake.issues[kept].state == "open" and fake.issues[twin.number].state == "closed"


async def test_a_task_whose_job_could_not_be_queued_is_not_kept(
    fleet: Fleet, fake: FakeGitHub, api: RepoAPI
) -> None:
    """The task and its job commit together: when queueing fails, no task waits, `queued`,
    for a job that never comes (the next reconcile creates it again)."""
    fake.add_issue("finding", labels=["review-loop:finding"])
    pr = fake.add_pull("feature", HEAD)
    reconciler = await reconciler_for(fleet, api, pr.number, [], fail_to_queue=True)
    issues = Issues(open={"a": 1}, agents={"a": "fix"})
    planner = Planner(prior=Costs(spawn_s=5.0, run_s=10.0), concurrency=4)
    facts = Facts(Pull(number=pr.number, head_sha=HEAD, head_ref="feature"))
    decision = decide(facts, Audit(), issues, [], planner)
    assert len(decision.tasks) == 1

    with pytest.raises(ConnectionError):
        await reconciler.apply(decision)

    assert await LoopStore(fleet.runtime.pool).tasks_for_pr(api.full_name, pr.number) == []


async def test_an_audit_command_on_a_pr_the_config_leaves_out_keeps_it_in(
    fleet: Fleet, fake: FakeGitHub, api: RepoAPI
) -> None:
    """`enabled: false` and `@review-loop audit`: the loop starts on the PR and the PR gets
    the `review-loop` label, so the reconciles after (no command) do not call it "not
    enabled" while its fixes run."""
    fake.files[CONFIG] = "enabled: false\n"
    pr = fake.add_pull("feature", HEAD)
    reconciler = await reconciler_for(fleet, api, pr.number, [])
    store = LoopStore(fleet.runtime.pool)
    await store.bump(api.full_name, pr.number, installation_id=1, force_audit=True)
    row = await store.get(api.full_name, pr.number)
    assert row is not None
    reconciler.row = row

    with contextlib.suppress(Exception):  # the fake holds no git repository to audit
        await reconciler.run()

    assert LOOP_LABEL in pr.labels
    later = Facts(
        Pull(number=pr.number, head_sha=HEAD, head_ref="feature", labels=frozenset(pr.labels)),
        config=RepoConfig(enabled=False),
    )
    assert before_audit(later) is None


def e741(line: int, message: str = "Ambiguous variable name: `l`") -> Finding:
    return Finding(
        analyzer="ruff", rule="E741", category="lint", path="shop/cart.py",
        start_line=line, end_line=line, message=message, snippet="    l = items[0]",
    )  # fmt: skip


async def test_a_finding_that_only_moved_leaves_its_issue_as_filed(
    fleet: Fleet, fake: FakeGitHub, api: RepoAPI
) -> None:
    """Filed at one head; at the next, a fix above it moved the finding two lines up: the
    issue is not edited (its permalinks at the first head still show the finding). When
    what it says of the finding changes, it is edited once."""
    pr = fake.add_pull("feature", HEAD)
    reconciler = await reconciler_for(fleet, api, pr.number, [])
    pull = await api.get_pull(pr.number)
    await reconciler._ledger(pull, [e741(12)], RepoConfig(), [])
    [filed] = [i for i in fake.issues.values() if i.number != pr.number]
    body = filed.body
    assert f"/blob/{HEAD}/shop/cart.py#L12)" in body

    later = dataclasses.replace(pull, head_sha="b" * 40)
    before = len(fake.requests)
    await reconciler._ledger(later, [e741(10)], RepoConfig(), [])
    assert [r.method for r in fake.requests[before:]] == ["GET"]  # the issues, listed
    assert fake.issues[filed.number].body == body

    reworded = e741(10, "Ambiguous variable name: `l` (looks like `1`)")
    await reconciler._ledger(later, [reworded], RepoConfig(), [])
    assert len(fake.calls("PATCH", rf"/issues/{filed.number}")) == 1
    assert "looks like" in fake.issues[filed.number].body
    assert "/blob/" + "b" * 40 + "/shop/cart.py#L10)" in fake.issues[filed.number].body


async def test_an_issue_a_fix_pr_fixed_meanwhile_closes_without_a_comment(
    fleet: Fleet, fake: FakeGitHub, api: RepoAPI
) -> None:
    """A fix task still running when the reconcile read the tasks, merged by the time its
    audit shows the finding gone: counted merged, so its issue closes silently (the fix
    PR's "Fixes #n" is on its timeline) like those of fix PRs that had merged before."""
    pr = fake.add_pull("feature", HEAD)
    reconciler = await reconciler_for(fleet, api, pr.number, [])
    pull = await api.get_pull(pr.number)
    await reconciler._ledger(pull, [e741(12)], RepoConfig(), [])
    [filed] = [i for i in fake.issues.values() if i.number != pr.number]
    store = LoopStore(fleet.runtime.pool)
    task = await store.add_task(
        repo=api.full_name, pr_number=pr.number, issue_number=filed.number, installation_id=1,
        agent="fix", round=1, base_ref="feature", base_sha=HEAD, branch="review-loop/pr-1/2",
    )  # fmt: skip
    assert task is not None
    read = await store.tasks_for_pr(api.full_name, pr.number)
    await store.update_task(task.id, status="merged", fixed=[filed.number])  # meanwhile
    comments = len(fake.comments)

    _, tasks = await reconciler._ledger(dataclasses.replace(pull, head_sha="b" * 40), [],
                                        RepoConfig(), read)  # fmt: skip

    assert [t.status for t in read] == ["queued"] and [t.status for t in tasks] == ["merged"]
    assert fake.issues[filed.number].state == "closed"
    assert len(fake.comments) == comments
