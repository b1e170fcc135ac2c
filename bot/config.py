"""One validated settings object, made at start-up from the environment and an optional file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

ENV_PREFIX = "GOVBOT_"
SAMPLE_KB = Path(__file__).resolve().parent.parent / "knowledge" / "sample"
DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///var/govbot.db"


class ConfigError(Exception):
    """Configuration that cannot be used; the message names the setting."""


class Settings(BaseSettings):
    """Everything govbot can be configured with; each field is ``GOVBOT_<NAME>`` in the environment."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid", validate_default=True)

    database_url: str = DEFAULT_DATABASE_URL
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8080, ge=0, le=65535)
    log_level: str = "INFO"

    kb_paths: list[Path] = Field(default_factory=lambda: [SAMPLE_KB])
    """Knowledge-base files or folders loaded into an empty database on first start."""
    kb_refresh_seconds: float = Field(default=2.0, gt=0, le=3600)
    """How often a running bot looks for knowledge-base changes made by other processes."""

    telegram_token: SecretStr | None = None
    telegram_api_base_url: str | None = None
    """Another Bot API server, passed to python-telegram-bot as ``base_url`` (e.g. ``http://127.0.0.1:8081/bot``)."""
    public_url: str | None = None
    """The HTTPS address at which this server is reachable; when set, Telegram uses a webhook."""
    telegram_rate_limit: bool = True
    flood_limit_per_minute: int = Field(default=20, ge=1, le=10_000)

    @field_validator("database_url")
    @classmethod
    def _known_driver(cls, value: str) -> str:
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError("must start with sqlite+aiosqlite:// or postgresql+asyncpg://")
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

    @field_validator("telegram_token", mode="before")
    @classmethod
    def _empty_token_is_none(cls, value: Any) -> Any:
        return None if value == "" else value

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


SENSITIVE = {"database_url", "telegram_token"}
"""Settings whose given value is never repeated in an error message (it may hold a password)."""


def load_settings(config_file: str | Path | None = None, **overrides: Any) -> Settings:
    """Build the settings, turning every validation problem into one ConfigError naming the setting."""
    settings_cls = Settings
    if config_file is not None:
        path = Path(config_file)
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist")
        config = SettingsConfigDict(**{**Settings.model_config, "yaml_file": path})  # type: ignore[typeddict-item]
        settings_cls = type("FileSettings", (Settings,), {"model_config": config})
    try:
        return settings_cls(**overrides)
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None
    except (OSError, ValueError, yaml.YAMLError) as exc:  # an unreadable or malformed config file
        raise ConfigError(f"config file {config_file}: {exc}") from None


def _describe(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors():
        name = ".".join(str(part) for part in error["loc"]) or "settings"
        setting = f"{ENV_PREFIX}{name.split('.')[0].upper()}"
        given = error.get("input")
        hidden = isinstance(given, dict) or name.split(".")[0] in SENSITIVE
        shown = "" if hidden else f" (got {given!r})"
        if error["type"] == "extra_forbidden":
            problems.append(f"unknown setting {name!r}{shown}")
        else:
            problems.append(f"invalid setting {setting}: {error['msg']}{shown}")
    return "; ".join(problems)
