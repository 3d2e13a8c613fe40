"""HMAC-SHA256 webhook signatures, as GitHub computes them (`X-Hub-Signature-256`)."""

import hashlib
import hmac

PREFIX = "sha256="


def sign(secret: str, body: bytes) -> str:
    """The `X-Hub-Signature-256` header value GitHub would send for `body`."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return PREFIX + digest


def verify(secret: str, body: bytes, header: str | None) -> bool:
    """True when `header` is a valid `sha256=` signature of `body`; constant-time compare."""
    if not header or not header.startswith(PREFIX) or not header.isascii():
        return False
    return hmac.compare_digest(sign(secret, body), header)
