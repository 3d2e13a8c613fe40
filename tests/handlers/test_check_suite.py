""" "Re-run all checks" (check_suite rerequested) audits again each tracked PR the suite is
about, a fork's found by the head the loop last audited; no GitHub call is made."""

import pytest

from tests.handlers.conftest import INSTALLATION, REPO, Bench, Json

TRACKED = 5
OTHER = 6
AUDITED_AT = "d" * 40


def suite_payload(bench: Bench, listed: list[int], head_sha: str) -> Json:
    payload = bench.event("check_suite.rerequested")
    # The fixture's sender is the linter App that re-requested its own suite; here a person
    # pressed "Re-run all checks" (an event from another bot is ignored, as it should be).
    payload["sender"] = bench.event("check_run.rerequested")["sender"]
    suite = payload["check_suite"]
    template = suite["pull_requests"][0]
    suite["head_sha"] = head_sha
    suite["pull_requests"] = [{**template, "number": n} for n in listed]
    return payload


@pytest.mark.parametrize(
    ("listed", "head_sha", "reaudited"),
    [
        pytest.param([TRACKED], "e" * 40, [TRACKED], id="listed-pr"),
        pytest.param([OTHER, TRACKED], "e" * 40, [TRACKED], id="only-tracked-prs"),
        pytest.param([], AUDITED_AT, [TRACKED], id="fork-pr-found-by-audited-head"),
        pytest.param([], "e" * 40, [], id="no-pr-audited-at-that-head"),
    ],
)
async def test_rerunning_all_checks_reaudits_the_pull_request(
    bench: Bench, listed: list[int], head_sha: str, reaudited: list[int]
) -> None:
    await bench.store.bump(REPO, TRACKED, INSTALLATION)
    await bench.store.save_state(
        REPO, TRACKED, state="ready", reason=None, round=1, audited_sha=AUDITED_AT, summary={}
    )

    delivery = await bench.deliver(
        "check_suite.rerequested", suite_payload(bench, listed, head_sha)
    )

    assert delivery.status == "done", delivery.outcome
    assert await bench.reconciles() == reaudited
    row = await bench.pr(TRACKED)
    assert row is not None and row.force_audit == bool(reaudited)
    assert await bench.pr(OTHER) is None
    assert bench.fake.requests == []
