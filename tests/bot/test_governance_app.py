"""The running bot: the public stats endpoint, the retention job in cleanup_ctx, the phone region."""

from __future__ import annotations

from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bot.app import create_app
from bot.config import ConfigError, load_settings
from bot.governance import RETENTION
from storage import masking

Client = TestClient[web.Request, web.Application]


async def test_the_app_serves_stats_and_schedules_retention(tmp_path: Path) -> None:
    settings = load_settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'govbot.db'}", retention_days=30, phone_region="GB"
    )
    try:
        async with TestClient(TestServer(create_app(settings))) as client:
            response = await client.get("/api/v1/stats")
            assert response.status == 200
            assert response.headers["Cache-Control"].startswith("public")
            body = await response.json()
            assert body["min_people"] == 5
            assert body["questions_asked"] == {"value": None, "suppressed": True}
            assert client.app[RETENTION].days == 30
            assert masking.current_region() == "GB"
            assert masking.mask("ring 0121 496 0000") == "ring 012****0000"  # a Birmingham number
    finally:
        masking.use_region(masking.DEFAULT_REGION)
    assert masking.mask("ring 0121 496 0000") == "ring 0121 496 0000"  # not a number in China


def test_governance_settings_come_from_their_environment_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOVBOT_PHONE_REGION", "hk")
    monkeypatch.setenv("GOVBOT_RETENTION_DAYS", "90")
    settings = load_settings()
    assert (settings.phone_region, settings.retention_days) == ("HK", 90)


@pytest.mark.parametrize(("name", "value"), [("GOVBOT_PHONE_REGION", "XX"), ("GOVBOT_RETENTION_DAYS", "0")])
def test_bad_governance_settings_are_refused_by_name(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=name):
        load_settings()
