"""The hardening rules for docker-compose.yml, on the configuration Compose resolves."""

import copy
from collections.abc import Callable
from typing import Any

import pytest

from deploy.compose_rules import violations

HARDENED: dict[str, Any] = {
    "read_only": True,
    "tmpfs": ["/tmp:size=2g,mode=1777"],
    "cap_drop": ["ALL"],
    "security_opt": ["no-new-privileges:true"],
    "build": {"context": "..", "dockerfile": "deploy/Dockerfile"},
}
KEY = {"source": "review-loop-private-key", "target": "/run/secrets/review-loop-private-key"}


def resolved() -> dict[str, Any]:
    """A resolved configuration in the shape of `docker compose config --format json`."""
    worker = copy.deepcopy(HARDENED) | {"secrets": [KEY], "group_add": ["1000"]}
    return {
        "services": {
            "postgres": {"image": "postgres:16"},
            "web": copy.deepcopy(HARDENED),
            "worker": worker,
        }
    }


Change = Callable[[dict[str, Any]], None]
BREAKS: list[tuple[str, Change, str]] = [
    ("writable-root", lambda c: c["services"]["web"].pop("read_only"), "web: read_only"),
    ("no-tmp", lambda c: c["services"]["web"].pop("tmpfs"), "web: /tmp must be a tmpfs"),
    ("capabilities-kept", lambda c: c["services"]["worker"].pop("cap_drop"), "worker: cap_drop"),
    (
        "escalation-allowed",
        lambda c: c["services"]["worker"].pop("security_opt"),
        "no-new-privileges",
    ),
    ("privileged", lambda c: c["services"]["web"].update(privileged=True), "web: privileged"),
    ("root-user", lambda c: c["services"]["worker"].update(user="0"), "worker: user"),
    ("worker-without-key", lambda c: c["services"]["worker"].pop("secrets"), "needs the secret"),
    ("worker-not-in-key-group", lambda c: c["services"]["worker"].pop("group_add"), "group_add"),
    (
        "web-gets-the-key",
        lambda c: c["services"]["web"].update(secrets=[KEY]),
        "web: must not get the private key",
    ),
    ("nothing-built-here", lambda c: c.update(services={"postgres": {}}), "nothing was checked"),
]


def test_the_hardened_configuration_passes() -> None:
    """Hardened web and worker services (and a third-party image) break no rule."""
    assert violations(resolved()) == []


@pytest.mark.parametrize(
    ("change", "expected"), [b[1:] for b in BREAKS], ids=[b[0] for b in BREAKS]
)
def test_each_loosening_is_reported(change: Change, expected: str) -> None:
    """One change to the hardened configuration yields a violation naming service and rule."""
    config = resolved()
    change(config)
    found = violations(config)
    assert any(expected in v for v in found), found
