"""Installation tokens: one per installation (and repository scope) per process, shared.

An installation token lasts an hour (docs.github.com, "Generating an installation access token
for a GitHub App"; an expired one is answered 401). Every client of
an installation, and git's pushes and fetches, take theirs from here: it is minted once, used
until `REFRESH_BEFORE` its `expires_at`, and minted again by the first caller after that (one
at a time per key: callers that arrive meanwhile wait for that one). A 401 answer drops it
(revoked, or the clocks disagree): the next caller mints another.

githubkit's own token cache is not used: it is shared by the process too, but two clients that
start at once each mint one, it keeps a token until one minute before it expires, and a 401
does not drop it.
"""

import asyncio
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import httpx
from githubkit.auth.base import BaseAuthStrategy

if TYPE_CHECKING:
    from githubkit import GitHubCore

REFRESH_BEFORE = timedelta(minutes=5)

Key = tuple[int, str | None]  # installation id, the one repository it is scoped to (or None)
Mint = Callable[[int, str | None], Awaitable[tuple[str, datetime]]]  # -> token, expires_at


class Tokens:
    """The process's installation tokens, minted by `mint` when missing or about to expire."""

    def __init__(
        self, mint: Mint, *, now: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> None:
        self._mint = mint
        self._now = now
        self._held: dict[Key, tuple[str, datetime]] = {}
        self._locks: dict[Key, asyncio.Lock] = {}
        self.minted = 0

    async def get(self, installation_id: int, repository: str | None = None) -> str:
        key = (installation_id, repository)
        async with self._locks.setdefault(key, asyncio.Lock()):
            held = self._held.get(key)
            if held is not None and held[1] - REFRESH_BEFORE > self._now():
                return held[0]
            token, expires_at = await self._mint(installation_id, repository)
            self.minted += 1
            self._held[key] = (token, expires_at)
            return token

    def drop(self, token: str) -> None:
        """Forget `token` (GitHub refused it); a newer one minted meanwhile is kept."""
        for key, held in list(self._held.items()):
            if held[0] == token:
                del self._held[key]


@dataclass(frozen=True)
class GitToken:
    """An installation's token for git on one repository, asked for at each use: a fix task
    outlives a token (an agent may work for longer than the five minutes left on it), so
    its pushes never carry the one it started with."""

    tokens: Tokens
    installation_id: int
    repository: str | None

    async def get(self) -> str:
        return await self.tokens.get(self.installation_id, self.repository)

    def refused(self, token: str) -> None:
        """GitHub refused `token` (revoked, or the clocks disagree): the next `get` mints."""
        self.tokens.drop(token)


class _TokenAuth(httpx.Auth):
    """Sends an installation's requests with its shared token; after a 401 drops the token and
    sends the request once more with a fresh one."""

    requires_request_body = True  # so the request can be sent a second time

    def __init__(self, tokens: Tokens, installation_id: int) -> None:
        self.tokens = tokens
        self.installation_id = installation_id

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        token = await self.tokens.get(self.installation_id)
        request.headers["Authorization"] = f"token {token}"
        response = yield request
        if response.status_code == 401:
            self.tokens.drop(token)
            fresh = await self.tokens.get(self.installation_id)
            request.headers["Authorization"] = f"token {fresh}"
            yield request


@dataclass(frozen=True)
class SharedInstallationAuth(BaseAuthStrategy):
    """githubkit's auth strategy for an installation whose token comes from `tokens`."""

    tokens: Tokens
    installation_id: int

    def get_auth_flow(self, github: "GitHubCore[Any]") -> httpx.Auth:
        return _TokenAuth(self.tokens, self.installation_id)
