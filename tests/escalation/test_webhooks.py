"""Pure webhook logic: which endpoints are refused, how deliveries are signed, when they are retried."""

from __future__ import annotations

import random
import time
from datetime import timedelta

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from bot.webhooks import (
    RETRY_DELAYS,
    EndpointRefused,
    InvalidSecret,
    UrlPolicy,
    body_bytes,
    new_secret,
    retry_at,
    secret_key,
    signed_headers,
    without_secrets,
)
from tests.escalation.conftest import NOW

STRICT = UrlPolicy.create(allow_http=False, networks=[])


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("https://169.254.169.254/latest/meta-data", "link-local"),
        ("https://10.0.0.1/hook", "private"),
        ("https://[::ffff:127.0.0.1]/hook", "loopback"),
        ("https://127.0.0.1:8443/hook", "loopback"),
        ("https://[::1]/hook", "loopback"),
        ("https://[fe80::1]/hook", "link-local"),
        ("https://224.0.0.1/hook", "multicast"),
        ("https://240.0.0.1/hook", "reserved"),
        ("https://0.0.0.0/hook", "unspecified"),
        ("https://192.168.1.10/hook", "private"),
        ("https://[fd00::1]/hook", "private"),
        ("https://100.64.0.1/hook", "not a public address"),
        ("https://[64:ff9b::a00:1]/hook", "private"),
    ],
)
def test_endpoints_at_internal_addresses_are_refused(url: str, reason: str) -> None:
    with pytest.raises(EndpointRefused, match=reason):
        STRICT.check_url(url)


def test_plain_http_is_refused_unless_allowed_for_testing() -> None:
    with pytest.raises(EndpointRefused, match="GOVBOT_WEBHOOK_ALLOW_HTTP"):
        STRICT.check_url("http://transport.example.gov/hook")
    assert (
        UrlPolicy.create(True, []).check_url("http://transport.example.gov/hook").host
        == "transport.example.gov"
    )


@pytest.mark.parametrize(
    "url", ["https://user:pw@transport.example.gov/", "ftp://transport.example.gov/", "", "x" * 3000]
)
def test_malformed_or_credentialed_urls_are_refused(url: str) -> None:
    with pytest.raises(EndpointRefused):
        STRICT.check_url(url)


def test_public_addresses_including_mapped_ones_are_allowed() -> None:
    for url in ("https://8.8.8.8/hook", "https://[::ffff:8.8.8.8]/hook", "https://transport.example.gov/x"):
        STRICT.check_url(url)


def test_an_allowed_network_admits_its_private_addresses_and_no_others() -> None:
    intranet = UrlPolicy.create(allow_http=True, networks=["10.20.0.0/16", "127.0.0.0/8"])
    intranet.check_url("https://10.20.3.4/hook")
    intranet.check_url("https://[::ffff:127.0.0.1]/hook")
    with pytest.raises(EndpointRefused, match="link-local"):
        intranet.check_url("https://169.254.169.254/")
    assert intranet.allowed(["127.0.0.1", "169.254.169.254", "::1", "not-an-ip"]) == ["127.0.0.1"]


async def test_a_hostname_resolving_to_loopback_is_refused_when_saved() -> None:
    async def resolve(host: str) -> list[str]:
        return ["93.184.216.34", "127.0.0.1"]

    with pytest.raises(EndpointRefused, match=r"rebind\.example resolves to 127\.0\.0\.1, which is loopback"):
        await STRICT.check_endpoint("https://rebind.example/hook", resolve)


async def test_localhost_is_refused_by_the_system_resolver_without_the_allow_list() -> None:
    with pytest.raises(EndpointRefused, match="loopback"):
        await STRICT.check_endpoint("https://localhost/hook")


async def test_a_name_that_does_not_resolve_is_saved_with_a_warning() -> None:
    async def resolve(host: str) -> list[str]:
        raise OSError("Name or service not known")

    warnings = await STRICT.check_endpoint("https://intranet.transport.gov/hook", resolve)
    assert "checked again at every delivery" in warnings[0]


def test_every_active_secret_signs_so_either_verifies_during_rotation() -> None:
    old, new = new_secret(), new_secret()
    body = body_bytes({"type": "case.created", "data": {"text": "公交车没停"}})
    headers = signed_headers([new, old], "msg_1", int(time.time()), body)
    assert Webhook(old).verify(body, headers)["data"]["text"] == "公交车没停"
    assert Webhook(new).verify(body, headers)["type"] == "case.created"
    assert len(headers["webhook-signature"].split(" ")) == 2
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(body, headers)


def test_a_tampered_body_fails_verification() -> None:
    secret = new_secret()
    headers = signed_headers([secret], "msg_1", int(time.time()), b'{"a":1}')
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(b'{"a":2}', headers)


@pytest.mark.parametrize("secret", ["abc", "whsec_!!!", "whsec_" + "QUJD", 42])
def test_malformed_secrets_are_refused(secret: object) -> None:
    with pytest.raises(InvalidSecret):
        secret_key(secret)  # type: ignore[arg-type]


def test_retries_follow_the_schedule_within_the_jitter_then_stop() -> None:
    rng = random.Random(7)
    for tries, delay in enumerate(RETRY_DELAYS, start=1):
        when = retry_at(tries, NOW, rng)
        assert when is not None
        assert delay * 0.8 <= when - NOW <= delay * 1.2
    assert retry_at(len(RETRY_DELAYS) + 1, NOW, rng) is None


def test_jitter_spreads_retries_of_many_failed_deliveries() -> None:
    rng = random.Random(1)
    waits = {retry_at(2, NOW, rng) for _ in range(50)}
    assert len(waits) == 50
    assert max(w for w in waits if w) - min(w for w in waits if w) > timedelta(seconds=60)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("url='https://h.example/hook?token=t0k'", "url='https://h.example/hook'"),
        ("at https://user:pw@h.example:8443/p#frag then", "at https://h.example:8443/p then"),
        ("Cannot connect to host h.example:443", "Cannot connect to host h.example:443"),
    ],
)
def test_urls_in_an_error_lose_their_query_fragment_and_credentials(text: str, expected: str) -> None:
    assert without_secrets(text) == expected
