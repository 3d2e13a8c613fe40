"""No worker asleep in the write throttle: a job whose installation may not write for a
while gives its worker back, and other installations' PRs get their feedback meanwhile."""

import asyncio
from pathlib import Path
from typing import Any

import pytest

from bot.demo.stack import local_stack
from tests.e2e.scenario import PYPROJECT, poll

pytestmark = pytest.mark.slow

AUTHOR = "alice"
FINDING = '"""A."""\n\nimport os\n\n\ndef a() -> str:\n    return "a"\n'
HELD_S = 120.0  # how long installation A may not write (the throttle's longest pause)


def _repo(driver: Any, owner: str) -> int:
    repo = f"{owner}/shop"
    driver.create_org(owner)
    driver.create_repo(
        repo, {"pyproject.toml": PYPROJECT, "shop/__init__.py": '"""Shop."""\n'}, author=AUTHOR
    )
    driver.set_permission(repo, AUTHOR, "write")
    return driver.install_app(owner, sender=AUTHOR)


def _open(driver: Any, repo: str, branch: str) -> dict[str, Any]:
    driver.push(repo, branch, {f"shop/{branch}.py": FINDING}, as_user=AUTHOR, message=branch)
    pr: dict[str, Any] = driver.open_pr(repo, branch, as_user=AUTHOR, title=branch)
    return pr


async def test_a_second_installations_pr_is_audited_while_the_first_may_not_write(
    workdir: Path, e2e_db: str
) -> None:
    """With 2 worker slots, installation A's writes held for two minutes and two PRs of A
    opened first, a PR of installation B gets its check run and its finding's issue; A's
    reconciles were handed back to the queue, not left asleep in the throttle."""
    async with local_stack(
        workdir, database_url=e2e_db, worker_concurrency=2, write_defer_after_s=1.0
    ) as stack:
        driver = stack.sandbox.driver

        def setup() -> int:
            driver.create_user(AUTHOR)
            a = _repo(driver, "acme")
            _repo(driver, "bolt")
            return a

        installation_a = await asyncio.to_thread(setup)
        throttle_a = stack.runtime.github.throttles.for_installation(installation_a)
        await throttle_a.pause(HELD_S)  # as after GitHub's retry-after on a refused write
        a1 = await asyncio.to_thread(_open, driver, "acme/shop", "one")
        a2 = await asyncio.to_thread(_open, driver, "acme/shop", "two")
        b = await asyncio.to_thread(_open, driver, "bolt/shop", "three")

        def b_fed_back() -> bool:
            runs = driver.check_runs("bolt/shop", b["head"]["sha"])
            issues = [i for i in driver.issues("bolt/shop") if "pull_request" not in i]
            return bool(runs) and bool(issues)

        await poll(b_fed_back, timeout=HELD_S * 0.75, what="PR of installation B audited")
        a_runs = await asyncio.to_thread(
            lambda: [driver.check_runs("acme/shop", pr["head"]["sha"]) for pr in (a1, a2)]
        )
        deferred = throttle_a.stats().deferred

    assert a_runs == [[], []]  # A wrote nothing yet: its writes really were held
    assert deferred >= 2  # both of A's reconciles handed their worker back
