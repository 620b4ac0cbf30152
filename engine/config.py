"""Configuration: one pydantic-settings model, four layers, and where each value came from.

Precedence: command line > environment ``SEAWALL_*`` > TOML file > defaults.
"""

from __future__ import annotations

import difflib
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import urlsplit

import platformdirs
from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from .redact import redact_url

APP_NAME = "seawall"
ENV_PREFIX = "SEAWALL_"
MiB = 1024 * 1024


class Settings(BaseSettings):
    """Every knob of Seawall. Field descriptions say what is allowed."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid", frozen=True)

    redis_url: str | None = Field(None, description="a redis://, rediss:// or unix:// URL; unset = embedded server")
    namespace: str = Field("seawall", pattern=r"^[A-Za-z0-9._-]{1,64}$", description="1-64 characters of [A-Za-z0-9._-]")
    queue: str = Field("default", pattern=r"^[A-Za-z0-9._-]{1,64}$", description="1-64 characters of [A-Za-z0-9._-]")
    result_queue_ttl_seconds: int = Field(7200, gt=0, description="whole seconds > 0")
    worker_result_ttl_seconds: int = Field(3600, gt=0, description="whole seconds > 0")
    blpop_timeout_seconds: float = Field(1.0, gt=0, le=60, description="seconds, > 0 and <= 60")
    queue_circuit_breaker_threshold: int = Field(5, ge=1, description="a whole number >= 1")
    breaker_reset_seconds: float = Field(10.0, gt=0, description="seconds > 0")
    enqueue_max_retries: int = Field(5, ge=0, le=100, description="a whole number from 0 to 100")
    backoff_base_seconds: float = Field(0.1, gt=0, description="seconds > 0")
    backoff_cap_seconds: float = Field(5.0, gt=0, description="seconds > 0")
    job_timeout_seconds: float = Field(300.0, gt=0, description="seconds > 0")
    max_attempts: int = Field(3, ge=1, le=1000, description="a whole number from 1 to 1000")
    max_payload_bytes: int = Field(MiB, ge=64, description="bytes >= 64")
    dlq_max_entries: int = Field(10_000, ge=1, description="a whole number >= 1")
    dlq_ttl_seconds: int = Field(7 * 24 * 3600, gt=0, description="whole seconds > 0")
    heartbeat_seconds: float = Field(5.0, gt=0, description="seconds > 0")
    lease_seconds: float = Field(15.0, gt=0, description="seconds > 0, more than heartbeat_seconds")
    shutdown_grace_seconds: float = Field(10.0, ge=0, description="seconds >= 0")
    redis_socket_timeout_seconds: float = Field(5.0, gt=0, description="seconds > 0")
    redis_connect_timeout_seconds: float = Field(2.0, gt=0, description="seconds > 0")

    @field_validator("redis_url")
    @classmethod
    def _check_url(cls, v: str | None) -> str | None:
        if v is None or v == "":
            return None
        try:
            parts = urlsplit(v)
            port = parts.port
        except ValueError as exc:
            raise ValueError(f"not a URL ({exc})") from None
        if parts.scheme not in ("redis", "rediss", "unix"):
            raise ValueError("scheme must be redis://, rediss:// or unix://")
        if parts.scheme == "unix" and not parts.path:
            raise ValueError("unix:// URL needs a socket path")
        if parts.scheme != "unix" and not parts.hostname:
            raise ValueError("URL needs a host, e.g. redis://127.0.0.1:6379/0")
        if port == 0:
            raise ValueError("port must be 1-65535")
        return v

    @property
    def embedded(self) -> bool:
        return self.redis_url is None


class ConfigError(Exception):
    """A bad configuration value or file: one line, exit status 2."""


@dataclass(frozen=True)
class LoadedSettings:
    settings: Settings
    sources: dict[str, str] = field(default_factory=dict)
    config_file: Path | None = None

    def describe(self) -> list[tuple[str, str, str]]:
        """(field, shown value, source) for every setting; the password masked."""
        rows = []
        for name in Settings.model_fields:
            value = getattr(self.settings, name)
            if name == "redis_url":
                shown = redact_url(value) if value else "(unset: embedded server)"
            else:
                shown = str(value)
            rows.append((name, shown, self.sources.get(name, "default")))
        return rows


def default_config_path() -> Path:
    return Path(platformdirs.user_config_dir(APP_NAME)) / "config.toml"


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} not found: pass an existing file to --config") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"config file {path} cannot be read: {exc.strerror}") from None
    data = data.get(APP_NAME, data) if isinstance(data.get(APP_NAME), dict) else data
    for key in data:
        if key not in Settings.model_fields:
            raise ConfigError(
                f"config file {path}: unknown key {key!r}; known keys: run 'seawall config' to list them"
            )
    return data


def _read_env(env: Mapping[str, str]) -> dict[str, str]:
    """``SEAWALL_<SETTING>`` variables; a misspelt one is refused, as an unknown TOML key is
    (``SEAWALL_REDIS_ULR`` ignored would quietly mean the embedded server instead of yours)."""
    known = {ENV_PREFIX + name.upper(): name for name in Settings.model_fields}
    for var in sorted(env):
        if var.startswith(ENV_PREFIX) and var not in known:
            close = difflib.get_close_matches(var, known, n=1)
            hint = f"did you mean {close[0]}?" if close else "run 'seawall config' to list the settings"
            raise ConfigError(f"environment variable {var} is not a Seawall setting ({hint}): rename or unset it")
    return {name: env[var] for var, name in known.items() if var in env}


def load_settings(
    cli: Mapping[str, Any] | None = None,
    config_file: str | Path | None = None,
    env: Mapping[str, str] | None = None,
) -> LoadedSettings:
    """Merge the layers, validate once, and remember each value's source."""
    env = os.environ if env is None else env
    cli = {k: v for k, v in (cli or {}).items() if v is not None}
    path: Path | None
    if config_file is not None:
        path = Path(config_file).expanduser()
        toml_values = _read_toml(path)
    else:
        path = default_config_path()
        toml_values = _read_toml(path) if path.is_file() else {}
        path = path if toml_values or path.is_file() else None

    layers: list[tuple[dict[str, Any], Any]] = [
        (toml_values, lambda k: f"config file {path}"),
        (_read_env(env), lambda k: f"environment {ENV_PREFIX}{k.upper()}"),
        (dict(cli), lambda k: f"command line --{k.replace('_', '-')}"),
    ]
    merged: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for values, label in layers:
        for key, value in values.items():
            merged[key] = value
            sources[key] = label(key)
    try:
        settings = Settings.model_validate(merged)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, merged, sources)) from None
    if settings.backoff_base_seconds > settings.backoff_cap_seconds:
        raise ConfigError(
            f"backoff_base_seconds = {settings.backoff_base_seconds} ({sources.get('backoff_base_seconds', 'default')})"
            f" is above backoff_cap_seconds = {settings.backoff_cap_seconds}: the base must not exceed the cap"
        )
    if settings.lease_seconds <= settings.heartbeat_seconds:
        raise ConfigError(
            f"lease_seconds = {settings.lease_seconds} ({sources.get('lease_seconds', 'default')}) must be more than "
            f"heartbeat_seconds = {settings.heartbeat_seconds}: raise lease_seconds or lower heartbeat_seconds"
        )
    return LoadedSettings(settings, sources, path)


def _describe(exc: ValidationError, merged: Mapping[str, Any], sources: Mapping[str, str]) -> str:
    err = exc.errors()[0]
    name = str(err["loc"][0]) if err.get("loc") else "?"
    value = merged.get(name, err.get("input"))
    shown = redact_url(str(value)) if name == "redis_url" else repr(value)
    info = Settings.model_fields.get(name)
    allowed = info.description if info and info.description else ""
    msg = err.get("msg", "invalid").removeprefix("Value error, ")
    where = sources.get(name, "default")
    tail = f"; allowed: {allowed}" if allowed else ""
    return f"invalid {name} = {shown} (from {where}): {msg}{tail}"
