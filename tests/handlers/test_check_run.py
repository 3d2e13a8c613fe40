"""Check run buttons: "Re-run" and the "Re-audit" action audit the PR the run is about again,
including a fork's PR, which GitHub does not list on the run."""

import pytest

from bot.loop.report import CHECK_NAME
from tests.handlers.conftest import INSTALLATION, REPO, Bench, Json
from tests.support import load_event

TRACKED = 5  # a PR the loop runs on
OTHER = 6  # a PR the loop never looked at
AUDITED_AT = "d" * 40


def listed_pull(number: int) -> Json:
    """A check run's `pull_requests` entry for PR `number`, as GitHub lists it."""
    template: Json = load_event("check_run.requested_action")["check_run"]["pull_requests"][0]
    return {**template, "number": number}


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("check_run.rerequested", id="re-run"),
        pytest.param("check_run.requested_action", id="re-audit-button"),
    ],
)
@pytest.mark.parametrize(
    ("run_name", "listed", "head_sha", "reaudited"),
    [
        pytest.param(CHECK_NAME, [TRACKED], "e" * 40, [TRACKED], id="listed-pr"),
        pytest.param(CHECK_NAME, [OTHER, TRACKED], "e" * 40, [TRACKED], id="only-tracked-prs"),
        pytest.param(CHECK_NAME, [OTHER], AUDITED_AT, [], id="untracked-pr"),
        pytest.param(CHECK_NAME, [], AUDITED_AT, [TRACKED], id="fork-pr-found-by-audited-head"),
        pytest.param(CHECK_NAME, [], "e" * 40, [], id="fork-head-no-pr-was-audited-at"),
        pytest.param(CHECK_NAME, [], "", [], id="no-pr-and-no-head"),
        pytest.param("API Review", [TRACKED], AUDITED_AT, [], id="another-check"),
    ],
)
async def test_rerunning_the_check_reaudits_the_pull_request(
    bench: Bench, name: str, run_name: str, listed: list[int], head_sha: str, reaudited: list[int]
) -> None:
    """Re-running the bot's check (or pressing its button) forces a new audit of each tracked
    PR the run is about; for a fork's head, found as the PR last audited at that commit.
    No GitHub call is made."""
    await bench.store.bump(REPO, TRACKED, INSTALLATION)
    await bench.store.save_state(
        REPO, TRACKED, state="ready", reason=None, round=1, audited_sha=AUDITED_AT, summary={}
    )
    payload = bench.event(name)
    run = payload["check_run"]
    run["name"], run["head_sha"] = run_name, head_sha
    run["pull_requests"] = [listed_pull(n) for n in listed]

    delivery = await bench.deliver(name, payload)

    assert delivery.status == "done", delivery.outcome
    assert await bench.reconciles() == reaudited
    row = await bench.pr(TRACKED)
    assert row is not None and row.force_audit == bool(reaudited)
    assert await bench.pr(OTHER) is None
    assert bench.fake.requests == []
