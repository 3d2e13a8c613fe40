"""Installation events: the log says who installed, removed or suspended the App."""

import logging

import pytest

from tests.handlers.conftest import INSTALLATION, Bench


@pytest.mark.parametrize(
    ("action", "named", "logged"),
    [
        pytest.param("created", True, "created on Codertocat", id="installed"),
        pytest.param("deleted", True, "deleted on Codertocat", id="removed"),
        pytest.param("suspend", False, "suspend on ?", id="account-not-named"),
    ],
)
async def test_installation_changes_are_logged(
    bench: Bench, caplog: pytest.LogCaptureFixture, action: str, named: bool, logged: str
) -> None:
    """An installation event is logged with its installation, action and account, and asks
    nothing of GitHub or the loop."""
    payload = bench.event("installation.created")
    payload["action"] = action
    if not named:
        del payload["installation"]["account"]

    with caplog.at_level(logging.INFO, logger="handlers"):
        delivery = await bench.deliver(f"installation.{action}", payload)

    assert delivery.status == "done", delivery.outcome
    messages = [r.getMessage() for r in caplog.records if r.name == "handlers"]
    assert messages == [f"installation: installation {INSTALLATION} {logged}"]
    assert bench.fake.requests == []
    assert await bench.reconciles() == []
