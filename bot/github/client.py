"""GitHub access: App and installation clients with explicit timeouts, the App's identity.

githubkit retries 5xx by default, POSTs included: a 502 after GitHub created an issue would
make a duplicate. Our clients retry server errors only for methods that are safe to repeat;
creates are retried by `RepoAPI`, only after looking up (by hidden marker, head branch or
check-run name) that the failed one was not made.

githubkit's HTTP cache (hishel) is off: through it, the client's timeout is not applied, so a
slow answer held a request for as long as the server liked. Installation clients send their
GETs conditionally instead (`bot.github.conditional`): a 304 costs no rate limit.
"""

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

import httpx
from githubkit import AppAuthStrategy, GitHub
from githubkit.auth.base import BaseAuthStrategy
from githubkit.exception import GitHubException, RateLimitExceeded, RequestFailed
from githubkit.retry import RetryOption

from bot.config import Settings
from bot.engine.database import Pool
from bot.github.conditional import AnswerCache, ConditionalTransport
from bot.github.intents import Intents
from bot.github.memo import Memo
from bot.github.repo_api import RepoAPI
from bot.github.throttle import Throttles
from bot.github.timing import TimedTransport
from bot.github.tokens import SharedInstallationAuth, Tokens

A = TypeVar("A", bound=BaseAuthStrategy)

_SAFE_TO_REPEAT = frozenset({"GET", "HEAD", "PUT", "PATCH", "DELETE"})


def retry_decision(exc: GitHubException, retry_count: int) -> RetryOption:
    """Retry rate limits (after GitHub's wait) and 5xx on repeatable methods, 3 times at most."""
    if retry_count >= 3:
        return RetryOption(False)
    if isinstance(exc, RateLimitExceeded):
        return RetryOption(True, exc.retry_after)
    if (
        isinstance(exc, RequestFailed)
        and exc.response.status_code >= 500
        and exc.request.method in _SAFE_TO_REPEAT
    ):
        return RetryOption(True, timedelta(seconds=(retry_count + 1) ** 2))
    return RetryOption(False)


@dataclass(frozen=True)
class AppIdentity:
    id: int
    slug: str

    @property
    def bot_login(self) -> str:
        return f"{self.slug}[bot]"


class GitHubApp:
    """Builds clients for the configured App. One instance per process, built from Settings.

    With the database's `pool`, content-creating requests of one installation share one
    throttle across every process on that database; without, across this process only.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        pool: Pool | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._settings = settings
        self._transport = transport
        self._pool = pool
        self.sleep = sleep  # every wait between the bot's own retries of GitHub calls
        self._identity: AppIdentity | None = None
        self._identity_lock = asyncio.Lock()
        self.intents = None if pool is None else Intents(pool)
        self.tokens = Tokens(self._mint_token)  # every installation client's, and git's
        self.throttles = Throttles.from_settings(settings, pool, sleep=sleep)
        # Per installation: the ETags of its reads, capped in all (`github_etag_cache_bytes`).
        self.answers = AnswerCache(settings.github_etag_cache_bytes)

    @property
    def base_url(self) -> str:
        return self._settings.github_url.rstrip("/") + "/"

    def _client(self, auth: A, transport: httpx.AsyncBaseTransport | None = None) -> GitHub[A]:
        return GitHub(
            auth,
            base_url=self.base_url,
            timeout=self._settings.github_timeout_s,
            auto_retry=retry_decision,
            async_transport=transport or self._timed(),
            http_cache=False,
            user_agent="review-loop",
        )

    def _timed(self) -> TimedTransport:
        """Plain HTTP (or the injected transport), each request timed (`bot/meters.py`)."""
        inner = self._transport or httpx.AsyncHTTPTransport()
        return TimedTransport(inner, httpx.URL(self.base_url).path)

    def app_client(self) -> GitHub[AppAuthStrategy]:
        settings = self._settings
        return self._client(
            AppAuthStrategy(settings.require_app_id(), settings.require_private_key())
        )

    def installation_client(self, installation_id: int) -> GitHub[SharedInstallationAuth]:
        """A client acting as the installation, with the token all of this process's clients
        of that installation share (`bot.github.tokens`)."""
        return self._client(
            SharedInstallationAuth(self.tokens, installation_id),
            self.throttles.transport(
                installation_id,
                inner=ConditionalTransport(
                    self._timed(), self.answers.installation(installation_id)
                ),
            ),
        )

    async def repo_api(self, gh: GitHub[Any], full_name: str) -> RepoAPI:
        """Operations on one repository that only ever edit this App's own comments and runs."""
        ident = await self.identity()
        memo = None if self._pool is None else Memo(self._pool, self._settings.github_cache_ttl_s)
        return RepoAPI(
            gh,
            full_name,
            app_id=ident.id or None,
            bot_login=ident.bot_login,
            sleep=self.sleep,
            memo=memo,
            intents=self.intents,
        )

    async def identity(self) -> AppIdentity:
        """The App's id and slug (`app_slug` setting wins): asked of GitHub (`GET /app`) once
        per deployment, kept in the database (`review_loop_app_identity`) for every process,
        and in this process's memory; without a database, once per process."""
        if self._settings.app_slug:
            return AppIdentity(self._settings.app_id or 0, self._settings.app_slug)
        async with self._identity_lock:
            if self._identity is None:
                self._identity = await self._kept_identity() or await self._fetch_identity()
            return self._identity

    async def _kept_identity(self) -> AppIdentity | None:
        if self._pool is None:
            return None
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                "SELECT app_id, slug FROM review_loop_app_identity WHERE app_id = %s",
                (self._settings.require_app_id(),),
            )
            row = await cur.fetchone()
        return None if row is None else AppIdentity(int(row["app_id"]), str(row["slug"]))

    async def _fetch_identity(self) -> AppIdentity:
        async with self.app_client() as gh:
            app = (await gh.rest.apps.async_get_authenticated()).parsed_data
        if app is None or not app.slug:
            raise RuntimeError("GET /app returned no slug; check REVIEW_LOOP_APP_ID")
        ident = AppIdentity(app.id, app.slug)
        if self._pool is not None:
            async with self._pool.connection() as conn:
                await conn.execute(
                    """INSERT INTO review_loop_app_identity (app_id, slug) VALUES (%s, %s)
                        ON CONFLICT (app_id) DO UPDATE
                        SET slug = EXCLUDED.slug, fetched_at = now()""",
                    (ident.id, ident.slug),
                )
        return ident

    async def installation_token(self, installation_id: int, repository: str | None = None) -> str:
        """A token for git over HTTPS, scoped to one repository when given; shared by this
        process until five minutes before it expires."""
        return await self.tokens.get(installation_id, repository)

    async def _mint_token(
        self, installation_id: int, repository: str | None
    ) -> tuple[str, datetime]:
        async with self.app_client() as gh:
            create = gh.rest.apps.async_create_installation_access_token
            if repository:
                resp = await create(
                    installation_id, data={"repositories": [repository.split("/", 1)[1]]}
                )
            else:
                resp = await create(installation_id)
        token = resp.parsed_data
        return token.token, datetime.fromisoformat(token.expires_at)
