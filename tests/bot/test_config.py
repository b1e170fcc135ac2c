"""Settings: defaults that make a working local bot, one clear message for every bad value."""

from __future__ import annotations

import pickle
from datetime import UTC
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.cli import main
from bot.config import SAMPLE_KB, ConfigError, load_settings
from tests.conftest import clear_govbot_settings


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    clear_govbot_settings(monkeypatch)


def test_defaults_make_a_local_bot_on_sqlite_with_the_sample_knowledge_base() -> None:
    settings = load_settings()
    assert settings.database_url == "sqlite+aiosqlite:///var/govbot.db"
    assert (settings.http_host, settings.http_port) == ("127.0.0.1", 8080)
    assert settings.kb_paths == [SAMPLE_KB]
    assert settings.telegram_token is None


def test_environment_variables_are_read_with_the_govbot_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOVBOT_HTTP_PORT", "9090")
    monkeypatch.setenv("GOVBOT_TELEGRAM_TOKEN", "123:hunter2")
    settings = load_settings()
    assert settings.http_port == 9090
    assert settings.telegram_token is not None
    assert settings.telegram_token.get_secret_value() == "123:hunter2"
    assert "hunter2" not in repr(settings)


def test_config_file_is_read_and_the_environment_overrides_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "govbot.yaml"
    config.write_text("http_port: 9000\nlog_level: debug\n", encoding="utf-8")
    assert load_settings(config).http_port == 9000
    assert load_settings(config).log_level == "DEBUG"
    monkeypatch.setenv("GOVBOT_HTTP_PORT", "9001")
    assert load_settings(config).http_port == 9001


def test_settings_from_a_config_file_can_be_handed_to_worker_processes(tmp_path: Path) -> None:
    # `govbot run --config FILE --workers N` pickles the settings for each worker; those read from a file
    # were an instance of a class made inside load_settings, which cannot be pickled: no worker started.
    config = tmp_path / "govbot.yaml"
    config.write_text("http_port: 9000\ntelegram_token: '1:secret'\n", encoding="utf-8")
    loaded = load_settings(config)
    copied = pickle.loads(pickle.dumps(loaded))  # noqa: S301 - our own object, as multiprocessing does
    assert copied == loaded
    assert (copied.http_port, copied.telegram_token.get_secret_value()) == (9000, "1:secret")


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("GOVBOT_HTTP_PORT", "eighty", "invalid setting GOVBOT_HTTP_PORT"),
        ("GOVBOT_HTTP_PORT", "70000", "invalid setting GOVBOT_HTTP_PORT"),
        ("GOVBOT_DATABASE_URL", "mysql://root:hunter2@db/x", "invalid setting GOVBOT_DATABASE_URL"),
        ("GOVBOT_LOG_LEVEL", "LOUD", "invalid setting GOVBOT_LOG_LEVEL"),
        ("GOVBOT_PUBLIC_URL", "ftp://x", "invalid setting GOVBOT_PUBLIC_URL"),
        ("GOVBOT_WEB_TRUSTED_PROXIES", "10.0.0.0/8, proxy.local", "'proxy.local' is not a network"),
        ("GOVBOT_MATCH_CACHE_SIZE", "-1", "invalid setting GOVBOT_MATCH_CACHE_SIZE"),
        ("GOVBOT_WEBHOOK_ALLOWED_NETWORKS", "10.0.0.0/33", "is not a network in CIDR notation"),
        ("GOVBOT_KB_PATHS", "kb/", r"invalid setting GOVBOT_KB_PATHS: not JSON \(a list or an object"),
        ("GOVBOT_MATCHER_THRESHOLDS", "answer_score=0.5", "GOVBOT_MATCHER_THRESHOLDS: not JSON"),
        ("GOVBOT_TIMEZONE", "Asia/Shangai", "invalid setting GOVBOT_TIMEZONE: .*IANA time zone name"),
        ("GOVBOT_TIMEZONE", "../../etc/passwd", "invalid setting GOVBOT_TIMEZONE: .*IANA time zone name"),
        ("GOVBOT_TIMEZONE", "+08:00", "invalid setting GOVBOT_TIMEZONE: .*IANA time zone name"),
    ],
)
def test_invalid_value_names_the_setting(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, message: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=message) as raised:
        load_settings()
    assert "hunter2" not in str(raised.value)


def test_the_time_zone_is_utc_unless_an_iana_name_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings().zone() is UTC  # no time zone database needed for the default
    monkeypatch.setenv("GOVBOT_TIMEZONE", "Asia/Shanghai")
    assert load_settings().zone() == ZoneInfo("Asia/Shanghai")


def test_an_unknown_time_zone_stops_govbot_with_the_configuration_exit_code(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GOVBOT_TIMEZONE", "Beijing")
    assert main(["db", "upgrade"]) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("govbot: configuration error: invalid setting GOVBOT_TIMEZONE:")
    assert "'Beijing'" in line


def test_unknown_key_or_missing_or_malformed_config_file_is_a_clear_error(tmp_path: Path) -> None:
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text("http_prot: 1\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="unknown setting 'http_prot'"):
        load_settings(unknown)
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match=f"config file {tmp_path} is a directory"):
        load_settings(tmp_path)
    broken = tmp_path / "broken.yaml"
    broken.write_text("http_port: [1,\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"broken\.yaml"):
        load_settings(broken)


def test_matcher_thresholds_are_configurable_per_category(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOVBOT_MATCHER_THRESHOLDS", '{"answer_score": 0.9}')
    monkeypatch.setenv("GOVBOT_MATCHER_CATEGORY_THRESHOLDS", '{"health": {"answer_margin": 0.5}}')
    config = load_settings().matcher_config()
    assert config.thresholds.answer_score == 0.9
    assert config.thresholds_for("health").answer_score == 0.9
    assert config.thresholds_for("health").answer_margin == 0.5
    assert config.thresholds_for("tax") == config.thresholds


def test_unknown_matcher_threshold_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOVBOT_MATCHER_THRESHOLDS", '{"answer_scroe": 0.9}')
    with pytest.raises(ConfigError, match=r"GOVBOT_MATCHER_THRESHOLDS: .*unknown thresholds"):
        load_settings()


def test_a_misspelt_setting_in_the_config_file_is_named_without_its_value(tmp_path: Path) -> None:
    # A misspelt secret is still a secret: the message must not print the token or the password.
    config = tmp_path / "govbot.yaml"
    config.write_text('telegram_tokn: "123456:AAhunter2"\ndatabase_ur: "postgresql+asyncpg://u:hunter2@db/x"\n',
                      encoding="utf-8")
    with pytest.raises(ConfigError, match="unknown setting 'telegram_tokn'") as raised:
        load_settings(config)
    assert "database_ur" in str(raised.value)
    assert "hunter2" not in str(raised.value)


def test_a_misspelt_setting_in_the_environment_stops_govbot_and_says_which_was_meant(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Ignored, GOVBOT_DATABSE_URL left production on the default SQLite file, and nobody was told.
    monkeypatch.setenv("GOVBOT_DATABSE_URL", "postgresql+asyncpg://govbot:hunter2@db/govbot")
    assert main(["db", "upgrade"]) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line == ("govbot: configuration error: unknown setting GOVBOT_DATABSE_URL in the environment "
                    "(GOVBOT_DATABASE_URL?)")


def test_the_test_suites_and_benchmarks_own_variables_are_not_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GOVBOT_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1/test")
    monkeypatch.setenv("GOVBOT_BENCH_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1/test")
    assert load_settings().http_port == 8080


@pytest.mark.parametrize("content", ["5\n", "- http_port\n", "just words\n"])
def test_a_config_file_that_is_not_a_mapping_of_settings_is_a_clear_error(
        tmp_path: Path, content: str) -> None:
    config = tmp_path / "govbot.yaml"
    config.write_text(content, encoding="utf-8")
    with pytest.raises(ConfigError, match=r"config file .*govbot\.yaml: must be a mapping of setting names"):
        load_settings(config)


def test_an_empty_config_file_means_the_defaults(tmp_path: Path) -> None:
    config = tmp_path / "govbot.yaml"
    config.write_text("# nothing set yet\n", encoding="utf-8")
    assert load_settings(config).http_port == 8080



@pytest.mark.parametrize("url", ["postgresql+asyncpg://govbot:hunter2@db:port/govbot",
                                 "postgresql+asyncpg://govbot:hunter2@db:99999999999999999999x/govbot"])
def test_a_database_url_that_cannot_be_parsed_names_the_setting_without_the_password(
        monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.setenv("GOVBOT_DATABASE_URL", url)
    with pytest.raises(ConfigError, match=r"invalid setting GOVBOT_DATABASE_URL: .*port") as raised:
        load_settings()
    assert "hunter2" not in str(raised.value)
