"""Signed identity cookies, CSRF tokens bound to them, and waking the pages that wait for news."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from bot.web.hub import Hub
from bot.web.identity import Signer, make_secret

SECRET = "a secret that is long enough"


COUNTER = itertools.count()


def counting_random(size: int) -> bytes:
    return next(COUNTER).to_bytes(size, "big")


def test_a_cookie_carries_its_identity_and_nothing_else_passes() -> None:
    signer = Signer(SECRET)
    identity = signer.new_identity()
    cookie = signer.cookie(identity)
    assert signer.identity(cookie) == identity
    forged_identity = ("A" if identity[0] != "A" else "B") + identity[1:]
    for bad in (
        None,
        "",
        identity,
        cookie + "x",
        forged_identity + cookie[len(identity) :],
        Signer("another secret, long enough").cookie(identity),
        "../../" + cookie,
        "x" * 500,
        "é" * 22 + "." + "sig",
    ):
        assert signer.identity(bad) is None, bad


def test_identities_are_random_and_come_from_the_given_source() -> None:
    signer = Signer(SECRET, random=counting_random)
    assert signer.new_identity() != signer.new_identity()
    assert len(Signer(SECRET).new_identity()) == 22


def test_a_csrf_token_fits_only_its_own_identity_and_is_no_cookie_signature() -> None:
    signer = Signer(SECRET)
    mine, theirs = signer.new_identity(), signer.new_identity()
    token = signer.csrf_token(mine)
    assert signer.csrf_ok(mine, token)
    assert not signer.csrf_ok(theirs, token)
    assert not signer.csrf_ok(mine, None)
    assert not signer.csrf_ok(mine, "")
    assert not signer.csrf_ok(mine, "秘" * 10)
    assert signer.identity(f"{mine}.{token}") is None


def test_a_short_secret_is_refused_and_made_secrets_are_long() -> None:
    with pytest.raises(ValueError, match="16"):
        Signer("short")
    assert len(make_secret()) >= 32


async def test_notify_wakes_every_waiter_of_that_citizen_only() -> None:
    hub = Hub()
    with hub.listen("a") as first, hub.listen("a") as second, hub.listen("b") as other:
        hub.notify("a")
        await asyncio.wait_for(asyncio.gather(first.wait(), second.wait()), 1)
        assert not other.is_set()
        with hub.listen("a") as later:
            assert not later.is_set(), "a later listener waits for the next notice"
    assert len(hub) == 0, "nobody waiting: nothing remembered"


async def test_closing_wakes_waiters_and_later_listeners_at_once() -> None:
    hub = Hub()
    with hub.listen("a") as waiting:
        hub.close()
        await asyncio.wait_for(waiting.wait(), 1)
    with hub.listen("b") as late:
        assert late.is_set()
