"""Anonymous web identities in a signed cookie, and the CSRF token bound to each identity."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from collections.abc import Callable

COOKIE = "govbot_id"
HOST_COOKIE = f"__Host-{COOKIE}"
"""The name over HTTPS: a browser takes a __Host- cookie only from this origin itself (Secure, path /, no
domain), so neither a sibling subdomain nor anyone on a plain-HTTP network path can plant an identity."""
COOKIE_MAX_AGE = 180 * 24 * 3600
"""Half a year; every visit renews it."""
_IDENTITY = re.compile(r"[A-Za-z0-9_-]{22}")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class Signer:
    """Makes and checks identity cookies and CSRF tokens with keys derived from one secret."""

    def __init__(self, secret: str, *, random: Callable[[int], bytes] = secrets.token_bytes) -> None:
        if len(secret) < 16:
            raise ValueError("the web secret must have at least 16 characters")
        root = secret.encode()
        # Separate keys, so a CSRF token can never pass as a cookie signature or the other way round.
        self._cookie_key = hmac.new(root, b"govbot web identity cookie", hashlib.sha256).digest()
        self._csrf_key = hmac.new(root, b"govbot web csrf token", hashlib.sha256).digest()
        self._random = random

    def new_identity(self) -> str:
        """A fresh random identity: 128 bits, URL-safe."""
        return _b64(self._random(16))

    def cookie(self, identity: str) -> str:
        """The cookie value carrying ``identity``."""
        return f"{identity}.{self._mac(self._cookie_key, identity)}"

    def identity(self, cookie: str | None) -> str | None:
        """The identity in a cookie value; None when it is missing, malformed or its signature is wrong."""
        if not cookie or len(cookie) > 200:
            return None
        identity, _, signature = cookie.partition(".")
        if not _IDENTITY.fullmatch(identity):
            return None
        expected = self._mac(self._cookie_key, identity)
        return identity if hmac.compare_digest(signature.encode(), expected.encode()) else None

    def csrf_token(self, identity: str) -> str:
        """The token a page of this identity sends with every change."""
        return self._mac(self._csrf_key, identity)

    def csrf_ok(self, identity: str, token: str | None) -> bool:
        if not token or len(token) > 200:
            return False
        return hmac.compare_digest(token.encode(), self.csrf_token(identity).encode())

    @staticmethod
    def _mac(key: bytes, identity: str) -> str:
        return _b64(hmac.new(key, identity.encode(), hashlib.sha256).digest())


def make_secret() -> str:
    """A new random secret for when none is configured."""
    return secrets.token_urlsafe(32)
