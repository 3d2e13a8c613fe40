"""Fault switches change what a client sees, repeatably, and are counted."""

import time
from typing import Any

import httpx
import pytest
from githubkit import GitHub
from githubkit.exception import (
    RequestError,
    RequestFailed,
    RequestTimeout,
    SecondaryRateLimitExceeded,
)

from tests.sandbox.conftest import REPO, Receiver, World, app_client, bot_client

OWNER, NAME = REPO.split("/")


def test_server_errors_answer_502(world: World, bot: GitHub[Any]) -> None:
    """With a 5xx rate of 1, every API request gets 502, while the driver's humans are spared."""
    bot.rest.repos.get(OWNER, NAME)  # the installation token, before things break
    world.driver.set_faults(server_error_rate=1.0)
    with pytest.raises(RequestFailed) as error:
        bot.rest.repos.get(OWNER, NAME)
    assert error.value.response.status_code == 502
    assert world.driver.repo(REPO)["name"] == NAME
    assert world.driver.fault_stats()["injected"] == {"server_error": 1}


def test_secondary_rate_limit_answers_403_with_retry_after(world: World, bot: GitHub[Any]) -> None:
    """The secondary limit answers 403, GitHub's message and a `retry-after` header."""
    bot.rest.repos.get(OWNER, NAME)
    world.driver.set_faults(secondary_rate_limit_rate=1.0, retry_after_s=7)
    with pytest.raises(SecondaryRateLimitExceeded) as error:
        bot.rest.issues.create(OWNER, NAME, title="t")
    response = error.value.response
    assert response.status_code == 403
    assert response.headers["retry-after"] == "7"
    assert "exceeded a secondary rate limit" in response.json()["message"]
    assert world.driver.issues(REPO) == []


def test_base_modified_refuses_the_next_merges_then_merges(world: World, bot: GitHub[Any]) -> None:
    """`base_modified_merges: 1`: the next merge answers 405 "Base branch was modified" and
    changes nothing; the one after merges."""
    driver = world.driver
    driver.push(REPO, "feature", {"f.py": "x = 1\n"}, as_user="alice")
    number = driver.open_pr(REPO, "feature", as_user="alice")["number"]
    driver.set_faults(base_modified_merges=1)
    with pytest.raises(RequestFailed) as error:
        bot.rest.pulls.merge(OWNER, NAME, number)
    assert error.value.response.status_code == 405
    assert "Base branch was modified" in error.value.response.json()["message"]
    assert driver.pull(REPO, number)["merged_at"] is None
    assert bot.rest.pulls.merge(OWNER, NAME, number).parsed_data.merged
    assert driver.fault_stats()["injected"] == {"base_modified": 1}


def test_latency_slows_every_request_by_at_least_the_setting(
    world: World, bot: GitHub[Any]
) -> None:
    """Added latency delays a request by at least the configured amount."""
    world.driver.set_faults(latency_s=0.2)
    started = time.monotonic()
    bot.rest.repos.get(OWNER, NAME)
    assert time.monotonic() - started >= 0.2
    assert world.driver.fault_stats()["injected"]["latency"] >= 1


def test_the_81st_content_creation_in_a_minute_is_refused(world: World, bot: GitHub[Any]) -> None:
    """With the creation limit on, 80 creates in a minute pass and the 81st gets 403."""
    world.driver.set_faults(enforce_creation_limit=True)
    number = bot.rest.issues.create(OWNER, NAME, title="t").parsed_data.number
    for n in range(79):
        bot.rest.issues.create_comment(OWNER, NAME, number, body=f"c{n}")
    with pytest.raises(RequestFailed) as error:
        bot.rest.issues.create_comment(OWNER, NAME, number, body="one too many")
    assert error.value.response.status_code == 403
    assert "retry-after" in error.value.response.headers
    assert bot.rest.issues.get(OWNER, NAME, number).parsed_data.comments == 79
    world.driver.advance_clock(61)
    assert bot.rest.issues.create_comment(OWNER, NAME, number, body="later").parsed_data.id


def test_dropped_webhooks_are_logged_and_redeliverable(world: World, receiver: Receiver) -> None:
    """A dropped delivery never arrives, shows as failed in the log and redelivery brings it."""
    world.sandbox.wait_for_deliveries()
    world.driver.set_faults(drop_webhook_rate=1.0)
    world.driver.file_issue(REPO, "lost", as_user="alice")
    world.sandbox.wait_for_deliveries()
    assert receiver.of("issues") == []
    world.driver.set_faults()
    github = app_client(world.sandbox)
    [dropped] = github.rest.apps.list_webhook_deliveries(status="failure").parsed_data
    assert (dropped.event, dropped.status_code) == ("issues", 0)
    github.rest.apps.redeliver_webhook_delivery(dropped.id)
    world.sandbox.wait_for_deliveries()
    [arrived] = receiver.of("issues", "opened")
    assert arrived.guid == dropped.guid


def test_duplicated_webhooks_arrive_twice_with_one_delivery_id(
    world: World, receiver: Receiver
) -> None:
    """A duplicated delivery reaches the receiver twice with the same `X-GitHub-Delivery`."""
    world.sandbox.wait_for_deliveries()
    world.driver.set_faults(duplicate_webhook_rate=1.0)
    world.driver.file_issue(REPO, "twice", as_user="alice")
    world.sandbox.wait_for_deliveries()
    first, second = receiver.of("issues", "opened")
    assert first.guid == second.guid


@pytest.mark.parametrize(
    "faults",
    [
        pytest.param({"seed": 42, "server_error_rate": 0.5}, id="global-rate"),
        pytest.param(
            {"seed": 7, "rules": [{"fault": "lost_answer", "rate": 0.5, "route": "^GET "}]},
            id="rule",
        ),
    ],
)
def test_faults_are_repeatable_with_a_seed(world: World, faults: dict[str, Any]) -> None:
    """A rate (global or a rule's) draws from the seeded source: the same seed gives the
    same sequence of failures."""

    def pattern() -> list[int]:
        world.driver.set_faults(**faults)
        url = f"{world.sandbox.api_url}repos/{REPO}"
        token = world.driver.token("alice")
        return [
            httpx.get(url, headers={"Authorization": f"token {token}"}).status_code
            for _ in range(12)
        ]

    first = pattern()
    assert first == pattern()
    assert {200, 502} == set(first)


def test_unknown_fault_settings_are_refused(world: World) -> None:
    """`POST /_sandbox/faults` answers 422 for a setting it does not know."""
    answer = httpx.post(f"{world.sandbox.url}/_sandbox/faults", json={"chaos": 1})
    assert answer.status_code == 422


def _issue_titles(world: World) -> list[str]:
    return [issue["title"] for issue in world.driver.issues(REPO)]


def test_a_lost_answer_applies_the_write_then_answers_502(world: World, bot: GitHub[Any]) -> None:
    """`lost_answer` on the issue create: the issue exists, the client got a 502."""
    bot.rest.repos.get(OWNER, NAME)
    world.driver.set_faults(rules=[{"fault": "lost_answer", "route": r"^POST /repos/.*/issues$"}])
    bot.rest.repos.get(OWNER, NAME)  # other routes are spared
    with pytest.raises(RequestFailed) as error:
        bot.rest.issues.create(OWNER, NAME, title="applied")
    assert error.value.response.status_code == 502
    assert _issue_titles(world) == ["applied"]
    assert world.driver.fault_stats()["injected"] == {"lost_answer": 1}


def test_a_reset_applies_the_write_then_drops_the_connection(
    world: World, bot: GitHub[Any]
) -> None:
    """`reset`: the comment is made, the client sees the connection go away mid-answer."""
    number = bot.rest.issues.create(OWNER, NAME, title="t").parsed_data.number
    world.driver.set_faults(rules=[{"fault": "reset", "route": "/comments$", "writes": True}])
    with pytest.raises(RequestError) as error:
        bot.rest.issues.create_comment(OWNER, NAME, number, body="made")
    assert not isinstance(error.value, RequestFailed)
    assert isinstance(error.value.exc, httpx.RemoteProtocolError)
    [comment] = bot.rest.issues.list_comments(OWNER, NAME, number).parsed_data
    assert comment.body == "made"


def test_a_slow_answer_times_the_client_out_after_the_write(world: World) -> None:
    """`slow`: the answer is held past the client's timeout; the write was made."""
    # githubkit's HTTP cache (hishel) does not honour the timeout: the bot turns it off too.
    bot = bot_client(world, auto_retry=False, timeout=0.5, http_cache=False)
    bot.rest.repos.get(OWNER, NAME)
    world.driver.set_faults(slow_s=5, rules=[{"fault": "slow", "writes": True}])
    with pytest.raises(RequestTimeout):
        bot.rest.issues.create(OWNER, NAME, title="late")
    assert _issue_titles(world) == ["late"]


def test_a_secondary_limit_on_writes_spares_reads(world: World, bot: GitHub[Any]) -> None:
    """A `secondary_rate_limit` rule with `writes`: reads pass, a create gets 403 and
    `retry-after`, and nothing is created."""
    bot.rest.repos.get(OWNER, NAME)
    world.driver.set_faults(
        retry_after_s=3, rules=[{"fault": "secondary_rate_limit", "writes": True}]
    )
    assert bot.rest.issues.list_for_repo(OWNER, NAME).parsed_data == []
    with pytest.raises(SecondaryRateLimitExceeded) as error:
        bot.rest.issues.create(OWNER, NAME, title="refused")
    assert error.value.response.headers["retry-after"] == "3"
    assert _issue_titles(world) == []


def test_a_burst_fails_the_next_requests_of_its_route_then_stops(
    world: World, bot: GitHub[Any]
) -> None:
    """A 5xx burst: once it fires, `burst` more matching requests fail; `limit` ends it."""
    bot.rest.repos.get(OWNER, NAME)
    world.driver.set_faults(
        rules=[{"fault": "server_error", "route": "^GET /repos/", "burst": 2, "limit": 3}]
    )
    statuses = []
    for _ in range(5):
        try:
            statuses.append(bot.rest.repos.get(OWNER, NAME).status_code)
        except RequestFailed as exc:
            statuses.append(exc.response.status_code)
    assert statuses == [502, 502, 502, 200, 200]


def test_an_unknown_fault_kind_is_refused(world: World) -> None:
    answer = httpx.post(
        f"{world.sandbox.url}/_sandbox/faults", json={"rules": [{"fault": "meteor"}]}
    )
    assert answer.status_code == 422
