"""What every citizen-facing web route gets: security headers, a per-client rate limit, bounded bodies,
and errors as problem+json instead of error pages."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address
from typing import Any

from aiohttp import web

from bot.channels.flood import FloodLimit
from storage.db import reconnecting

log = logging.getLogger(__name__)

ROUTE_PREFIX = "web."
"""Routes named ``web.…`` are guarded; the rest of the server (APIs, webhooks, health) is left alone."""
MAX_BODY = 32 * 1024
"""A chat message is at most 4000 characters; this leaves room for JSON and CJK text."""
RETRY_AFTER_SECONDS = 10
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}
CLIENT_LIMIT = web.AppKey("web_client_limit", FloodLimit)
Network = IPv4Network | IPv6Network
TRUSTED_PROXIES = web.AppKey("web_trusted_proxies", tuple[Network, ...])
"""Reverse proxies whose X-Forwarded-For names the client (GOVBOT_WEB_TRUSTED_PROXIES)."""

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Problem(Exception):
    """An HTTP error to answer with an RFC 9457 problem+json body."""

    def __init__(self, status: int, title: str, detail: str = "", **headers: str) -> None:
        super().__init__(f"{status} {title}: {detail}")
        self.status, self.title, self.detail, self.headers = status, title, detail, headers


def problem_response(problem: Problem) -> web.Response:
    body: dict[str, Any] = {"type": "about:blank", "title": problem.title, "status": problem.status}
    if problem.detail:
        body["detail"] = problem.detail
    response = web.json_response(body, status=problem.status, content_type="application/problem+json")
    response.headers.update({k.replace("_", "-"): v for k, v in problem.headers.items()})
    return response


def too_many(detail: str = "") -> Problem:
    return Problem(429, "Too Many Requests", detail, Retry_After=str(RETRY_AFTER_SECONDS))


def client_address(request: web.Request) -> str:
    """Who is asking, for rate limits: the peer, or the client a trusted proxy forwarded for."""
    peer = request.remote or "unknown"
    trusted = request.app.get(TRUSTED_PROXIES, ())
    if not trusted:
        return peer
    return forwarded_client(peer, request.headers.getall("X-Forwarded-For", []), trusted)


def forwarded_client(peer: str, forwarded_for: Sequence[str], trusted: Sequence[Network]) -> str:
    """The address a chain of trusted proxies received the request from.

    Walks X-Forwarded-For from the right (the hop nearest to us) while the hop is a trusted proxy;
    anything left of the first untrusted hop could have been written by the client and is ignored.
    """
    hop = peer
    hops = [item.strip() for value in forwarded_for for item in value.split(",")]
    while _is_trusted(hop, trusted) and hops:
        candidate = hops.pop()
        if _address(candidate) is None:
            log.warning("ignoring a malformed X-Forwarded-For hop from proxy %s", hop)
            break
        hop = candidate
    return hop


def _is_trusted(text: str, trusted: Sequence[Network]) -> bool:
    address = _address(text)
    return address is not None and any(address in network for network in trusted)


def _address(text: str) -> IPv4Address | IPv6Address | None:
    try:
        return ip_address(text)
    except ValueError:
        return None


_BODY = web.RequestKey("body", bytes)


async def read_body(request: web.Request, limit: int = MAX_BODY) -> bytes:
    """The request body, refusing with 413 once it is over ``limit`` (declared or actually sent).

    Kept on the request, so a handler run again (after a database restart) reads it again.
    """
    if _BODY in request:
        return request[_BODY]
    if request.content_length is not None and request.content_length > limit:
        raise Problem(413, "Content Too Large", f"the body may have at most {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_any():
        size += len(chunk)
        if size > limit:
            raise Problem(413, "Content Too Large", f"the body may have at most {limit} bytes")
        chunks.append(chunk)
    request[_BODY] = body = b"".join(chunks)
    return body


@web.middleware
async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Rate-limit, run and harden the citizen-facing routes; other routes pass straight through."""
    name = request.match_info.route.name or ""
    if not name.startswith(ROUTE_PREFIX):
        return await handler(request)
    try:
        if not request.app[CLIENT_LIMIT].check(client_address(request)).allowed:
            raise too_many("too many requests from this address; wait a few seconds")
        if request.content_length is not None and request.content_length > MAX_BODY:
            raise Problem(413, "Content Too Large", f"the body may have at most {MAX_BODY} bytes")
        # A request that met a connection a restarted database had closed changed nothing: run it again.
        response = await reconnecting(lambda: handler(request))
    except Problem as problem:
        response = problem_response(problem)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        response = problem_response(Problem(exc.status, exc.reason))
    except Exception:
        log.exception("web route %s failed", name)
        response = problem_response(Problem(500, "Internal Server Error", "please try again in a moment"))
    response.headers.update(SECURITY_HEADERS)
    if name != "web.static":
        response.headers.setdefault("Cache-Control", "no-store")
    return response
