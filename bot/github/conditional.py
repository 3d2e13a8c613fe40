"""Conditional reads: a GET asked again is sent with the `ETag` of its last answer.

GitHub answers 304 Not Modified when nothing changed, and a 304 does not count against the
rate limit (docs.github.com, "Use conditional requests if appropriate"). The answer is then
the kept one, so a reconcile that reads a PR, its issues and its check runs again after a
few seconds costs its installation's rate limit only what changed. The answers are kept
per installation (GitHub's ETags vary with the token's rights), in this process, the most
recently used up to a size. githubkit's own HTTP cache (hishel) is off: see `client.py`.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import httpx

# Not carried over from a kept answer: it is decoded already, and its length is its own.
_BODY_HEADERS = ("content-encoding", "content-length", "transfer-encoding")
_FRESH_HEADERS = ("x-ratelimit-", "date", "x-github-request-id")


@dataclass(frozen=True)
class Kept:
    etag: str
    headers: list[tuple[str, str]]
    content: bytes


class Answers:
    """The last ETag'd answer to each GET URL (and `Accept`), least recently used first, at
    most `max_bytes` of bodies (a page of 100 issues is a few hundred kB)."""

    def __init__(self, max_bytes: int = 16 * 1024 * 1024) -> None:
        self.max_bytes = max_bytes
        self._kept: OrderedDict[tuple[str, str], Kept] = OrderedDict()
        self._bytes = 0
        self.not_modified = 0  # 304s answered from here

    def get(self, key: tuple[str, str]) -> Kept | None:
        kept = self._kept.get(key)
        if kept is not None:
            self._kept.move_to_end(key)
        return kept

    def put(self, key: tuple[str, str], kept: Kept) -> None:
        if len(kept.content) > self.max_bytes:
            return
        old = self._kept.pop(key, None)
        self._bytes += len(kept.content) - (0 if old is None else len(old.content))
        self._kept[key] = kept
        while self._bytes > self.max_bytes:
            _, dropped = self._kept.popitem(last=False)
            self._bytes -= len(dropped.content)


class ConditionalTransport(httpx.AsyncBaseTransport):
    """Sends each GET `inner` sends with `If-None-Match` when an answer to it is kept, and
    turns a 304 into that answer (a 200, its body, this 304's rate-limit headers)."""

    def __init__(self, inner: httpx.AsyncBaseTransport, answers: Answers) -> None:
        self.inner = inner
        self.answers = answers

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method != "GET":
            return await self.inner.handle_async_request(request)
        key = (str(request.url), request.headers.get("accept", ""))
        kept = self.answers.get(key)
        asked = request.headers.get("if-none-match")
        # The caller's own condition is its business; ours again (the request sent once more
        # after a 401 with a fresh token) is still ours to answer.
        if asked is not None and (kept is None or asked != kept.etag):
            return await self.inner.handle_async_request(request)
        if kept is not None:
            request.headers["if-none-match"] = kept.etag
        response = await self.inner.handle_async_request(request)
        if kept is not None and response.status_code == 304:
            await response.aclose()
            self.answers.not_modified += 1
            return _answer(request, kept, response)
        etag = response.headers.get("etag")
        if response.status_code == 200 and etag:
            content = await response.aread()
            headers = [
                (k, v) for k, v in response.headers.multi_items() if k.lower() not in _BODY_HEADERS
            ]
            self.answers.put(key, Kept(etag, headers, content))
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


def _answer(request: httpx.Request, kept: Kept, not_modified: httpx.Response) -> httpx.Response:
    fresh = [
        (k, v)
        for k, v in not_modified.headers.multi_items()
        if k.lower().startswith(_FRESH_HEADERS)
    ]
    names = {k.lower() for k, _ in fresh}
    headers = [(k, v) for k, v in kept.headers if k.lower() not in names] + fresh
    return httpx.Response(200, headers=headers, content=kept.content, request=request)
