"""Issue events: `agent:<name>` or `review-loop:fix` asks for a fix (writers only), and a
person closing or reopening a finding changes what its PR waits for."""

import json

import pytest

from bot.github.markers import with_marker
from bot.labels import FINDING_LABEL, FIX_LABEL
from handlers.issues import LABEL_REFUSED, NO_AGENT
from tests.gitrepos import Remote
from tests.handlers.conftest import INSTALLATION, Bench, Json, finding_body

ISSUE = 1  # the issue of the fixture payloads
LOOPED = 7  # the PR a finding belongs to
USER = "Codertocat"  # the fixtures' sender
A_REPORT = "A person's bug report."
A_FINDING = finding_body(LOOPED)


def labeled(bench: Bench, label: str, *, body: str = A_REPORT) -> Json:
    """`issues.labeled` for `label` on issue #1 (GitHub lists the new label on the issue)."""
    bench.fake.add_issue("A bug", body, labels=[label])
    payload = bench.event("issues.labeled")
    payload["label"]["name"] = label
    payload["issue"]["labels"] = [{**payload["issue"]["labels"][0], "name": label}]
    payload["issue"]["body"] = body
    return payload


@pytest.mark.parametrize(
    ("label", "on_pull_request"),
    [
        pytest.param("bug", False, id="label-asking-for-nothing"),
        pytest.param("review-loop:finding", False, id="the-bots-finding-label"),
        pytest.param("agent:ruff-fix", True, id="agent-label-on-a-pull-request"),
    ],
)
async def test_labels_that_ask_for_no_fix_are_ignored(
    bench: Bench, label: str, on_pull_request: bool
) -> None:
    """A label that names no agent (or an issue that is a PR) asks nothing of GitHub."""
    payload = labeled(bench, label)
    if on_pull_request:
        payload["issue"]["pull_request"] = {"url": "https://api.github.test/pulls/1"}

    delivery = await bench.deliver("issues.labeled", payload)

    assert delivery.status == "done", delivery.outcome
    assert bench.fake.requests == []
    assert await bench.tasks() == []
    assert await bench.reconciles() == []


@pytest.mark.parametrize(
    "role",
    [
        pytest.param("read", id="reader"),
        pytest.param("triage", id="triager"),
        pytest.param(None, id="stranger"),
    ],
)
@pytest.mark.parametrize(
    ("label", "body"),
    [
        pytest.param("agent:ruff-fix", A_REPORT, id="persons-issue"),
        pytest.param(FIX_LABEL, A_FINDING, id="finding"),
    ],
)
async def test_a_fix_label_from_a_non_writer_is_refused(
    bench: Bench, role: str | None, label: str, body: str
) -> None:
    """Agents spend the operator's keys: a label from someone who cannot push gets a polite
    refusal (one comment, however often it is delivered) and runs nothing."""
    if role:
        bench.fake.roles[USER] = role
    payload = labeled(bench, label, body=body)

    first = await bench.deliver("issues.labeled", payload)
    again = await bench.deliver("issues.labeled", payload)

    assert (first.status, again.status) == ("done", "done"), first.outcome
    refusal = LABEL_REFUSED.format(user=USER, label=label)
    marker = {"kind": "label-refused", "issue": ISSUE}
    assert bench.replies(ISSUE, "label-refused") == [with_marker(marker, refusal)]
    assert await bench.tasks() == []
    assert await bench.reconciles() == []


@pytest.mark.parametrize(
    "role",
    [
        pytest.param("write", id="writer"),
        pytest.param("maintain", id="maintainer"),
        pytest.param("admin", id="admin"),
    ],
)
@pytest.mark.parametrize(
    "label",
    [pytest.param("agent:ruff-fix", id="agent-label"), pytest.param(FIX_LABEL, id="fix-label")],
)
async def test_a_fix_label_on_a_finding_reconciles_its_pr(
    bench: Bench, role: str, label: str
) -> None:
    """A writer routing a finding hands it to its PR's loop, which routes and fixes it."""
    bench.fake.roles[USER] = role

    delivery = await bench.deliver("issues.labeled", labeled(bench, label, body=A_FINDING))

    assert delivery.status == "done", delivery.outcome
    assert await bench.reconciles() == [LOOPED]
    assert await bench.tasks() == []
    assert bench.comments_on(ISSUE) == []


async def test_an_agent_label_on_a_persons_issue_starts_a_fix_on_the_default_branch(
    bench: Bench, cloneable: Remote
) -> None:
    """A writer's `agent:<name>` on a person's issue makes one fix task against the default
    branch's head (and queues it), however often the label event arrives."""
    bench.fake.roles[USER] = "write"
    payload = labeled(bench, "agent:ruff-fix")

    await bench.deliver("issues.labeled", payload)
    again = await bench.deliver("issues.labeled", payload)

    assert again.status == "done", again.outcome
    [task] = await bench.tasks()
    got = (task.pr_number, task.issue_number, task.agent, task.status, task.installation_id)
    assert got == (None, ISSUE, "ruff-fix", "queued", INSTALLATION)
    assert (task.base_ref, task.base_sha) == ("main", await cloneable.sha())
    assert task.branch == f"review-loop/default/{ISSUE}"
    assert await bench.fix_jobs() == [task.id]
    assert await bench.reconciles() == []
    # The default branch was fetched with a token of this installation, for this repository only.
    token_requests = bench.fake.calls("POST", rf"/app/installations/{INSTALLATION}/access_tokens")
    assert {"repositories": ["Hello-World"]} in [json.loads(r.content) for r in token_requests]


@pytest.mark.parametrize(
    "label",
    [
        pytest.param("agent:nobody", id="agent-not-in-the-catalog"),
        pytest.param(FIX_LABEL, id="fix-label-naming-no-agent"),
    ],
)
async def test_a_persons_issue_without_a_known_agent_says_which_agents_exist(
    bench: Bench, label: str
) -> None:
    """Without a catalog agent to run, the issue is told which `agent:<name>` labels work."""
    bench.fake.roles[USER] = "write"

    delivery = await bench.deliver("issues.labeled", labeled(bench, label))

    assert delivery.status == "done", delivery.outcome
    no_agent = NO_AGENT.format(agents="`ruff-fix`, `ruff-format`, `sarif-fix`")
    marker = {"kind": "no-agent", "issue": ISSUE}
    assert bench.replies(ISSUE, "no-agent") == [with_marker(marker, no_agent)]
    assert await bench.tasks() == []
    assert await bench.fix_jobs() == []


def closed_or_reopened(bench: Bench, action: str, labels: list[str], body: str) -> Json:
    """`issues.closed` or `issues.reopened` of issue #1 with these labels and body."""
    payload = bench.event("issues.reopened")
    payload["action"] = action
    issue = payload["issue"]
    issue["state"] = "closed" if action == "closed" else "open"
    issue["labels"] = [{**issue["labels"][0], "name": name} for name in labels]
    issue["body"] = body
    return payload


@pytest.mark.parametrize(
    ("action", "labels", "body", "reconciles"),
    [
        pytest.param("closed", [FINDING_LABEL], A_FINDING, [LOOPED], id="finding-closed"),
        pytest.param("reopened", [FINDING_LABEL], A_FINDING, [LOOPED], id="finding-reopened"),
        pytest.param(
            "closed", [FINDING_LABEL, "agent:ruff-fix"], A_FINDING, [LOOPED],
            id="routed-finding-closed",
        ),
        pytest.param("closed", ["bug"], A_REPORT, [], id="persons-issue-closed"),
        pytest.param("reopened", ["bug"], A_REPORT, [], id="persons-issue-reopened"),
        pytest.param("closed", ["bug"], A_FINDING, [], id="marker-without-the-label"),
        pytest.param("closed", [FINDING_LABEL], "Filed by hand.", [], id="label-without-marker"),
    ],
)  # fmt: skip
async def test_closing_or_reopening_a_finding_reconciles_its_pr(
    bench: Bench, action: str, labels: list[str], body: str, reconciles: list[int]
) -> None:
    """A finding closed (waived) or reopened by a person changes what its PR waits for; other
    issues closing change nothing. Neither asks GitHub anything."""
    payload = closed_or_reopened(bench, action, labels, body)

    delivery = await bench.deliver(f"issues.{action}", payload)

    assert delivery.status == "done", delivery.outcome
    assert await bench.reconciles() == reconciles
    assert bench.fake.requests == []
