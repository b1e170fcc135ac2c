"""Webhooks to departments, without I/O: which endpoints are allowed, how a delivery is signed, when to retry.

Signing follows the Standard Webhooks spec: ``webhook-signature`` carries ``v1,<base64 HMAC-SHA256>`` of
``{webhook-id}.{webhook-timestamp}.{body}`` for every active secret, space-separated, so a department that
is rotating its secret accepts deliveries signed with either. (It is a dozen lines; the reference package
is a test dependency that verifies them.)
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import ipaddress
import json
import random
import re
import secrets as secrets_module
import socket
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from yarl import URL

SECRET_PREFIX = "whsec_"  # noqa: S105 - the prefix every secret has, not a secret
SECRET_BYTES = (24, 64)
"""The key sizes the spec allows for ``whsec_`` secrets."""
MAX_URL_LENGTH = 2000
RETRY_DELAYS: tuple[timedelta, ...] = (
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
    timedelta(hours=10),
)
"""Waits after the 1st, 2nd… failed attempt; after the last one the delivery is dead-lettered."""
JITTER = 0.2
"""Each wait is stretched or shrunk by up to this fraction, so failed deliveries do not retry in step."""

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolve = Callable[[str], Awaitable[list[str]]]
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_URL_IN_TEXT = re.compile(
    r"(?P<start>\b[a-z][a-z0-9+.-]*://)(?:[^\s/@'\"]*@)?(?P<place>[^\s?#'\"]*)[^\s'\"]*", re.IGNORECASE
)
"""A URL in free text: scheme, credentials (dropped), host and path (kept), query and fragment (dropped)."""


class EndpointRefused(ValueError):
    """An endpoint URL or address govbot will not deliver to; the message says why."""


class InvalidSecret(ValueError):
    """A signing secret that is not ``whsec_`` followed by base64 of 24 to 64 bytes."""


@dataclass(frozen=True)
class UrlPolicy:
    """Where deliveries may go: https only, public addresses only, except networks the operator allows."""

    allow_http: bool = False
    allowed_networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def create(cls, allow_http: bool, networks: Iterable[str]) -> UrlPolicy:
        return cls(allow_http, tuple(ipaddress.ip_network(n.strip(), strict=False) for n in networks))

    def check_url(self, url: str) -> URL:
        """The parsed URL if its form is acceptable (scheme, host, no credentials); else EndpointRefused."""
        if not isinstance(url, str) or not url or len(url) > MAX_URL_LENGTH:
            raise EndpointRefused(f"an endpoint URL must be text of 1 to {MAX_URL_LENGTH} characters")
        try:
            parsed = URL(url)
        except (ValueError, TypeError) as exc:
            raise EndpointRefused(f"not a URL: {exc}") from None
        schemes = ("https", "http") if self.allow_http else ("https",)
        if parsed.scheme not in schemes:
            hint = "" if self.allow_http else " (http only with GOVBOT_WEBHOOK_ALLOW_HTTP=true, for testing)"
            raise EndpointRefused(f"endpoint must use https, not {parsed.scheme or 'no scheme'}{hint}")
        host = _host(parsed)
        if not host:
            raise EndpointRefused("endpoint URL has no host")
        if parsed.user is not None or parsed.password is not None:
            raise EndpointRefused("endpoint URL must not contain credentials")
        literal = _literal_ip(host)
        if literal is not None:
            self.check_address(literal)
        return parsed

    def refusal(self, address: IPAddress) -> str | None:
        """Why deliveries may not go to ``address`` (None when they may)."""
        inner = _embedded_ipv4(address)
        if any(address in net or (inner is not None and inner in net) for net in self.allowed_networks):
            return None
        # A wrapped IPv4 address (::ffff:a.b.c.d, 6to4, Teredo, NAT64) reaches the IPv4 host: judge that.
        return _not_public(inner if inner is not None else address)

    def check_address(self, address: IPAddress) -> None:
        reason = self.refusal(address)
        if reason:
            raise EndpointRefused(
                f"address {address} is {reason}; list its network in GOVBOT_WEBHOOK_ALLOWED_NETWORKS "
                "if it is a trusted intranet"
            )

    def allowed(self, addresses: Sequence[str]) -> list[str]:
        """The addresses deliveries may connect to; unparsable ones are dropped."""
        kept = []
        for text in addresses:
            address = parse_address(text)
            if address is not None and self.refusal(address) is None:
                kept.append(text)
        return kept

    async def check_endpoint(self, url: str, resolve: Resolve | None = None) -> list[str]:
        """Check a URL when it is saved: its form, and every address its host resolves to now.

        Returns warnings (e.g. the name does not resolve from here); raises EndpointRefused.
        """
        parsed = self.check_url(url)
        host = parsed.host or ""
        if _literal_ip(host) is not None:
            return []
        try:
            addresses = await (resolve or system_resolve)(host)
        except OSError as exc:
            return [f"{host} does not resolve from here ({exc}); it is checked again at every delivery"]
        for text in addresses:
            address = parse_address(text)
            if address is None:
                raise EndpointRefused(f"{host} resolves to {text!r}, which is not an IP address")
            reason = self.refusal(address)
            if reason:
                raise EndpointRefused(
                    f"{host} resolves to {address}, which is {reason}; list its network in "
                    "GOVBOT_WEBHOOK_ALLOWED_NETWORKS if it is a trusted intranet"
                )
        return []


def without_secrets(text: str) -> str:
    """``text`` with each URL in it cut to scheme, host and path.

    A query, fragment or credentials may hold a department's token, and aiohttp's errors quote whole URLs.
    """
    return _URL_IN_TEXT.sub(lambda found: found["start"] + found["place"], text)


async def system_resolve(host: str) -> list[str]:
    """Every address the system resolver gives for ``host``."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
    return sorted({str(info[4][0]) for info in infos})


def parse_address(text: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None


def _host(url: URL) -> str | None:
    """The URL's host; EndpointRefused for a name IDNA refuses (empty label, label over 63, bad xn--)."""
    try:
        host = url.host
        if host and _literal_ip(host) is None:
            host.encode("idna")  # as the resolver will, so it fails here and not at every delivery
    except UnicodeError:
        raise EndpointRefused(f"not a URL: {(url.raw_host or '')[:80]!r} is not a valid host name") from None
    return host


def _literal_ip(host: str) -> IPAddress | None:
    return parse_address(host.strip("[]"))


def _embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address inside an IPv4-mapped, 6to4, Teredo or NAT64 IPv6 address."""
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def _not_public(address: IPAddress) -> str | None:
    checks = (
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("unspecified", address.is_unspecified),
        ("reserved", address.is_reserved),
        ("private", address.is_private),
        ("not a public address", not address.is_global),
    )
    return next((name for name, hit in checks if hit), None)


def new_secret() -> str:
    """A fresh signing secret, ``whsec_`` and 32 random bytes in base64."""
    return SECRET_PREFIX + base64.b64encode(secrets_module.token_bytes(32)).decode()


def secret_key(secret: str) -> bytes:
    """The HMAC key of a ``whsec_`` secret; InvalidSecret if it is not one."""
    if not isinstance(secret, str) or not secret.startswith(SECRET_PREFIX):
        raise InvalidSecret("a signing secret starts with whsec_")
    try:
        key = base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)
    except (binascii.Error, ValueError):
        raise InvalidSecret("a signing secret is whsec_ followed by base64") from None
    if not SECRET_BYTES[0] <= len(key) <= SECRET_BYTES[1]:
        raise InvalidSecret(
            f"a signing secret holds {SECRET_BYTES[0]} to {SECRET_BYTES[1]} bytes, not {len(key)}"
        )
    return key


def body_bytes(payload: dict[str, Any]) -> bytes:
    """The exact bytes sent (and signed): compact UTF-8 JSON."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


def signature(secrets: Sequence[str], webhook_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value: one ``v1,<base64>`` per secret, space-separated."""
    signed = f"{webhook_id}.{timestamp}.".encode() + body
    return " ".join(
        "v1," + base64.b64encode(hmac.new(secret_key(s), signed, hashlib.sha256).digest()).decode()
        for s in secrets
    )


def signed_headers(secrets: Sequence[str], webhook_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """Every header of a delivery."""
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature(secrets, webhook_id, timestamp, body),
        "Content-Type": "application/json",
        "User-Agent": "govbot-webhooks/1",
    }


def retry_at(tries: int, now: datetime, rng: random.Random) -> datetime | None:
    """After the ``tries``-th failed attempt in a row: when to try again, or None to dead-letter."""
    if tries < 1 or tries > len(RETRY_DELAYS):
        return None
    delay = RETRY_DELAYS[tries - 1].total_seconds() * rng.uniform(1 - JITTER, 1 + JITTER)
    return now + timedelta(seconds=delay)
