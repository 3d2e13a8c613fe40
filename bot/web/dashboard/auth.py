"""Who may see the dashboard: whoever shows REVIEW_LOOP_DASHBOARD_TOKEN, as a bearer header
or once in the login form, which sets a cookie signed with the token (rotating the token
signs everyone out). Every comparison is `hmac.compare_digest`."""

import hashlib
import hmac
import time
from collections.abc import Callable, Mapping

COOKIE = "review_loop_ui"
COOKIE_TTL_S = 12 * 3600


def _sign(token: str, expires: int) -> str:
    mac = hmac.new(token.encode(), f"review-loop-ui:{expires}".encode(), hashlib.sha256)
    return mac.hexdigest()


def make_cookie(token: str, *, now: float) -> str:
    """A cookie value good for `COOKIE_TTL_S`: `<expires>.<hmac>`."""
    expires = int(now) + COOKIE_TTL_S
    return f"{expires}.{_sign(token, expires)}"


def cookie_valid(token: str, value: str, *, now: float) -> bool:
    expires_text, _, mac = value.partition(".")
    if not (expires_text.isascii() and expires_text.isdigit()) or int(expires_text) < now:
        return False
    return hmac.compare_digest(_sign(token, int(expires_text)).encode(), mac.encode())


def token_matches(token: str, offered: str) -> bool:
    return hmac.compare_digest(token.encode(), offered.encode())


def allowed(
    token: str,
    headers: Mapping[str, str],
    cookies: Mapping[str, str],
    *,
    clock: Callable[[], float] = time.time,
) -> bool:
    """Whether a request carries the token (bearer) or a cookie the login form signed."""
    scheme, _, offered = headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and offered:
        return token_matches(token, offered.strip())
    value = cookies.get(COOKIE)
    return value is not None and cookie_valid(token, value, now=clock())
