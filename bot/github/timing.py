"""How long each request to GitHub took, by route family and status (`bot/meters.py`)."""

import time

import httpx

from bot.meters import GITHUB_REQUEST_SECONDS, route_family


class TimedTransport(httpx.AsyncBaseTransport):
    """Times every request `inner` sends, until its headers are in. `GitHubApp` puts it under
    the write throttle, so a throttle's wait is not counted as GitHub's time (the wait has
    its own histogram)."""

    def __init__(self, inner: httpx.AsyncBaseTransport, base_path: str = "/") -> None:
        self.inner = inner
        self.base_path = base_path

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        route = route_family(request.url.path, self.base_path)
        start = time.perf_counter()
        status = "error"
        try:
            response = await self.inner.handle_async_request(request)
            status = str(response.status_code)
            return response
        finally:
            GITHUB_REQUEST_SECONDS.labels(request.method, route, status).observe(
                time.perf_counter() - start
            )

    async def aclose(self) -> None:
        await self.inner.aclose()
