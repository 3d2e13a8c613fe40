"""Conditional requests, as GitHub answers them: an ETag on every read, 304 Not Modified
(which costs no rate limit) while it still names the answer, and a new ETag once it changed;
the bot's `ConditionalTransport` turns a 304 back into the answer it kept."""

import asyncio
from typing import Any

import httpx

from bot.github.conditional import AnswerCache, Answers, ConditionalTransport, Kept
from tests.sandbox.conftest import REPO, World, installation_token


def test_a_read_sent_with_its_etag_is_not_modified_until_it_changes(world: World) -> None:
    """The second read with the first's ETag is a 304 without a body that leaves the rate
    limit as it was; after an edit the same ETag gets the new answer."""
    headers = {"Authorization": f"token {installation_token(world)}"}
    url = f"{world.sandbox.api_url}repos/{REPO}/issues/1"
    world.driver.file_issue(REPO, "A bug", as_user="alice")
    with httpx.Client(headers=headers) as http:
        first = http.get(url)
        again = http.get(url, headers={"If-None-Match": first.headers["etag"]})
        world.driver.edit_issue(REPO, 1, as_user="alice", title="A worse bug")
        changed = http.get(url, headers={"If-None-Match": first.headers["etag"]})

    assert first.status_code == 200 and first.headers["etag"].startswith('W/"')
    assert again.status_code == 304 and again.content == b""
    assert again.headers["x-ratelimit-used"] == first.headers["x-ratelimit-used"]
    assert changed.status_code == 200 and changed.json()["title"] == "A worse bug"
    assert changed.headers["etag"] != first.headers["etag"]


async def test_the_transport_answers_a_304_with_the_answer_it_kept(world: World) -> None:
    """Through `ConditionalTransport` a repeated read is sent conditionally and still reads
    as the 200 it was; a changed one reads as the new answer."""
    world.driver.file_issue(REPO, "A bug", as_user="alice")
    answers = Answers()
    seen: list[int] = []

    transport = ConditionalTransport(_Recording(httpx.AsyncHTTPTransport(), seen), answers)
    headers = {"Authorization": f"token {installation_token(world)}"}
    url = f"{world.sandbox.api_url}repos/{REPO}/issues/1"
    async with httpx.AsyncClient(transport=transport, headers=headers) as http:
        first = (await http.get(url)).json()
        again = await http.get(url)
        await _edit(world)
        changed = (await http.get(url)).json()

    assert seen == [200, 304, 200], "what the sandbox answered"
    assert again.status_code == 200 and again.json() == first
    assert answers.not_modified == 1
    assert changed["title"] == "A worse bug"


class _Recording(httpx.AsyncBaseTransport):
    """Notes the status of every answer `inner` gets (before `ConditionalTransport` sees it)."""

    def __init__(self, inner: httpx.AsyncBaseTransport, seen: list[int]) -> None:
        self.inner = inner
        self.seen = seen

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        self.seen.append(response.status_code)
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


async def _edit(world: World) -> Any:
    return await asyncio.to_thread(
        world.driver.edit_issue, REPO, 1, as_user="alice", title="A worse bug"
    )


def test_answers_keep_the_most_recently_used_within_their_size() -> None:
    """Past `max_bytes` the least recently used answers go; one too big is not kept."""
    answers = Answers(max_bytes=10)
    for name in ("a", "b", "c"):
        answers.put((name, ""), Kept(f'"{name}"', [], b"1234"))
    assert answers.get(("a", "")) is None
    answers.get(("b", ""))
    answers.put(("d", ""), Kept('"d"', [], b"1234"))
    answers.put(("e", ""), Kept('"e"', [], b"12345678901"))

    assert [k for k in ("a", "b", "c", "d", "e") if answers.get((k, ""))] == ["b", "d"]


def test_all_installations_answers_are_capped_together() -> None:
    """Past the process-wide `max_bytes` the least recently used answer of any installation
    goes; one installation stays within `per_installation` of its own."""
    cache = AnswerCache(max_bytes=10, per_installation=8)
    one, two, three = (cache.installation(n) for n in (1, 2, 3))
    assert cache.installation(1) is one
    one.put(("a", ""), Kept('"a"', [], b"1234"))
    two.put(("b", ""), Kept('"b"', [], b"1234"))
    one.get(("a", ""))  # now more recently used than two's
    three.put(("c", ""), Kept('"c"', [], b"1234"))

    assert (one.get(("a", "")), two.get(("b", ""))) == (Kept('"a"', [], b"1234"), None)
    assert (cache.bytes, cache.bytes_of(2)) == (8, 0)

    one.put(("d", ""), Kept('"d"', [], b"12345"))  # one's 9 bytes > 8: its own oldest goes
    assert [one.get((k, "")) is not None for k in "ad"] == [False, True]
    assert three.get(("c", "")) is not None
    assert (cache.bytes, cache.bytes_of(1), cache.bytes_of(3)) == (9, 5, 4)
