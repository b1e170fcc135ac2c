"""The dispatcher against real receivers on 127.0.0.1; every delivery is verified with `standardwebhooks`."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any, cast

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from prometheus_client import CollectorRegistry
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.dispatch import DispatchConfig, Dispatcher, DispatchMetrics
from bot.webhooks import RETRY_DELAYS, UrlPolicy, new_secret
from storage.cases import CaseRepository
from storage.departments import DepartmentRepository
from storage.models import utcnow
from storage.outbox import (
    AttemptResult,
    Delivery,
    DeliveryInFlight,
    DeliveryStatus,
    OutboxRepository,
    Outcome,
)
from tests.conftest import close_every_connection
from tests.escalation.conftest import Dept, open_case
from tests.escalation.dispatching import LOCAL, Clock, dispatcher
from tests.escalation.receiver import DROP, HANG, Receiver, receiving

Sessions = async_sessionmaker[AsyncSession]


@pytest.fixture
async def receiver(departments: dict[str, Dept], sessions: Sessions) -> AsyncIterator[Receiver]:
    """TRANSPORT's endpoint."""
    async with receiving(departments["TRANSPORT"].secret) as endpoint:
        await set_url(sessions, "TRANSPORT", endpoint.url)
        yield endpoint
    assert endpoint.rejected == [], "every delivery must verify"


async def set_url(sessions: Sessions, code: str, url: str) -> None:
    async with sessions.begin() as session:
        await DepartmentRepository(session).update(code, webhook_url=url)


async def event_status(sessions: Sessions, key: str = "1") -> tuple[str, int, str | None]:
    async with sessions() as session:
        event = await OutboxRepository(session).event(key)
    assert event is not None
    return event.status, event.attempts, event.last_error


async def test_a_new_case_is_delivered_signed_with_its_ticket_and_excerpt(
    sessions: Sessions, receiver: Receiver, clock: Clock
) -> None:
    case = await open_case(sessions, now=clock())
    async with dispatcher(sessions, clock) as d:
        assert await d.run_once() == 1
    [delivery] = receiver.received
    assert delivery.payload["type"] == "case.created"
    assert delivery.payload["version"] == 1
    assert delivery.payload["id"] == delivery.headers["webhook-id"]
    assert delivery.payload["data"]["case"]["ticket"] == case.ticket
    assert delivery.payload["data"]["excerpt"][0]["text"] == "bus did not stop"
    assert await event_status(sessions) == (DeliveryStatus.DELIVERED, 1, None)
    async with sessions() as session:
        [attempt] = await OutboxRepository(session).attempts(1)
    assert (attempt.outcome, attempt.status_code) == ("delivered", 200)
    assert attempt.latency_ms is not None


async def test_a_claim_whose_lease_ran_out_is_on_record_as_interrupted_and_tried_again(
    sessions: Sessions, receiver: Receiver, clock: Clock
) -> None:
    await open_case(sessions, now=clock())
    async with sessions.begin() as session:  # a dispatcher claims the event and dies before recording
        outbox = OutboxRepository(session)
        [claimed] = await outbox.claim("gone", clock(), limit=10, lease=timedelta(seconds=60))
    clock.advance(timedelta(seconds=61))
    async with dispatcher(sessions, clock) as d:
        assert await d.run_once() == 1
    assert [delivery.headers["webhook-id"] for delivery in receiver.received] == [claimed.webhook_id]
    async with sessions() as session:
        attempts = await OutboxRepository(session).attempts(claimed.id)
    assert [(a.number, a.dispatcher, a.outcome) for a in attempts] == [
        (1, "gone", "interrupted"),
        (2, "test-dispatcher", "delivered"),
    ]


async def test_a_500_is_retried_after_the_first_wait_with_the_same_webhook_id(
    sessions: Sessions, receiver: Receiver, clock: Clock
) -> None:
    receiver.answers = [500]
    await open_case(sessions, now=clock())
    async with dispatcher(sessions, clock) as d:
        await d.run_once()
        assert await event_status(sessions) == (DeliveryStatus.PENDING, 1, "HTTP 500")
        clock.advance(RETRY_DELAYS[0] * 0.7)
        assert await d.run_once() == 0
        clock.advance(RETRY_DELAYS[0] * 0.6)
        assert await d.run_once() == 1
    first, second = receiver.received
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    assert await event_status(sessions) == (DeliveryStatus.DELIVERED, 2, None)


async def test_after_the_whole_schedule_the_delivery_is_dead_logged_and_counted(
    sessions: Sessions, receiver: Receiver, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    receiver.answers = [500] * 20
    await open_case(sessions, now=clock())
    registry = CollectorRegistry()
    metrics = DispatchMetrics(registry)
    async with dispatcher(sessions, clock, metrics=metrics) as d:
        for _ in range(len(RETRY_DELAYS) + 1):
            assert await d.run_once() == 1
            clock.advance(timedelta(hours=13))
        assert await d.run_once() == 0
    assert len(receiver.received) == len(RETRY_DELAYS) + 1
    assert await event_status(sessions) == (DeliveryStatus.DEAD, 8, "HTTP 500")
    assert "DEAD LETTER" in caplog.text
    assert any(r.levelno == logging.ERROR for r in caplog.records)
    assert registry.get_sample_value("govbot_webhook_dead_letters_total", {"department": "TRANSPORT"}) == 1


async def test_a_receiver_that_does_not_answer_in_time_is_a_failed_attempt(
    sessions: Sessions, receiver: Receiver, clock: Clock
) -> None:
    receiver.answers = [HANG]
    await open_case(sessions, now=clock())
    async with dispatcher(sessions, clock, timeout=0.3) as d:
        await d.run_once()
    status, attempts, error = await event_status(sessions)
    assert (status, attempts) == (DeliveryStatus.PENDING, 1)
    assert error == "no answer within 0.3 s"


async def test_a_dropped_connection_is_a_failed_attempt(
    sessions: Sessions, receiver: Receiver, clock: Clock
) -> None:
    receiver.answers = [DROP]
    await open_case(sessions, now=clock())
    async with dispatcher(sessions, clock) as d:
        await d.run_once()
    status, _, error = await event_status(sessions)
    assert status == DeliveryStatus.PENDING
    assert error is not None
    assert "Disconnected" in error or "Connection" in error


async def test_a_redirect_is_not_followed(sessions: Sessions, receiver: Receiver, clock: Clock) -> None:
    receiver.answers = [307]
    await open_case(sessions, now=clock())
    async with dispatcher(sessions, clock) as d:
        await d.run_once()
    assert receiver.requests == 1
    assert (await event_status(sessions))[2] == "HTTP 307 (redirects are not followed)"


async def test_410_gone_disables_the_endpoint_until_an_operator_sets_it_again(
    sessions: Sessions, receiver: Receiver, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    receiver.answers = [410, 410]
    await open_case(sessions, now=clock())
    await open_case(sessions, user="43", now=clock())
    async with dispatcher(sessions, clock) as d:
        assert await d.run_once() == 2
        async with sessions() as session:
            department = await DepartmentRepository(session).get("TRANSPORT")
        assert department is not None
        assert not department.webhook_enabled
        assert "410 Gone" in caplog.text
        clock.advance(timedelta(days=1))
        assert await d.run_once() == 0
        await set_url(sessions, "TRANSPORT", receiver.url)
        assert await d.run_once() == 2
    assert len(receiver.received) == 4
    assert [(await event_status(sessions, key))[0] for key in ("1", "2")] == [DeliveryStatus.DELIVERED] * 2


async def test_events_of_one_case_arrive_in_order_even_when_the_first_needs_retries(
    sessions: Sessions, receiver: Receiver, clock: Clock
) -> None:
    receiver.answers = [503]
    case = await open_case(sessions, now=clock())
    async with sessions.begin() as session:
        await CaseRepository(session).add_information(
            case.id, case.citizen_id or 0, "It was the 7:40.", clock()
        )
        await CaseRepository(session).withdraw(case.id, case.citizen_id or 0, clock())
    async with dispatcher(sessions, clock) as d:
        for _ in range(4):
            await d.run_once()
            clock.advance(timedelta(seconds=7))
    assert [r.payload["type"] for r in receiver.received] == [
        "case.created",
        "case.created",
        "case.updated",
        "case.closed",
    ]


async def test_rotated_secrets_both_verify_the_same_delivery(
    sessions: Sessions, departments: dict[str, Dept], clock: Clock
) -> None:
    new = new_secret()
    async with sessions.begin() as session:
        await DepartmentRepository(session).add_secret("TRANSPORT", new)
    async with receiving(departments["TRANSPORT"].secret) as old_side, receiving(new) as new_side:
        await open_case(sessions, now=clock())
        for side in (old_side, new_side):
            await set_url(sessions, "TRANSPORT", side.url)
            async with sessions.begin() as session:
                await OutboxRepository(session).replay("1", clock())
            async with dispatcher(sessions, clock) as d:
                await d.run_once()
        assert len(old_side.received) == len(new_side.received) == 1
        assert old_side.rejected == new_side.rejected == []


async def test_an_endpoint_name_resolving_to_loopback_is_refused_at_delivery(
    sessions: Sessions, receiver: Receiver, clock: Clock
) -> None:
    # Saved when loopback was allowed (or the name pointed elsewhere): checked again at every delivery.
    await set_url(sessions, "TRANSPORT", receiver.url.replace("127.0.0.1", "localhost"))
    await open_case(sessions, now=clock())
    strict = UrlPolicy.create(allow_http=True, networks=[])
    async with dispatcher(sessions, clock, policy=strict) as d:
        await d.run_once()
    assert receiver.requests == 0
    error = (await event_status(sessions))[2]
    assert error is not None
    assert "resolves only to refused addresses" in error


@pytest.mark.parametrize(
    "url",
    ["http://169.254.169.254/latest/meta-data", "http://10.0.0.1/hook", "http://[::ffff:127.0.0.1]:9/hook"],
)
async def test_internal_addresses_are_refused_at_delivery_without_a_request(
    sessions: Sessions, departments: dict[str, Dept], clock: Clock, url: str
) -> None:
    await set_url(sessions, "TRANSPORT", url)
    await open_case(sessions, now=clock())
    strict = UrlPolicy.create(allow_http=True, networks=[])
    async with dispatcher(sessions, clock, policy=strict) as d:
        await d.run_once()
    status, _, error = await event_status(sessions)
    assert status == DeliveryStatus.PENDING
    assert error is not None
    assert error.startswith("endpoint refused")


@pytest.mark.parametrize(
    "url", ["https://a..b/hook", "https://xn--a.example/hook", f"https://{'a' * 64}.example/hook"]
)
async def test_a_stored_host_name_idna_refuses_is_a_refused_endpoint_not_a_crash(
    sessions: Sessions, departments: dict[str, Dept], clock: Clock, url: str
) -> None:
    await set_url(sessions, "TRANSPORT", url)  # saved before such names were refused
    await open_case(sessions, now=clock())
    async with dispatcher(sessions, clock) as d:
        assert await d.run_once() == 1
    status, _, error = await event_status(sessions)
    assert status == DeliveryStatus.PENDING
    assert error is not None
    assert error.startswith("endpoint refused: not a URL: ")


async def test_the_running_loop_delivers_a_new_case_and_stops_cleanly(
    sessions: Sessions, receiver: Receiver
) -> None:
    config = DispatchConfig(policy=LOCAL, poll=0.05, concurrency=8)
    async with Dispatcher(sessions, config) as d:
        task = asyncio.create_task(d.run())
        await open_case(sessions, now=utcnow())
        await receiver.wait_for(1)
        d.stop()
        await asyncio.wait_for(task, timeout=10)
    assert (await event_status(sessions))[0] == DeliveryStatus.DELIVERED


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_two_dispatchers_on_postgresql_deliver_each_event_once(
    sessions: Sessions, receiver: Receiver
) -> None:
    for n in range(150):
        await open_case(sessions, user=str(n), now=utcnow())
    config = DispatchConfig(policy=LOCAL, poll=0.02, concurrency=16)
    async with (
        Dispatcher(sessions, config, name="one") as one,
        Dispatcher(sessions, config, name="two") as two,
    ):
        tasks = [asyncio.create_task(one.run()), asyncio.create_task(two.run())]
        await receiver.wait_for(150, timeout=60)
        one.stop()
        two.stop()
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=30)
    ids = [r.headers["webhook-id"] for r in receiver.received]
    assert len(ids) == len(set(ids)) == 150
    assert receiver.overlaps == []
    async with sessions() as session:
        counts = await OutboxRepository(session).counts()
        attempts = {a.dispatcher for e in range(1, 151) for a in await OutboxRepository(session).attempts(e)}
    assert counts["delivered"] == 150
    assert attempts == {"one", "two"}


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_a_delivery_is_recorded_once_when_the_database_restarted_during_it(
    sessions: Sessions, receiver: Receiver, clock: Clock, database_url: str
) -> None:
    # Had the result been lost, the lease would run out and the department get the event twice.
    await open_case(sessions, now=clock())
    receiver.before_answer = lambda: close_every_connection(database_url)
    async with dispatcher(sessions, clock) as d:
        assert await d.run_once() == 1
    assert await event_status(sessions) == (DeliveryStatus.DELIVERED, 1, None)
    assert len(receiver.received) == 1


async def test_a_hanging_endpoint_does_not_hold_back_another_departments_events(
    sessions: Sessions, departments: dict[str, Dept], receiver: Receiver
) -> None:
    # Claims wait for room for half a share, but never longer than the poll interval.
    receiver.answers = [HANG, HANG]
    secret = new_secret()
    async with sessions.begin() as session:
        await DepartmentRepository(session).add("CITY", {"en": "City"}, secrets=[secret], ticket_prefix="CI")
    async with receiving(departments["TAX"].secret) as tax, receiving(secret) as city:
        tax.answers = [HANG]
        await set_url(sessions, "TAX", tax.url)
        await set_url(sessions, "CITY", city.url)
        config = DispatchConfig(policy=LOCAL, poll=0.05, concurrency=4, timeout=30)
        async with Dispatcher(sessions, config) as d:
            task = asyncio.create_task(d.run())
            for user, code in (("1", "TRANSPORT"), ("2", "TRANSPORT"), ("3", "TAX")):
                await open_case(sessions, code, user=user, now=utcnow())
            await receiver.wait_for(2)
            await tax.wait_for(1)  # three of the four slots now wait on hanging endpoints
            await open_case(sessions, "CITY", user="4", now=utcnow())
            await city.wait_for(1, timeout=5)  # not held back until the others' answers time out
            receiver.release()
            tax.release()
            d.stop()
            await asyncio.wait_for(task, timeout=10)


async def test_a_hanging_department_with_more_events_than_slots_leaves_half_the_slots_to_the_others(
    sessions: Sessions, departments: dict[str, Dept], receiver: Receiver
) -> None:
    # Claims take the oldest due events first: TRANSPORT's six would otherwise take all four slots, and
    # TAX would wait for their answers to time out (minutes, with a real backlog and timeout).
    receiver.answers = [HANG] * 6
    async with receiving(departments["TAX"].secret) as tax:
        await set_url(sessions, "TAX", tax.url)
        for user in range(6):
            await open_case(sessions, "TRANSPORT", user=str(user), now=utcnow())
        await open_case(sessions, "TAX", user="tax", now=utcnow())
        config = DispatchConfig(policy=LOCAL, poll=0.05, concurrency=4, timeout=30)
        async with Dispatcher(sessions, config) as d:
            task = asyncio.create_task(d.run())
            await tax.wait_for(1, timeout=5)
            await receiver.wait_for(2)
            await asyncio.sleep(0.2)  # four polls: time enough to take a third TRANSPORT event
            assert len(receiver.received) == 2  # its share: half the slots
            receiver.release()
            await receiver.wait_for(6)  # and once they answer, the rest follow
            d.stop()
            await asyncio.wait_for(task, timeout=10)


async def test_a_claim_leaves_out_the_departments_it_is_told_to(
    sessions: Sessions, departments: dict[str, Dept], clock: Clock
) -> None:
    for code in ("TRANSPORT", "TAX"):
        await set_url(sessions, code, "http://127.0.0.1:9/hook")
    for user in range(3):
        await open_case(sessions, "TRANSPORT", user=str(user), now=clock())
    await open_case(sessions, "TAX", user="tax", now=clock())

    async def claim(*leave_out: str) -> list[tuple[str, int]]:
        async with sessions.begin() as session:
            claimed = await OutboxRepository(session).claim(
                "one", clock(), limit=10, lease=timedelta(seconds=60), leave_out=leave_out
            )
        return [(d.department, d.id) for d in claimed]

    assert await claim("TRANSPORT") == [("TAX", 4)]
    assert await claim("TAX") == [("TRANSPORT", 1), ("TRANSPORT", 2), ("TRANSPORT", 3)]


def delivered(delivery: Delivery) -> AttemptResult:
    return AttemptResult(delivery, Outcome.DELIVERED, utcnow(), status_code=200, latency_ms=3)


async def test_a_disabled_departments_events_wait_until_it_is_enabled_again(
    sessions: Sessions, receiver: Receiver, clock: Clock
) -> None:
    await open_case(sessions, now=clock())
    async with sessions.begin() as session:
        await DepartmentRepository(session).update("TRANSPORT", enabled=False)
    async with dispatcher(sessions, clock) as d:
        assert await d.run_once() == 0
        assert receiver.requests == 0
        async with sessions.begin() as session:
            await DepartmentRepository(session).update("TRANSPORT", enabled=True)
        assert await d.run_once() == 1
    assert len(receiver.received) == 1


async def test_replaying_a_delivery_in_flight_leaves_it_to_its_dispatcher(
    sessions: Sessions, receiver: Receiver, clock: Clock
) -> None:
    # Replay cleared the lease: the dispatcher's result no longer applied and the event went out again.
    await open_case(sessions, now=clock())
    refused: list[str] = []

    async def replay_meanwhile() -> None:
        async with sessions.begin() as session:
            try:
                await OutboxRepository(session).replay("1", clock())
            except DeliveryInFlight as exc:
                refused.append(str(exc))

    receiver.before_answer = replay_meanwhile
    async with dispatcher(sessions, clock) as d:
        assert await d.run_once() == 1
        assert await d.run_once() == 0
    assert refused == ["delivery 1 is being delivered right now; not queued again"]
    assert receiver.requests == 1
    assert await event_status(sessions) == (DeliveryStatus.DELIVERED, 1, None)


async def test_an_endpoint_set_again_after_410_gets_a_fresh_retry_schedule(
    sessions: Sessions, receiver: Receiver, clock: Clock
) -> None:
    # A 410 after six failures left the event one try from its dead letter once the endpoint was back.
    receiver.answers = [500] * 6 + [410, 500]
    await open_case(sessions, now=clock())
    async with dispatcher(sessions, clock) as d:
        for _ in range(7):
            assert await d.run_once() == 1
            clock.advance(timedelta(hours=13))
        await set_url(sessions, "TRANSPORT", receiver.url)
        assert await d.run_once() == 1
        assert await event_status(sessions) == (DeliveryStatus.PENDING, 8, "HTTP 500")
        clock.advance(RETRY_DELAYS[0] * 1.3)
        assert await d.run_once() == 1
    assert await event_status(sessions) == (DeliveryStatus.DELIVERED, 9, None)


async def test_a_failed_deliverys_error_and_log_leave_out_the_endpoints_query_string(
    sessions: Sessions, departments: dict[str, Dept], clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    # aiohttp's error for a malformed answer quotes the whole URL, a token in its query string too.
    async def malformed(request: web.Request) -> web.StreamResponse:
        await request.read()
        assert request.transport is not None
        request.transport.write(b"HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n")
        request.transport.close()
        return web.Response()

    app = web.Application()
    app.router.add_post("/hook", malformed)
    async with TestServer(app, host="127.0.0.1") as server:
        endpoint = str(server.make_url("/hook"))
        await set_url(sessions, "TRANSPORT", endpoint + "?token=s3cret-in-the-url")
        await open_case(sessions, now=clock())
        async with dispatcher(sessions, clock) as d:
            assert await d.run_once() == 1
    error = (await event_status(sessions))[2]
    assert error is not None
    assert error.startswith("ClientResponseError: 400")
    assert f"url='{endpoint}'" in error
    assert "s3cret" not in error
    [logged] = [r.getMessage() for r in caplog.records if r.name == "bot.dispatch"]
    assert f"url='{endpoint}'" in logged
    assert "s3cret" not in logged


class DatabaseDown:
    """The dispatcher's sessions, out of reach for the next ``rounds`` transactions the test asks for."""

    def __init__(self, sessions: Sessions) -> None:
        self.sessions = sessions
        self.rounds = 0

    def __call__(self) -> Any:
        return self.sessions()

    def begin(self) -> Any:
        if self.rounds:
            self.rounds -= 1
            raise OperationalError("BEGIN", None, ConnectionRefusedError(111, "Connect call failed"))
        return self.sessions.begin()


async def test_a_database_outage_is_one_warning_and_the_event_goes_out_again_once_it_is_back(
    sessions: Sessions, receiver: Receiver, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    # Every poll of the outage logged a traceback: five a second per process.
    caplog.set_level(logging.INFO, logger="bot.dispatch")
    await open_case(sessions, now=clock())
    config = DispatchConfig(policy=LOCAL, poll=0.02, concurrency=8)
    down = DatabaseDown(sessions)

    async def outage() -> None:
        """The database goes while the delivery waits: its result is lost and its lease runs out."""
        receiver.before_answer = None
        down.rounds = 20
        clock.advance(config.lease + timedelta(seconds=1))

    receiver.before_answer = outage
    async with Dispatcher(cast(Sessions, down), config, clock=clock, name="test-dispatcher") as d:
        task = asyncio.create_task(d.run())
        await receiver.wait_for(2)
        d.stop()
        await asyncio.wait_for(task, timeout=10)
    assert (await event_status(sessions))[:2] == (DeliveryStatus.DELIVERED, 2)
    first, second = receiver.received
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    problems = [r for r in caplog.records if r.name == "bot.dispatch" and r.levelno >= logging.WARNING]
    assert [(r.levelno, r.exc_info) for r in problems] == [(logging.WARNING, None)]
    assert "out of reach" in problems[0].getMessage()
    [back] = [r.getMessage() for r in caplog.records if "reachable again" in r.getMessage()]
    assert "1 result could not be recorded" in back


async def test_a_410_from_the_old_endpoint_after_the_url_was_changed_leaves_the_new_one_enabled(
    sessions: Sessions, departments: dict[str, Dept], receiver: Receiver, clock: Clock
) -> None:
    # The department moves its endpoint and retires the old one with 410 Gone, as Standard Webhooks asks;
    # a delivery in flight to the old address when staff saved the new one must not disable the new one.
    async with receiving(departments["TRANSPORT"].secret) as moved:
        receiver.answers = [410]
        receiver.before_answer = lambda: set_url(sessions, "TRANSPORT", moved.url)
        await open_case(sessions, now=clock())
        async with dispatcher(sessions, clock) as d:
            assert await d.run_once() == 1
            async with sessions() as session:
                department = await DepartmentRepository(session).get("TRANSPORT")
            assert department is not None
            assert (department.webhook_url, department.webhook_enabled) == (moved.url, True)
            assert await d.run_once() == 1
        assert len(moved.received) == 1
    assert await event_status(sessions) == (DeliveryStatus.DELIVERED, 2, None)


async def test_events_failing_at_an_old_endpoint_go_to_a_new_one_at_once_with_a_fresh_schedule(
    sessions: Sessions, departments: dict[str, Dept], receiver: Receiver, clock: Clock
) -> None:
    # The old endpoint failed six times: the event waited 10 hours for its next try, and one hiccup of the
    # new endpoint would have dead-lettered it (holding back every later event of its case).
    receiver.answers = [500] * 6
    await open_case(sessions, now=clock())
    async with receiving(departments["TRANSPORT"].secret) as moved:
        async with dispatcher(sessions, clock) as d:
            for _ in range(6):
                assert await d.run_once() == 1
                clock.advance(timedelta(hours=6))
            await set_url(sessions, "TRANSPORT", moved.url)
            moved.answers = [503]
            assert await d.run_once() == 1
            assert await event_status(sessions) == (DeliveryStatus.PENDING, 7, "HTTP 503")
            clock.advance(RETRY_DELAYS[0] * 1.3)
            assert await d.run_once() == 1
        assert len(moved.received) == 2
    assert await event_status(sessions) == (DeliveryStatus.DELIVERED, 8, None)


async def test_a_2xx_whose_body_never_comes_is_delivered_not_retried(
    sessions: Sessions, departments: dict[str, Dept], clock: Clock
) -> None:
    # An endpoint that sends its status at once and finishes its body after the work (Node's writeHead,
    # a streaming framework) took the event; retrying it sent it again at every step of the schedule.
    finished = asyncio.Event()

    async def answer_first(request: web.Request) -> web.StreamResponse:
        await request.read()
        response = web.StreamResponse(status=202, headers={"Content-Length": "2"})
        await response.prepare(request)
        await finished.wait()
        return response

    app = web.Application()
    app.router.add_post("/hook", answer_first)
    async with TestServer(app, host="127.0.0.1") as server:
        await set_url(sessions, "TRANSPORT", str(server.make_url("/hook")))
        await open_case(sessions, now=clock())
        try:
            async with dispatcher(sessions, clock, timeout=0.3) as d:
                assert await d.run_once() == 1
        finally:
            finished.set()
    assert await event_status(sessions) == (DeliveryStatus.DELIVERED, 1, None)
