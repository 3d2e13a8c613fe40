"""`@review-loop <verb>` in a PR comment: writers command the loop, everyone else is told
politely, and every reply is one comment of the bot's, marked as the reply to its command."""

import pytest

from bot.agents.models import ModelCall
from bot.github.markers import with_marker
from bot.labels import FINDING_LABEL, NEEDS_HUMAN_LABEL, WAIVED_LABEL
from bot.loop.commands import HELP
from bot.loop.model_store import ModelStore
from bot.loop.store import TaskRow
from bot.repo_config import CONFIG_PATH
from bot.webhooks.dispatch import HandlerFailed
from handlers.issue_comment import (
    ALREADY_TRIED,
    FIXING_ONE,
    FORK,
    NOT_A_PR,
    NOT_TRACKED,
    REFUSAL,
    RETRYING,
    WAIVED,
)
from tests.fakes.github import FakeGitHub
from tests.handlers.conftest import BOT, INSTALLATION, REPO, Bench, Json, finding_body

PR = 1  # the fixture's issue number: here a pull request
FINDING = 2  # a finding of PR 1
OTHERS = 3  # a finding of another pull request
USER = "Codertocat"  # the fixture comment's author
COMMENT = 492700400  # the fixture comment's id
REPLY = {"kind": "reply", "comment": COMMENT}


@pytest.fixture(autouse=True)
def repository(fake: FakeGitHub) -> None:
    """PR #1 with its finding #2, and #3, a finding of PR #9."""
    assert fake.add_pull("feature").number == PR
    fake.add_issue("F401 in app.py", finding_body(PR), labels=[FINDING_LABEL])
    fake.add_issue("F401 in lib.py", finding_body(9), labels=[FINDING_LABEL])


def comment(
    bench: Bench, body: str, *, on_pr: bool = True, sender: str = USER, type_: str = "User"
) -> Json:
    """`issue_comment.created`: `sender` says `body` on #1 (a PR unless `on_pr` is False)."""
    payload = bench.event("issue_comment.created")
    payload["comment"]["body"] = body
    payload["comment"]["user"] = {**payload["comment"]["user"], "login": sender, "type": type_}
    payload["sender"] = {**payload["sender"], "login": sender, "type": type_}
    if on_pr:
        payload["issue"]["pull_request"] = {"url": f"https://api.github.test/pulls/{PR}"}
    return payload


def flags(stopped: bool = False, force_audit: bool = False) -> tuple[bool, ...]:
    return (stopped, force_audit)


@pytest.mark.parametrize(
    ("body", "reply", "row_flags"),
    [
        pytest.param("@review-loop help", HELP, None, id="help"),
        pytest.param(
            "@review-loop status",
            "review-loop has not looked at this pull request yet: `@review-loop audit`.",
            None,
            id="status-before-any-audit",
        ),
        pytest.param(
            "@review-loop stop",
            "Stopped. No new fixes will start here until `@review-loop resume`.",
            flags(stopped=True),
            id="stop",
        ),
        pytest.param("@review-loop resume", "Resumed.", flags(force_audit=True), id="resume"),
        pytest.param("@review-loop audit", None, flags(force_audit=True), id="audit"),
        pytest.param("LGTM\n\n@review-loop AUDIT", None, flags(force_audit=True), id="any-line"),
        pytest.param("@review-loop fix", None, flags(force_audit=True), id="fix"),
        pytest.param(
            f"@review-loop fix #{FINDING}",
            f"#{FINDING} has no `agent:<name>` label naming an agent of the server's catalog: "
            "label it, then `@review-loop fix` it again.",
            None,
            id="fix-#n-without-an-agent",
        ),
        pytest.param(
            f"@review-loop retry #{FINDING}",
            RETRYING.format(n=FINDING),
            flags(force_audit=True),
            id="retry",
        ),
        pytest.param(
            "@review-loop deploy",
            "Unknown command `deploy`. Try `@review-loop help`.",
            None,
            id="unknown-verb",
        ),
        pytest.param(
            "@review-loop retyr #2",
            "Unknown command `retyr`. Did you mean `@review-loop retry`? Try `@review-loop help`.",
            None,
            id="misspelt-verb-did-you-mean",
        ),
        pytest.param(
            "@review-loop stauts",
            "Unknown command `stauts`. Did you mean `@review-loop status`? "
            "Try `@review-loop help`.",
            None,
            id="misspelt-status",
        ),
        pytest.param(
            "@review-loop", "Say what to do: try `@review-loop help`.", None, id="no-verb"
        ),
        pytest.param(
            "@review-loop retry",
            "`retry` needs an issue: `@review-loop retry #123`.",
            None,
            id="retry-without-issue",
        ),
        pytest.param(
            f"@review-loop waive #{FINDING}",
            "`waive` needs a reason: `@review-loop waive #123 false positive`.",
            None,
            id="waive-without-reason",
        ),
        pytest.param(
            f"@review-loop fix #{OTHERS}",
            NOT_TRACKED.format(n=OTHERS),
            None,
            id="fix-another-prs-finding",
        ),
        pytest.param(
            f"@review-loop retry #{OTHERS}",
            NOT_TRACKED.format(n=OTHERS),
            None,
            id="retry-another-prs-finding",
        ),
        pytest.param(
            f"@review-loop waive #{OTHERS} not ours",
            NOT_TRACKED.format(n=OTHERS),
            None,
            id="waive-another-prs-finding",
        ),
        pytest.param(
            f"@review-loop retry #{PR}", NOT_TRACKED.format(n=PR), None, id="retry-a-pull-request"
        ),
    ],
)
async def test_a_writers_command(
    bench: Bench, body: str, reply: str | None, row_flags: tuple[bool, ...] | None
) -> None:
    """A writer's command sets the PR's flags and queues its reconcile, or is answered (help,
    status, a mistake, an issue that is not this PR's finding) without touching the loop."""
    bench.fake.roles[USER] = "write"

    delivery = await bench.deliver("issue_comment.created", comment(bench, body))

    assert delivery.status == "done", delivery.outcome
    assert bench.replies(PR, "reply") == ([with_marker(REPLY, reply)] if reply else [])
    row = await bench.pr(PR)
    if row_flags is None:
        assert row is None
        assert await bench.reconciles() == []
    else:
        assert row is not None
        assert (row.stopped, row.force_audit) == row_flags
        assert await bench.reconciles() == [PR]


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        pytest.param(
            "waiting for review", "State: **fixing** (round 2). waiting for review", id="reason"
        ),
        pytest.param(None, "State: **fixing** (round 2).", id="no-reason"),
    ],
)
async def test_status_tells_where_the_loop_stands(
    bench: Bench, reason: str | None, expected: str
) -> None:
    """`status` on a PR the loop runs on answers with its state, round and reason."""
    bench.fake.roles[USER] = "admin"
    await bench.store.bump(REPO, PR, INSTALLATION)
    await bench.store.save_state(
        REPO, PR, state="fixing", reason=reason, round=2, audited_sha=None, summary={}
    )

    await bench.deliver("issue_comment.created", comment(bench, "@review-loop status"))

    assert bench.replies(PR, "reply") == [with_marker(REPLY, expected)]
    assert await bench.reconciles() == []


@pytest.mark.parametrize(
    "body",
    [
        pytest.param("@review-loop audit", id="audit"),
        pytest.param("@review-loop help", id="help"),
        pytest.param("@review-loop deploy", id="unknown-verb"),
    ],
)
@pytest.mark.parametrize(
    "role",
    [
        pytest.param("read", id="reader"),
        pytest.param("triage", id="triager"),
        pytest.param(None, id="stranger"),
    ],
)
async def test_a_command_from_someone_without_write_access_is_refused(
    bench: Bench, role: str | None, body: str
) -> None:
    """Only people who can push may command: anyone else gets the refusal, and nothing runs."""
    if role:
        bench.fake.roles[USER] = role

    delivery = await bench.deliver("issue_comment.created", comment(bench, body))

    assert delivery.status == "done", delivery.outcome
    assert bench.replies(PR, "reply") == [with_marker(REPLY, REFUSAL.format(user=USER))]
    assert await bench.pr(PR) is None
    assert await bench.reconciles() == []


async def test_a_command_on_an_issue_points_to_agent_labels(bench: Bench) -> None:
    """Commands work on pull requests; on an issue the writer is told to label it instead."""
    bench.fake.roles[USER] = "write"

    payload = comment(bench, "@review-loop fix", on_pr=False)
    await bench.deliver("issue_comment.created", payload)

    assert bench.replies(PR, "reply") == [with_marker(REPLY, NOT_A_PR)]
    assert await bench.reconciles() == []


@pytest.mark.parametrize(
    ("body", "sender", "type_", "status"),
    [
        pytest.param("Looks good to me!", USER, "User", "done", id="no-mention"),
        pytest.param(
            "Should we ask @review-loop audit first?", USER, "User", "done", id="mention-in-prose"
        ),
        pytest.param("@review-loop audit", BOT, "Bot", "ignored", id="the-bots-own-comment"),
        pytest.param("@review-loop audit", "ci[bot]", "Bot", "ignored", id="another-bot"),
    ],
)
async def test_comments_that_command_nothing_are_left_alone(
    bench: Bench, body: str, sender: str, type_: str, status: str
) -> None:
    """Comments that do not address the bot, and bots' comments (its own above all), make no
    GitHub call and queue nothing."""
    bench.fake.roles[sender] = "write"

    delivery = await bench.deliver(
        "issue_comment.created", comment(bench, body, sender=sender, type_=type_)
    )

    assert delivery.status == status, delivery.outcome
    assert bench.fake.requests == []
    assert await bench.reconciles() == []


async def test_a_repeated_command_gets_one_reply(bench: Bench) -> None:
    """The reply carries its command's id: the same command handled twice edits one reply."""
    bench.fake.roles[USER] = "write"
    payload = comment(bench, "@review-loop stop")

    await bench.deliver("issue_comment.created", payload)
    await bench.deliver("issue_comment.created", payload)

    assert len(bench.replies(PR, "reply")) == 1
    assert len(bench.fake.calls("POST", r"/issues/\d+/comments")) == 1


async def test_waive_closes_the_finding_as_accepted(bench: Bench) -> None:
    """`waive #n <reason>` labels the finding waived, says who waived it and why, closes it as
    not planned, and reconciles the PR; the PR gets no reply."""
    bench.fake.roles[USER] = "maintain"
    bench.fake.issues[FINDING].labels.append(NEEDS_HUMAN_LABEL)
    body = f"@review-loop waive #{FINDING} false positive: generated code"

    delivery = await bench.deliver("issue_comment.created", comment(bench, body))

    assert delivery.status == "done", delivery.outcome
    finding = bench.fake.issues[FINDING]
    assert WAIVED_LABEL in finding.labels
    assert NEEDS_HUMAN_LABEL not in finding.labels, "a waived finding needs nobody"
    assert (finding.state, finding.state_reason) == ("closed", "not_planned")
    note = WAIVED.format(user=USER, reason="false positive: generated code")
    assert bench.replies(FINDING, "waived") == [
        with_marker({"kind": "waived", "issue": FINDING}, note)
    ]
    assert bench.comments_on(PR) == []
    assert await bench.reconciles() == [PR]


async def test_a_waive_retried_after_a_github_error_notes_it_once(bench: Bench) -> None:
    """Dispatch retries a failed handler from the start; the waive note is still posted once."""
    bench.fake.roles[USER] = "write"
    bench.fake.inject(
        "PATCH", rf"/issues/{FINDING}", 403, {"message": "Resource not accessible by integration"}
    )
    payload = comment(bench, f"@review-loop waive #{FINDING} false positive")

    with pytest.raises(HandlerFailed):
        await bench.deliver("issue_comment.created", payload, delivery_id="w", final_attempt=False)
    retried = await bench.dispatch("w")

    assert retried.status == "done", retried.outcome
    assert bench.fake.issues[FINDING].state == "closed"
    assert len(bench.comments_on(FINDING)) == 1


@pytest.mark.parametrize(
    ("status", "message"),
    [
        pytest.param(404, "Not Found", id="never-existed"),
        pytest.param(410, "This issue was deleted", id="deleted"),
    ],
)
async def test_a_command_naming_a_missing_issue_is_answered(
    bench: Bench, status: int, message: str
) -> None:
    """`retry #999` where #999 does not exist (or was deleted) is answered: it is not this
    PR's finding."""
    bench.fake.roles[USER] = "write"
    bench.fake.inject("GET", r"/issues/999", status, {"message": message})

    delivery = await bench.deliver(
        "issue_comment.created", comment(bench, "@review-loop retry #999")
    )

    assert delivery.status == "done", delivery.outcome
    assert bench.replies(PR, "reply") == [with_marker(REPLY, NOT_TRACKED.format(n=999))]


async def add_task(bench: Bench, status: str, batch: list[int], failed: list[int]) -> TaskRow:
    """A task of PR #1 that worked on `batch` (or #2 alone) and ended `status`."""
    row = await bench.store.add_task(
        repo=REPO,
        pr_number=PR,
        issue_number=(batch or [FINDING])[0],
        installation_id=INSTALLATION,
        agent="ruff-fix",
        round=1,
        base_ref="feature",
        base_sha="a" * 40,
        branch=f"review-loop/pr-{PR}/{FINDING}",
        batch=batch,
    )
    assert row is not None
    await bench.store.update_task(row.id, status=status, failed=failed)
    return row


@pytest.mark.parametrize(
    ("status", "batch", "failed", "after"),
    [
        pytest.param("failed", [], [], ("retried", []), id="failed-task-forgiven"),
        pytest.param("conflict", [], [], ("retried", []), id="conflicted-task-forgiven"),
        pytest.param(
            "failed", [FINDING, 4], [], ("retried", [4]), id="failed-batch-keeps-other-failure"
        ),
        pytest.param(
            "merged", [FINDING, 4], [FINDING, 4], ("merged", [4]), id="merged-batch-forgives-one"
        ),
        pytest.param("running", [], [], ("running", []), id="running-task-left-alone"),
        pytest.param("merged", [], [], ("merged", []), id="fixed-task-left-alone"),
    ],
)
async def test_retry_forgives_the_issues_failure(
    bench: Bench, status: str, batch: list[int], failed: list[int], after: tuple[str, list[int]]
) -> None:
    """`retry #n` stops the issue's ended tasks from counting against it (a batch's other
    failures still count) and asks the loop to fix again."""
    bench.fake.roles[USER] = "write"
    task = await add_task(bench, status, batch, failed)

    body = f"@review-loop retry #{FINDING}"
    delivery = await bench.deliver("issue_comment.created", comment(bench, body))

    assert delivery.status == "done", delivery.outcome
    now = await bench.store.task(task.id)
    assert now is not None and (now.status, now.failed) == after
    row = await bench.pr(PR)
    assert row is not None and row.force_audit
    assert await bench.reconciles() == [PR]


async def test_fix_of_one_issue_starts_a_fix_of_just_that_issue(bench: Bench) -> None:
    """`fix #n` on a finding routed to an agent creates one task for #n alone, at the PR's
    head, queues it and says so; the loop is not reconciled (nothing else starts). Asked
    again while it runs, the writer is told it is under way."""
    bench.fake.roles[USER] = "write"
    bench.fake.issues[FINDING].labels.append("agent:ruff-fix")
    body = f"@review-loop fix #{FINDING}"

    delivery = await bench.deliver("issue_comment.created", comment(bench, body))

    assert delivery.status == "done", delivery.outcome
    [task] = await bench.tasks()
    pull = bench.fake.issues[PR].pull
    assert pull is not None
    assert (task.pr_number, task.issues, task.agent) == (PR, [FINDING], "ruff-fix")
    assert (task.base_ref, task.base_sha) == (pull.head_ref, pull.head_sha)
    assert await bench.fix_jobs() == [task.id]
    assert await bench.reconciles() == []
    reply = FIXING_ONE.format(n=FINDING, agent="ruff-fix")
    assert bench.replies(PR, "reply") == [with_marker(REPLY, reply)]

    again = comment(bench, body)
    again["comment"]["id"] = COMMENT + 1
    await bench.deliver("issue_comment.created", again)

    second = {"kind": "reply", "comment": COMMENT + 1}
    assert with_marker(second, f"A fix of #{FINDING} is already under way.") in bench.replies(
        PR, "reply"
    )
    assert len(await bench.tasks()) == 1


async def test_fix_of_one_issue_on_a_fork_pr_is_refused(bench: Bench) -> None:
    """Fork PRs are audit only: `fix #n` there makes no task and says why."""
    bench.fake.roles[USER] = "write"
    bench.fake.issues[FINDING].labels.append("agent:ruff-fix")
    pull = bench.fake.issues[PR].pull
    assert pull is not None
    pull.fork = "mallory/Hello-World"

    delivery = await bench.deliver(
        "issue_comment.created", comment(bench, f"@review-loop fix #{FINDING}")
    )

    assert delivery.status == "done", delivery.outcome
    assert await bench.tasks() == []
    assert await bench.fix_jobs() == []
    assert bench.replies(PR, "reply") == [with_marker(REPLY, FORK)]


async def test_fix_of_one_issue_already_tried_at_this_head_points_to_retry(bench: Bench) -> None:
    """A fix of #n that already ended at this head in this round is not made twice."""
    bench.fake.roles[USER] = "write"
    bench.fake.issues[FINDING].labels.append("agent:ruff-fix")
    pull = bench.fake.issues[PR].pull
    assert pull is not None
    row = await bench.store.add_task(
        repo=REPO,
        pr_number=PR,
        issue_number=FINDING,
        installation_id=INSTALLATION,
        agent="ruff-fix",
        round=1,
        base_ref=pull.head_ref,
        base_sha=pull.head_sha,
        branch=f"review-loop/pr-{PR}/{FINDING}",
    )
    assert row is not None
    await bench.store.update_task(row.id, status="failed")

    await bench.deliver("issue_comment.created", comment(bench, f"@review-loop fix #{FINDING}"))

    assert bench.replies(PR, "reply") == [with_marker(REPLY, ALREADY_TRIED.format(n=FINDING))]
    assert await bench.fix_jobs() == []


@pytest.mark.parametrize(
    ("config", "reply"),
    [
        pytest.param("extends: false\nbudget:\n  per_pr_usd: 10\n", "Resumed.", id="raised"),
        pytest.param(
            "extends: false\nbudget:\n  per_pr_usd: 1\n",
            "Resumed. But the budget is still reached, so no model run will start: budget "
            "`per_pr_usd` reached: $1.50 spent on this pull request of $1.00 allowed; no new "
            "model runs start. To go on, raise `budget.per_pr_usd` in `.github/review-loop.yml` "
            "on the default branch, then say `@review-loop resume`",
            id="not-raised",
        ),
    ],
)
async def test_resume_after_a_budget_says_whether_it_was_raised(
    bench: Bench, config: str, reply: str
) -> None:
    """`resume` on a PR the budget stopped goes on; while the config still holds it, the
    reply says so and how to raise it."""
    bench.fake.roles[USER] = "write"
    bench.fake.files[CONFIG_PATH] = config
    await bench.store.bump(REPO, PR, INSTALLATION)
    await bench.store.save_state(
        REPO, PR, state="needs-human", reason="budget `per_pr_usd` reached: ...", round=1,
        audited_sha=None, summary={},
    )  # fmt: skip
    spent = ModelCall("fixer", "m", "fix", 10, 10, 1.5, 1.0, 1)
    await ModelStore(bench.fleet.runtime.pool).record_calls([spent], repo=REPO, pr_number=PR)

    await bench.deliver("issue_comment.created", comment(bench, "@review-loop resume"))

    assert bench.replies(PR, "reply") == [with_marker(REPLY, reply)]
    assert await bench.reconciles() == [PR]


async def test_resume_while_the_installation_cap_is_reached_says_so(bench: Bench) -> None:
    """`resume` on a PR the operator's installation cap stopped goes on (the reconcile will
    say it again), and the reply names the cap and how it is raised."""
    bench.fake.roles[USER] = "write"
    bench.fake.files[CONFIG_PATH] = "extends: false\n"
    bench.fleet.runtime.settings = bench.fleet.runtime.settings.model_copy(
        update={"installation_daily_usd": 1.0}
    )
    await bench.store.bump(REPO, PR, INSTALLATION)
    await bench.store.save_state(
        REPO, PR, state="needs-human", round=1, audited_sha=None, summary={},
        reason="installation budget `REVIEW_LOOP_INSTALLATION_DAILY_USD` reached: ...",
    )  # fmt: skip
    spent = ModelCall("fixer", "m", "fix", 10, 10, 1.5, 1.0, 1)
    await ModelStore(bench.fleet.runtime.pool).record_calls(
        [spent], repo="acme/other", pr_number=3, installation_id=INSTALLATION
    )

    await bench.deliver("issue_comment.created", comment(bench, "@review-loop resume"))

    [reply] = bench.replies(PR, "reply")
    assert "Resumed. But the budget is still reached" in reply
    assert "`REVIEW_LOOP_INSTALLATION_DAILY_USD` reached: $1.50 spent today (UTC)" in reply
    assert await bench.reconciles() == [PR]
