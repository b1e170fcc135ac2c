"""One validated settings object, made at start-up from the environment and an optional file."""

from __future__ import annotations

import difflib
import os
import re
from dataclasses import fields, replace
from datetime import UTC, tzinfo
from ipaddress import ip_network
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
import yaml
from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
    YamlConfigSettingsSource,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from knowledge.matcher import RECENT_MATCHES, MatcherConfig, Thresholds

THRESHOLD_NAMES = {f.name for f in fields(Thresholds)}
ENV_PREFIX = "GOVBOT_"
NOT_SETTINGS = ("GOVBOT_TEST_", "GOVBOT_BENCH_")
"""Prefixes of the test suite's and the benchmarks' own variables, which are not govbot's settings."""
SAMPLE_KB = Path(__file__).resolve().parent.parent / "knowledge" / "sample"
DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///var/govbot.db"
MAX_WORKERS = 64
"""The most server processes `govbot run` starts (`--workers`, `GOVBOT_WORKERS`)."""


class ConfigError(Exception):
    """Configuration that cannot be used; the message names the setting."""


class Settings(BaseSettings):
    """Everything govbot can be configured with; each field is ``GOVBOT_<NAME>`` in the environment."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid", validate_default=True)

    database_url: str = DEFAULT_DATABASE_URL
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8080, ge=0, le=65535)
    log_level: str = "INFO"
    workers: int = Field(default=1, ge=1, le=MAX_WORKERS)
    """Server processes `govbot run` starts on the one port (PostgreSQL only; webhook mode for Telegram)."""

    kb_paths: list[Path] = Field(default_factory=lambda: [SAMPLE_KB])
    """Knowledge-base files or folders loaded into an empty database on first start."""
    kb_refresh_seconds: float = Field(default=2.0, gt=0, le=3600)
    """How often a running bot looks for knowledge-base changes made by other processes."""
    match_cache_size: int = Field(default=RECENT_MATCHES, ge=0, le=100_000)
    """Matches kept for questions asked again word for word; any knowledge-base change forgets them."""

    telegram_token: SecretStr | None = None
    telegram_api_base_url: str | None = None
    """Another Bot API server, passed to python-telegram-bot as ``base_url`` (e.g. ``http://127.0.0.1:8081/bot``)."""
    public_url: str | None = None
    """The HTTPS address at which this server is reachable; when set, Telegram uses a webhook."""
    telegram_rate_limit: bool = True
    flood_limit_per_minute: int = Field(default=20, ge=1, le=10_000)
    matcher_thresholds: dict[str, float] = Field(default_factory=dict)
    """Overrides of the matcher's decision thresholds, e.g. ``{"answer_score": 0.5}``."""
    matcher_category_thresholds: dict[str, dict[str, float]] = Field(default_factory=dict)
    """Per-category overrides, e.g. ``{"health": {"answer_score": 0.6}}``."""

    # Escalation to departments (bot/dispatch.py, bot/api.py, handlers/escalation.py).
    default_department: str | None = None
    """The department that gets a case when neither the entry nor the category has an owner."""
    webhook_allow_http: bool = False
    """Allow plain-http department endpoints (local testing only)."""
    webhook_allowed_networks: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """Comma-separated CIDRs that endpoints may be in although private (e.g. a government intranet)."""
    webhook_timeout_seconds: float = Field(default=15.0, gt=0, le=120)
    dispatch_in_run: bool = True
    """Run the webhook dispatcher and the citizen notifier inside `govbot run`."""
    dispatch_concurrency: int = Field(default=64, ge=1, le=1000)
    dispatch_poll_seconds: float = Field(default=0.2, gt=0, le=60)
    dispatch_lease_seconds: float = Field(default=60.0, gt=0, le=3600)
    """How long a claimed delivery belongs to one dispatcher; a dead process's claims expire after it."""

    # The web chat (bot/channels/web.py).
    web_secret: SecretStr | None = Field(default=None, min_length=16)
    """Signs the web chat's identity cookies; when unset, one is made on first start and kept in the db."""
    web_requests_per_minute: int = Field(default=300, ge=1, le=100_000)
    """Requests one client address may make to the web chat and transparency pages in any minute."""
    web_trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """Comma-separated CIDRs of reverse proxies in front of govbot whose X-Forwarded-For is believed."""

    # Data governance (storage/masking.py, storage/audit.py, storage/retention.py).
    phone_region: str = "CN"
    """Region whose national phone number formats are recognised (and masked) in free text."""
    retention_days: int = Field(default=365, ge=1, le=36_500)
    """Conversations, messages and free text older than this are purged by a daily job."""

    # The service desk's calendar (handlers/router.py, handlers/escalation.py).
    timezone: str = "UTC"
    """IANA name of the zone whose calendar citizens read dates in; storage stays in UTC."""

    @field_validator("matcher_thresholds")
    @classmethod
    def _known_thresholds(cls, value: dict[str, float]) -> dict[str, float]:
        unknown = set(value) - THRESHOLD_NAMES
        if unknown:
            raise ValueError(f"unknown thresholds {sorted(unknown)}; known: {sorted(THRESHOLD_NAMES)}")
        return value

    @field_validator("matcher_category_thresholds")
    @classmethod
    def _known_category_thresholds(cls, value: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
        for overrides in value.values():
            cls._known_thresholds(overrides)
        return value

    def matcher_config(self) -> MatcherConfig:
        """The matcher's configuration: calibrated defaults with this deployment's overrides."""
        base = replace(Thresholds(), **self.matcher_thresholds)  # type: ignore[arg-type]
        return MatcherConfig(
            thresholds=base,
            category_thresholds={
                category: replace(base, **overrides)  # type: ignore[arg-type]
                for category, overrides in self.matcher_category_thresholds.items()
            },
        )

    @field_validator("database_url")
    @classmethod
    def _known_driver(cls, value: str) -> str:
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError("must start with sqlite+aiosqlite:// or postgresql+asyncpg://")
        try:
            make_url(value)  # parses the port too: a word there was a ValueError traceback at start
        except (ArgumentError, ValueError):
            raise ValueError("cannot be read as user:password@host:port/database, "
                             "the port a number") from None
        return value

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
        return level

    @field_validator("public_url", "telegram_api_base_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        assert value is not None
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value

    @field_validator("telegram_token", "web_secret", mode="before")
    @classmethod
    def _empty_token_is_none(cls, value: Any) -> Any:
        return None if value == "" else value

    @field_validator("phone_region")
    @classmethod
    def _known_region(cls, value: str) -> str:
        region = value.strip().upper()
        if region not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError("must be a two-letter region code that phonenumbers knows, e.g. CN, HK, GB")
        return region

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        name = value.strip()
        try:
            _zone(name)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            raise ValueError("must be an IANA time zone name this system's time zone database knows, "
                             "e.g. Asia/Shanghai or UTC") from None
        return name

    def zone(self) -> tzinfo:
        """The zone of ``timezone``: local dates and calendar days are reckoned in it."""
        return _zone(self.timezone)

    @field_validator("default_department", mode="before")
    @classmethod
    def _empty_department_is_none(cls, value: Any) -> Any:
        return None if value == "" else value

    @field_validator("webhook_allowed_networks", "web_trusted_proxies", mode="before")
    @classmethod
    def _networks(cls, value: Any) -> Any:
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, list):
            return items
        networks = [str(item).strip() for item in items if str(item).strip()]
        for network in networks:
            try:
                ip_network(network, strict=False)
            except ValueError:
                raise ValueError(f"{network!r} is not a network in CIDR notation (e.g. 10.0.0.0/8)") from None
        return networks

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Environment beats the file: an operator can override one value without editing it.
        return init_settings, env_settings, YamlConfigSettingsSource(settings_cls)


_UNPARSED_FIELD = re.compile(r'error parsing value for field "(\w+)"')
SENSITIVE = {"database_url", "telegram_token", "web_secret"}
"""Settings whose given value is never repeated in an error message (it may hold a password)."""


def load_settings(config_file: str | Path | None = None, **overrides: Any) -> Settings:
    """Build the settings, turning every validation problem into one ConfigError naming the setting."""
    settings_cls: type[Settings] = Settings
    if config_file is not None:
        path = Path(config_file)
        if not path.is_file():
            problem = "is a directory" if path.is_dir() else "does not exist"
            raise ConfigError(f"config file {path} {problem}")
        _check_settings_file(path)

        class FileSettings(Settings):
            model_config = SettingsConfigDict(**{**Settings.model_config, "yaml_file": path})

        settings_cls = FileSettings
    unknown = _unknown_in_environment()
    if unknown:
        raise ConfigError("; ".join(unknown))
    try:
        loaded = settings_cls(**overrides)
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None
    except SettingsError as exc:  # an environment variable of a list or mapping setting that is not JSON
        field = _UNPARSED_FIELD.search(str(exc))
        if field is None:
            raise ConfigError(f"configuration: {exc}") from None
        raise ConfigError(
            f"invalid setting {ENV_PREFIX}{field.group(1).upper()}: not JSON (a list or an object, "
            "e.g. '[\"kb/\"]' or '{\"answer_score\": 0.5}')"
        ) from None
    except (OSError, ValueError, yaml.YAMLError) as exc:  # an unreadable or malformed config file
        raise ConfigError(f"config file {config_file}: {exc}") from None
    if settings_cls is Settings:
        return loaded
    # The values as plain Settings: `--workers` pickles them for each worker, and the file's class above,
    # made in this function, cannot be pickled. They were validated; model_construct only copies them.
    return Settings.model_construct(_fields_set=loaded.model_fields_set, **dict(loaded))


def _unknown_in_environment() -> list[str]:
    """A problem for each ``GOVBOT_`` variable that is no setting (a misspelt one was ignored, leaving the
    default: SQLite for a misspelt database URL), with the setting it is closest to; the value, which may
    be a secret, is never repeated."""
    known = [f"{ENV_PREFIX}{name.upper()}" for name in Settings.model_fields]
    problems = []
    for variable in sorted(os.environ):
        name = variable.upper()
        if name.startswith(ENV_PREFIX) and name not in known and not name.startswith(NOT_SETTINGS):
            meant = "".join(f" ({close}?)" for close in difflib.get_close_matches(name, known, n=1))
            problems.append(f"unknown setting {variable} in the environment{meant}")
    return problems


def _zone(name: str) -> tzinfo:
    # UTC needs no time zone database: the default works on a host without one.
    return UTC if name == "UTC" else ZoneInfo(name)


def _check_settings_file(path: Path) -> None:
    """Refuse a config file that is not a mapping of setting names to values (an empty one sets nothing)."""
    try:
        with path.open(encoding="utf-8") as file:  # a stream: YAML's errors then quote no line of it
            content = yaml.safe_load(file)
    except (OSError, ValueError, yaml.YAMLError) as exc:
        raise ConfigError(f"config file {path}: {exc}") from None
    if content is not None and not isinstance(content, dict):
        raise ConfigError(f"config file {path}: must be a mapping of setting names to values "
                          f"(e.g. 'http_port: 8080'), not a {type(content).__name__}")


def _describe(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors():
        name = ".".join(str(part) for part in error["loc"]) or "settings"
        setting = f"{ENV_PREFIX}{name.split('.')[0].upper()}"
        given = error.get("input")
        hidden = isinstance(given, dict) or name.split(".")[0] in SENSITIVE
        shown = "" if hidden else f" (got {given!r})"
        if error["type"] == "extra_forbidden":
            # A misspelt name may be a secret's (telegram_tokn): its value is never repeated.
            problems.append(f"unknown setting {name!r}")
        else:
            problems.append(f"invalid setting {setting}: {error['msg']}{shown}")
    return "; ".join(problems)
