"""The dispatcher: claims due outbox events, delivers them signed to departments, records every attempt.

Delivery is at least once: an event is claimed under a lease, posted, and only then marked delivered;
a process that dies mid-delivery leaves a lease that runs out, and another dispatcher (or this one,
restarted) tries again with the same ``webhook-id``. Any number of dispatchers may run against PostgreSQL.
Success is a 2xx answer within the timeout; redirects are not followed; 410 Gone disables the endpoint;
anything else is retried on the schedule of :data:`bot.webhooks.RETRY_DELAYS`, then dead-lettered.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import errno
import logging
import os
import random
import secrets
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver
from prometheus_client import CollectorRegistry, Counter, Histogram
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config import Settings
from bot.metrics import from_zero
from bot.polling import PollTimer
from bot.webhooks import (
    EndpointRefused,
    InvalidSecret,
    UrlPolicy,
    body_bytes,
    retry_at,
    signed_headers,
    without_secrets,
)
from storage import cases as _cases  # noqa: F401 - the outbox's foreign keys point at its tables
from storage.db import Outage, reconnecting
from storage.departments import DepartmentRepository
from storage.governance import governed_deliveries
from storage.models import utcnow
from storage.outbox import AttemptResult, Delivery, OutboxRepository, Outcome

log = logging.getLogger(__name__)

READ_LIMIT = 64 * 1024
"""Bytes of a department's answer read (and ignored) so the connection can be reused."""


@dataclass(frozen=True)
class DispatchConfig:
    """How the dispatcher works; made from the settings."""

    policy: UrlPolicy
    timeout: float = 15.0
    lease: timedelta = timedelta(seconds=60)
    poll: float = 0.2
    concurrency: int = 64

    @classmethod
    def from_settings(cls, settings: Settings) -> DispatchConfig:
        return cls(
            policy=UrlPolicy.create(settings.webhook_allow_http, settings.webhook_allowed_networks),
            timeout=settings.webhook_timeout_seconds,
            # A claim must outlive the slowest attempt, or a second dispatcher could start the same one.
            lease=timedelta(
                seconds=max(settings.dispatch_lease_seconds, 2 * settings.webhook_timeout_seconds)
            ),
            poll=settings.dispatch_poll_seconds,
            concurrency=settings.dispatch_concurrency,
        )


class DispatchMetrics:
    """Prometheus series of deliveries; dead letters are what staff should alert on."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry = registry or CollectorRegistry()
        self.attempts = Counter(
            "govbot_webhook_attempts", "Delivery attempts", ["department", "outcome"], registry=registry
        )
        self.dead = Counter(
            "govbot_webhook_dead_letters",
            "Deliveries given up after the whole retry schedule",
            ["department"],
            registry=registry,
        )
        self.latency = Histogram(
            "govbot_webhook_latency_seconds",
            "Time a department's endpoint took to answer",
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15),
            registry=registry,
        )
        self.first_attempt_delay = Histogram(
            "govbot_webhook_first_attempt_delay_seconds",
            "Time from an event to its first delivery attempt",
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60),
            registry=registry,
        )


class GuardedResolver(AbstractResolver):
    """Resolves endpoint names and drops every address the URL policy refuses (DNS rebinding)."""

    def __init__(self, policy: UrlPolicy, inner: AbstractResolver | None = None) -> None:
        self.policy = policy
        self.inner = inner or DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self.inner.resolve(host, port, family)
        allowed = set(self.policy.allowed([r["host"] for r in results]))
        kept = [r for r in results if r["host"] in allowed]
        if not kept:
            refused = ", ".join(sorted({r["host"] for r in results}))
            # errno and strerror, so aiohttp's connection error carries the reason.
            raise OSError(errno.EPERM, f"{host} resolves only to refused addresses ({refused})")
        return kept

    async def close(self) -> None:
        await self.inner.close()


class Dispatcher:
    """Delivers outbox events: ``run_once`` for one round (tests), ``run`` until ``stop``."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        config: DispatchConfig,
        *,
        clock: Callable[[], datetime] = utcnow,
        rng: random.Random | None = None,
        metrics: DispatchMetrics | None = None,
        signing_clock: Callable[[], float] = time.time,
        name: str | None = None,
    ) -> None:
        self.sessions = sessions
        self.config = config
        self.clock = clock
        self.rng = rng or random.Random()
        self.metrics = metrics or DispatchMetrics()
        # The signature's timestamp is the real time of sending: receivers check it against their clocks.
        self.signing_clock = signing_clock
        self.name = name or f"{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(3)}"
        self._http: aiohttp.ClientSession | None = None
        self._timeout = aiohttp.ClientTimeout(total=config.timeout)
        self._accepted_urls: set[str] = set()
        """URLs whose form the policy accepted: a few per department, checked once instead of per delivery."""
        self._poll = PollTimer(config.poll)
        self._results: asyncio.Queue[AttemptResult] = asyncio.Queue()
        self._held: collections.Counter[str] = collections.Counter()
        """Deliveries in flight per department: each may hold at most ``share`` of the slots."""
        self._outage = Outage(log, f"dispatcher {self.name}", "events wait until it is back")
        self._unrecorded = 0
        """Results lost while the database was out of reach: their events go again after their leases."""

    @property
    def share(self) -> int:
        """The most deliveries one department may have in flight: half the slots, so that a department
        whose endpoint hangs, however many events it has waiting, leaves the other half to the others."""
        return max(1, self.config.concurrency // 2)

    async def __aenter__(self) -> Dispatcher:
        await from_zero(self.metrics.dead, self.sessions)  # so that an alert on a rise sees the first one
        connector = aiohttp.TCPConnector(
            resolver=GuardedResolver(self.config.policy), limit=self.config.concurrency, ttl_dns_cache=10
        )
        self._http = aiohttp.ClientSession(connector=connector, trust_env=False)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None

    def wake(self) -> None:
        """Look for due events now instead of at the next poll."""
        self._poll.wake()

    def stop(self) -> None:
        """Finish the deliveries in flight, record them, and return from :meth:`run`."""
        self._poll.stop()

    async def run_once(self) -> int:
        """Claim what is due, deliver it all, record the results; the number of attempts made."""
        claimed = await self._claim(*self._room(self.config.concurrency))
        results = await asyncio.gather(*(self._attempt(delivery) for delivery in claimed))
        await self._record(results)
        return len(results)

    async def run(self) -> None:
        """Deliver until :meth:`stop`: up to ``concurrency`` at once, results written in batches.

        A database out of reach is one warning when it goes and one line when it is back, not a traceback
        every poll."""
        writer = asyncio.create_task(self._write_results(), name="dispatch-writer")
        inflight: set[asyncio.Task[None]] = set()
        loop, last_claim = asyncio.get_running_loop(), float("-inf")
        log.info("dispatcher %s started", self.name)
        try:
            while not self._poll.stopping:
                room, leave_out = self._room(self.config.concurrency - len(inflight))
                # A claim costs a transaction of about ten statements whatever its size: claim once there
                # is room for half a share, not for each few finished deliveries (466 → 561 deliveries/s
                # with one dispatcher, docs/PERFORMANCE.md), but wait no longer than a poll interval, so
                # an endpoint that hangs cannot hold back other departments' events. A claim that leaves
                # departments out waits for the poll interval: while one department's backlog is all
                # there is, it would find nothing each time a delivery finishes.
                waited = loop.time() - last_claim >= self.config.poll or not inflight
                worth = room > 0 and (waited or (room >= max(1, self.share // 2) and not leave_out))
                if worth:
                    last_claim = loop.time()
                claimed = await self._claim_safely(room, leave_out) if worth else []
                for delivery in claimed:
                    self._held[delivery.department] += 1
                    task = asyncio.create_task(self._deliver_and_queue(delivery))
                    inflight.add(task)
                    task.add_done_callback(inflight.discard)
                if len(claimed) < room or not worth:
                    await self._poll.pause()
        finally:
            await asyncio.gather(*inflight, return_exceptions=True)
            await self._results.join()
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer
            log.info("dispatcher %s stopped", self.name)

    def _room(self, free: int) -> tuple[int, list[str]]:
        """How many events the next claim may take with ``free`` slots, and the departments it leaves out.

        A department holding more than half its share sits the claim out; the claim takes no more than
        any other department may still add to what it holds, so no department passes its share, and a
        claim is never smaller than half a share for want of room."""
        leave_out = sorted(code for code, held in self._held.items() if held > self.share // 2)
        most_held = max((held for held in self._held.values() if held <= self.share // 2), default=0)
        return min(free, self.share - most_held), leave_out

    async def _claim_safely(self, limit: int, leave_out: Sequence[str]) -> list[Delivery]:
        try:
            claimed = await self._claim(limit, leave_out)
        except Exception as exc:
            if not self._outage.began(exc):
                log.exception("dispatcher %s could not claim events; trying again shortly", self.name)
            return []
        self._reachable()
        return claimed

    async def _claim(self, limit: int, leave_out: Sequence[str]) -> list[Delivery]:
        async with self.sessions.begin() as session:
            claimed = await OutboxRepository(session).claim(
                self.name, self.clock(), limit=limit, lease=self.config.lease, leave_out=leave_out
            )
            # Each payload as the department may receive it now (clearance, consent, erasure), audited.
            return await governed_deliveries(session, claimed, self.clock())

    async def _deliver_and_queue(self, delivery: Delivery) -> None:
        try:
            result = await self._attempt(delivery)
        finally:
            self._held[delivery.department] -= 1
            if not self._held[delivery.department]:
                del self._held[delivery.department]
        await self._results.put(result)

    async def _write_results(self) -> None:
        while True:
            batch = [await self._results.get()]
            while not self._results.empty():
                batch.append(self._results.get_nowait())
            try:
                await self._record(batch)
            except Exception as exc:
                # The leases run out and the events are tried again: at least once still holds.
                if self._outage.began(exc):
                    self._unrecorded += len(batch)
                else:
                    log.exception("dispatcher %s could not record %d results", self.name, len(batch))
            else:
                self._reachable()
            finally:
                for _ in batch:
                    self._results.task_done()
            self._poll.wake()  # recorded events may let the next event of their case go

    def _reachable(self) -> None:
        """One line when the database is back after an outage, with the results it lost."""
        if not self._outage.ongoing:
            return
        lost = ""
        if self._unrecorded:
            results = "1 result" if self._unrecorded == 1 else f"{self._unrecorded} results"
            lost = f"; {results} could not be recorded meanwhile: their events go again after their leases"
        self._outage.ended(lost)
        self._unrecorded = 0

    async def _attempt(self, delivery: Delivery) -> AttemptResult:
        """One signed POST; never raises."""
        started, began = self.clock(), time.perf_counter()
        if delivery.attempt == 1:
            self._observe_first_attempt(delivery, started)
        status: int | None = None
        error: str | None = None
        try:
            status = await self._post(delivery)
            if not 200 <= status < 300:
                error = f"HTTP {status}" + (" (redirects are not followed)" if 300 <= status < 400 else "")
        except EndpointRefused as exc:
            error = f"endpoint refused: {exc}"
        except InvalidSecret as exc:
            error = f"signing secret unusable: {exc}"
        except TimeoutError:
            error = f"no answer within {self.config.timeout:g} s"
        except aiohttp.ClientError as exc:
            error = f"{type(exc).__name__}: {exc}"
        except OSError as exc:
            error = f"{type(exc).__name__}: {exc}"
        if error is not None:
            error = without_secrets(error)  # stored and logged: no endpoint's query string or credentials
        latency = time.perf_counter() - began
        return self._result(delivery, started, status, error, latency)

    async def _post(self, delivery: Delivery) -> int:
        assert self._http is not None, "use the dispatcher as `async with Dispatcher(…)`"
        if delivery.url not in self._accepted_urls:
            self.config.policy.check_url(delivery.url)  # literal addresses; names are checked by the resolver
            self._accepted_urls.add(delivery.url)
        if not delivery.secrets:
            raise InvalidSecret(f"department {delivery.department} has no signing secret")
        body = body_bytes(delivery.payload)
        headers = signed_headers(delivery.secrets, delivery.webhook_id, int(self.signing_clock()), body)
        async with self._http.post(
            delivery.url,
            data=body,
            headers=headers,
            allow_redirects=False,
            timeout=self._timeout,
        ) as response:
            # The status decides; the body is read only so the connection can be reused. A 2xx whose body
            # is late (an endpoint that answers first and finishes after its work) was still taken.
            with contextlib.suppress(TimeoutError, aiohttp.ClientError):
                await response.content.read(READ_LIMIT)
            return response.status

    def _result(
        self, delivery: Delivery, started: datetime, status: int | None, error: str | None, latency: float
    ) -> AttemptResult:
        outcome, retry = Outcome.DELIVERED, None
        if status == 410:
            outcome = Outcome.GONE
        elif error is not None:
            outcome, retry = Outcome.FAILED, retry_at(delivery.tries, self.clock(), self.rng)
        self.metrics.attempts.labels(delivery.department, outcome.value).inc()
        self.metrics.latency.observe(latency)
        return AttemptResult(
            delivery,
            outcome,
            started,
            status_code=status,
            latency_ms=round(latency * 1000),
            error=error,
            retry_at=retry,
        )

    async def _record(self, results: Sequence[AttemptResult]) -> None:
        if not results:
            return
        now = self.clock()
        disabled: set[int] = set()
        """Deliveries whose 410 disabled the endpoint (not one from an address replaced since)."""

        async def store() -> None:
            disabled.clear()
            async with self.sessions.begin() as session:
                await OutboxRepository(session).record(self.name, results, now)
                for result in results:
                    if result.outcome is Outcome.GONE and await DepartmentRepository(session).disable_webhook(
                        result.delivery.department,
                        f"410 Gone at {now:%Y-%m-%d %H:%M} UTC",
                        now=now,
                        url=result.delivery.url,
                    ):
                        disabled.add(result.delivery.id)

        # Results lost to a restarted database would have their events delivered a second time.
        await reconnecting(store)
        for result in results:
            self._report(result, disabled=result.delivery.id in disabled)

    def _report(self, result: AttemptResult, *, disabled: bool = False) -> None:
        delivery = result.delivery
        if result.outcome is Outcome.GONE and not disabled:
            log.warning(
                "department %s: its former endpoint answered 410 Gone; %s goes to the new one",
                delivery.department,
                delivery.webhook_id,
            )
        elif result.outcome is Outcome.GONE:
            log.error(
                "department %s answered 410 Gone: its endpoint is disabled and its events wait; "
                "re-enable with `govbot departments update %s --webhook-url URL`",
                delivery.department,
                delivery.department,
            )
        elif result.outcome is Outcome.FAILED and result.retry_at is None:
            self.metrics.dead.labels(delivery.department).inc()
            log.error(
                "DEAD LETTER: %s %s of case %d to %s failed %d times (last: %s); "
                "replay with `govbot deliveries replay %d`",
                delivery.type,
                delivery.webhook_id,
                delivery.case_id,
                delivery.department,
                delivery.tries,
                result.error,
                delivery.id,
            )
        elif result.outcome is Outcome.FAILED:
            log.warning(
                "delivery %s to %s failed (%s); retry at %s",
                delivery.webhook_id,
                delivery.department,
                result.error,
                result.retry_at,
            )

    def _observe_first_attempt(self, delivery: Delivery, started: datetime) -> None:
        created = _parse_time(delivery.payload.get("timestamp"))
        if created is not None:
            self.metrics.first_attempt_delay.observe(max((started - created).total_seconds(), 0.0))


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
