"""The heartbeat file a running process touches and a liveness probe reads."""

import asyncio
import os
from pathlib import Path

import pytest

from bot.liveness import heartbeat, heartbeat_path, stale_reason, touch

NOW = 1_800_000_000.0


@pytest.mark.parametrize(
    ("age_s", "alive"),
    [(0, True), (59, True), (61, False), (3600, False)],
    ids=["just-touched", "within-max-age", "past-max-age", "an-hour-old"],
)
def test_a_heartbeat_is_alive_only_within_its_max_age(
    tmp_path: Path, age_s: float, alive: bool
) -> None:
    """A heartbeat older than the max age is stale and the reason gives its age."""
    path = heartbeat_path(tmp_path)
    touch(path)
    os.utime(path, (NOW - age_s, NOW - age_s))
    reason = stale_reason(path, max_age_s=60, now=NOW)
    if alive:
        assert reason is None
    else:
        assert reason is not None
        assert f"{age_s:.0f} s old" in reason


def test_a_missing_heartbeat_is_not_alive(tmp_path: Path) -> None:
    """No file means no live process, and the reason names the file."""
    path = heartbeat_path(tmp_path)
    reason = stale_reason(path, max_age_s=60, now=NOW)
    assert reason is not None
    assert str(path) in reason


async def test_the_heartbeat_is_touched_at_once_again_while_running_and_removed_after(
    tmp_path: Path,
) -> None:
    """Entering the block touches the file, the loop keeps touching it, leaving removes it."""
    path = heartbeat_path(tmp_path / "data")
    async with heartbeat(path, interval_s=0):
        assert path.exists()
        os.utime(path, (NOW - 3600, NOW - 3600))

        async def touched_again() -> None:
            while path.stat().st_mtime == NOW - 3600:
                await asyncio.sleep(0)

        await asyncio.wait_for(touched_again(), timeout=10)
    assert not path.exists()
