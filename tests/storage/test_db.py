"""The engine govbot makes: what its errors may say."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine


async def test_a_failed_statement_does_not_carry_its_parameters_into_the_error(engine: AsyncEngine) -> None:
    words = "my phone is 13800138000, please call"
    with pytest.raises(DBAPIError) as raised:
        async with engine.begin() as connection:
            await connection.execute(text("INSERT INTO no_such_table (x) VALUES (:x)"), {"x": words})
    assert "no_such_table" in str(raised.value), "the statement itself is still shown"
    assert words not in str(raised.value)
    assert "13800138000" not in str(raised.value)
