"""What a worker's jobs share: one fix PR merge at a time per PR branch."""

import asyncio

from bot.loop.fleet import Fleet


async def test_merges_into_one_pr_branch_take_turns_and_other_branches_do_not_wait(
    fleet: Fleet,
) -> None:
    order: list[str] = []
    inside = asyncio.Event()
    release = asyncio.Event()

    async def first() -> None:
        async with fleet.merging("acme/shop", "change"):
            order.append("first in")
            inside.set()
            await release.wait()
            order.append("first out")

    async def second() -> None:
        await inside.wait()
        async with fleet.merging("acme/shop", "change"):
            order.append("second in")

    async def elsewhere() -> None:
        await inside.wait()
        async with fleet.merging("acme/shop", "other"):
            order.append("other branch in")
        release.set()

    await asyncio.gather(first(), second(), elsewhere())
    assert order == ["first in", "other branch in", "first out", "second in"]
    assert fleet._merges == {}, "a branch no merge waits for keeps no lock"
