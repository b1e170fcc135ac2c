"""Departments with tokens and secrets, cases, and the department API on a real database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.api import PREFIX, create_api
from bot.keys import SESSIONS, WAKE
from bot.webhooks import new_secret
from storage.cases import Case, CaseRepository, NewCase
from storage.citizens import CitizenRepository
from storage.departments import DepartmentRepository, new_token
from tests.escalation.dispatching import Clock

NOW = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)
Client = TestClient[web.Request, web.Application]


@dataclass(frozen=True)
class Dept:
    code: str
    token: str
    secret: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@pytest.fixture
def clock() -> Clock:
    """The dispatcher's time, moved by the test."""
    return Clock()


@pytest.fixture
async def departments(sessions: async_sessionmaker[AsyncSession]) -> dict[str, Dept]:
    """TRANSPORT (tickets TR-…) and TAX (TX-…), each with an API token and a secret, no endpoint yet."""
    made = {}
    async with sessions.begin() as session:
        repo = DepartmentRepository(session)
        for code, prefix, name in (("TRANSPORT", "TR", "Transport Bureau"), ("TAX", "TX", "Tax Bureau")):
            dept = Dept(code, new_token(), new_secret())
            await repo.add(
                code,
                {"en": name, "zh": "局"},
                secrets=[dept.secret],
                ticket_prefix=prefix,
                categories=[code.lower()],
                now=NOW,
            )
            await repo.set_token(code, dept.token)
            made[code] = dept
    return made


async def open_case(
    sessions: async_sessionmaker[AsyncSession],
    department: str = "TRANSPORT",
    *,
    user: str = "42",
    description: str = "The 7 bus did not stop at Harbour Road this morning.",
    now: datetime = NOW,
) -> Case:
    """A citizen on the test channel opens a case, as the escalation dialogue would."""
    async with sessions.begin() as session:
        citizen = await CitizenRepository(session).get_or_create("test", user, now=now)
        await CitizenRepository(session).record_message(citizen.id, "in", "bus did not stop", now=now)
        return await CaseRepository(session).open_case(
            NewCase(citizen.id, "test", user, "en", department, description), now
        )


@pytest.fixture
async def api(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[Client]:
    """The department API mounted as in govbot's app, on the test database."""
    app = web.Application()
    app[SESSIONS] = sessions
    app[WAKE] = []
    app.add_subapp(PREFIX, create_api(clock=lambda: NOW))
    async with TestClient(TestServer(app)) as client:
        yield client
