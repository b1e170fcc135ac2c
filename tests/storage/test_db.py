"""The engine govbot makes: what its errors may say."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from storage import db


async def test_a_failed_statement_does_not_carry_its_parameters_into_the_error(engine: AsyncEngine) -> None:
    words = "my phone is 13800138000, please call"
    with pytest.raises(DBAPIError) as raised:
        async with engine.begin() as connection:
            await connection.execute(text("INSERT INTO no_such_table (x) VALUES (:x)"), {"x": words})
    assert "no_such_table" in str(raised.value), "the statement itself is still shown"
    assert words not in str(raised.value)
    assert "13800138000" not in str(raised.value)


@pytest.mark.postgres
async def test_a_database_that_does_not_exist_is_unavailable_not_a_driver_error(postgres_url: str) -> None:
    missing = make_url(postgres_url).set(database="govbot_no_such_database").render_as_string()
    with pytest.raises(db.DatabaseUnavailable, match=r"govbot_no_such_database.*does not exist"):
        async with db.reachable(missing):
            pass
