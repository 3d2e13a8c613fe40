"""The reconciler around the pure rules: it reads, asks `decide`, and does what it says."""

from bot.engine.leases import Lease
from bot.github.repo_api import RepoAPI
from bot.labels import NEEDS_HUMAN_LABEL
from bot.loop.fleet import Fleet
from bot.loop.reconcile.decide import Audit, Facts, Issues, Planner, Pull, decide
from bot.loop.reconcile.fanout import Costs
from bot.loop.reconcile.reconciler import PrReconciler
from bot.loop.store import LoopStore
from tests.fakes.github import FakeGitHub

HEAD = "a" * 40
CONFIG = ".github/review-loop.yml"


async def reconciler_for(
    fleet: Fleet, api: RepoAPI, number: int, started: list[int]
) -> PrReconciler:
    """A reconciler of PR `number`, holding its lease, that records the fix tasks it queues."""
    runtime = fleet.runtime
    store = LoopStore(runtime.pool)
    await store.bump(api.full_name, number, installation_id=1)
    row = await store.get(api.full_name, number)
    assert row is not None
    lease = await runtime.leases.acquire(f"pr:{api.full_name}#{number}", "test", 60)
    assert isinstance(lease, Lease)

    async def start_fix(task_id: int) -> None:
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
