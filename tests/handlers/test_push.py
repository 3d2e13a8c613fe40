"""A push to the default branch that changes `.github/review-loop.yml` reconciles again the
open PRs the loop knows there; any other push changes nothing and asks GitHub nothing."""

import pytest

from bot.repo_config import CONFIG_PATH
from tests.handlers.conftest import INSTALLATION, Bench, Json

DEFAULT = "master"  # the default branch of the fixture's repository


def push(
    bench: Bench,
    *,
    branch: str = DEFAULT,
    added: tuple[str, ...] = (),
    modified: tuple[str, ...] = (),
    removed: tuple[str, ...] = (),
    forced: bool = False,
) -> Json:
    payload = bench.event("push")
    payload["ref"] = f"refs/heads/{branch}"
    payload["forced"] = forced
    commit = payload["commits"][0]
    commit["added"], commit["modified"], commit["removed"] = [*added], [*modified], [*removed]
    return payload


@pytest.mark.parametrize(
    ("change", "reconciled"),
    [
        pytest.param({"added": (CONFIG_PATH,)}, True, id="config-added"),
        pytest.param({"modified": (CONFIG_PATH, "README.md")}, True, id="config-mended"),
        pytest.param({"removed": (CONFIG_PATH,)}, True, id="config-removed"),
        pytest.param({"added": ("README.md",), "forced": True}, True, id="forced-push"),
        pytest.param({"modified": ("README.md",)}, False, id="config-untouched"),
        pytest.param(
            {"added": (CONFIG_PATH,), "branch": "feature"}, False, id="not-the-default-branch"
        ),
    ],
)
async def test_a_config_change_reconciles_the_open_prs_the_loop_knows(
    bench: Bench, change: dict[str, object], reconciled: bool
) -> None:
    tracked = bench.fake.add_pull("feature-a")
    untracked = bench.fake.add_pull("feature-b")
    closed = bench.fake.add_pull("feature-c", state="closed")
    for pull in (tracked, closed):
        await bench.store.bump(bench.fake.full_name, pull.number, INSTALLATION)
    await bench.store.mark_handled(bench.fake.full_name, tracked.number, 1)
    await bench.store.mark_handled(bench.fake.full_name, closed.number, 1)

    delivery = await bench.deliver("push", push(bench, **change))  # type: ignore[arg-type]

    assert delivery.status == "done", delivery.outcome
    assert await bench.reconciles() == ([tracked.number] if reconciled else [])
    assert await bench.pr(untracked.number) is None
    if not reconciled:
        assert bench.fake.requests == []
