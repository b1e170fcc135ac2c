"""Prometheus metrics, served at /metrics: of this process, or of all workers of `govbot run --workers`."""

from __future__ import annotations

import os
from collections.abc import Iterable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.types import Reply
from storage.departments import DepartmentRepository

OUTCOMES = {"answer", "clarify", "fallback"}


class Metrics:
    """The counters and histograms govbot exports; one registry per application, so tests stay apart."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.updates = Counter(
            "govbot_updates_handled",
            "Incoming updates handled",
            ["channel", "result"],
            registry=self.registry,
        )
        self.outcomes = Counter(
            "govbot_match_outcomes", "Outcomes of free-text questions", ["outcome"], registry=self.registry
        )
        self.latency = Histogram(
            "govbot_update_latency_seconds",
            "Time from receiving an update to having its replies",
            ["channel"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
            registry=self.registry,
        )

    def observe(
        self, channel: str, replies: Iterable[Reply], seconds: float, *, failed: bool = False
    ) -> None:
        """Count one handled update, the matcher outcome its replies show, and how long it took."""
        self.updates.labels(channel, "error" if failed else "ok").inc()
        for reply in replies:
            if reply.kind in OUTCOMES:
                self.outcomes.labels(reply.kind).inc()
        self.latency.labels(channel).observe(seconds)

    async def handler(self, request: web.Request) -> web.Response:
        """GET /metrics in the Prometheus text format: this process's series, or, under `govbot run
        --workers N`, every worker's summed (whichever worker a scrape reaches)."""
        body = generate_latest(_all_workers() if os.environ.get(MULTIPROCESS_DIR) else self.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def from_zero(per_department: Counter, sessions: async_sessionmaker[AsyncSession]) -> None:
    """Start every known department's series at 0: without it a series first appears at 1, and an alert on
    a rise (``increase(…) > 0``) misses a department's first dead letter."""
    async with sessions() as session:
        for department in await DepartmentRepository(session).all():
            per_department.labels(department.code)


MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"
"""prometheus_client's multiprocess mode: set (by the supervisor) before a worker starts, every counter
and histogram is kept in a file there, and a scrape sums the files of all workers, living or dead."""


def _all_workers() -> CollectorRegistry:
    registry = CollectorRegistry()
    MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return registry
