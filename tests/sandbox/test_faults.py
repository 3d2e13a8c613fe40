"""Fault switches change what a client sees, repeatably, and are counted."""

import time
from typing import Any

import httpx
import pytest
from githubkit import GitHub
from githubkit.exception import RequestFailed, SecondaryRateLimitExceeded

from tests.sandbox.conftest import REPO, Receiver, World, app_client

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


def test_faults_are_repeatable_with_a_seed(world: World, bot: GitHub[Any]) -> None:
    """The same seed and rate give the same sequence of failures."""

    def pattern() -> list[int]:
        world.driver.set_faults(seed=42, server_error_rate=0.5)
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
