"""Conditional reads: a GET asked again is sent with the `ETag` of its last answer.

GitHub answers 304 Not Modified when nothing changed, and a 304 does not count against the
rate limit (docs.github.com, "Use conditional requests if appropriate"). The answer is then
the kept one, so a reconcile that reads a PR, its issues and its check runs again after a
few seconds costs its installation's rate limit only what changed. The answers are kept
per installation (GitHub's ETags vary with the token's rights), in this process, the most
recently used up to a size per installation and a size for all of them together (an
`AnswerCache`: with hundreds of installations the per-installation cap alone would not bound
the process). githubkit's own HTTP cache (hishel) is off: see `client.py`.
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


PER_INSTALLATION_BYTES = 16 * 1024 * 1024
TOTAL_BYTES = 64 * 1024 * 1024

Key = tuple[str, str]  # URL, Accept


class AnswerCache:
    """Every installation's kept answers in this process: at most `max_bytes` of bodies in
    all, the least recently used (of any installation) going first, and at most
    `per_installation` bytes of one installation's."""

    def __init__(
        self, max_bytes: int = TOTAL_BYTES, per_installation: int = PER_INSTALLATION_BYTES
    ) -> None:
        self.max_bytes = max_bytes
        self.per_installation = per_installation
        self._kept: OrderedDict[tuple[int, Key], Kept] = OrderedDict()  # all, by last use
        self._of: dict[int, OrderedDict[Key, None]] = {}  # one installation's, by last use
        self._bytes_of: dict[int, int] = {}
        self.bytes = 0
        self._answers: dict[int, Answers] = {}

    def installation(self, installation_id: int) -> Answers:
        """The answers of one installation (the same object each time)."""
        answers = self._answers.get(installation_id)
        if answers is None:
            answers = self._answers[installation_id] = Answers(cache=self, of=installation_id)
        return answers

    def bytes_of(self, installation_id: int) -> int:
        return self._bytes_of.get(installation_id, 0)

    def get(self, installation_id: int, key: Key) -> Kept | None:
        kept = self._kept.get((installation_id, key))
        if kept is not None:
            self._kept.move_to_end((installation_id, key))
            self._of[installation_id].move_to_end(key)
        return kept

    def put(self, installation_id: int, key: Key, kept: Kept) -> None:
        self._drop(installation_id, key)
        if len(kept.content) > min(self.max_bytes, self.per_installation):
            return
        self._kept[(installation_id, key)] = kept
        self._of.setdefault(installation_id, OrderedDict())[key] = None
        self._count(installation_id, len(kept.content))
        while self.bytes_of(installation_id) > self.per_installation:
            self._drop(installation_id, next(iter(self._of[installation_id])))
        while self.bytes > self.max_bytes:
            self._drop(*next(iter(self._kept)))

    def _drop(self, installation_id: int, key: Key) -> None:
        kept = self._kept.pop((installation_id, key), None)
        if kept is None:
            return
        of = self._of[installation_id]
        del of[key]
        self._count(installation_id, -len(kept.content))
        if not of:
            del self._of[installation_id], self._bytes_of[installation_id]

    def _count(self, installation_id: int, size: int) -> None:
        self._bytes_of[installation_id] = self._bytes_of.get(installation_id, 0) + size
        self.bytes += size


class Answers:
    """The last ETag'd answer to each GET URL (and `Accept`) of one installation, least
    recently used first (a page of 100 issues is a few hundred kB). Alone (no `cache`): at
    most `max_bytes` of bodies."""

    def __init__(
        self,
        max_bytes: int = PER_INSTALLATION_BYTES,
        *,
        cache: AnswerCache | None = None,
        of: int = 0,
    ) -> None:
        self._cache = cache or AnswerCache(max_bytes=max_bytes, per_installation=max_bytes)
        self._of = of
        self.not_modified = 0  # 304s answered from here

    def get(self, key: Key) -> Kept | None:
        return self._cache.get(self._of, key)

    def put(self, key: Key, kept: Kept) -> None:
        self._cache.put(self._of, key, kept)


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
