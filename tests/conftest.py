from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Iterator

import pytest

from engine.config import Settings, load_settings
from engine.events import EventLog

from .redisproc import RedisProcess

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def redis_server() -> Iterator[RedisProcess]:
    server = RedisProcess().start()
    try:
        yield server
    finally:
        server.cleanup()


@pytest.fixture
def fast_settings() -> Settings:
    """Short timings so outages and retries show within seconds."""
    return load_settings(
        {
            "blpop_timeout_seconds": 0.2,
            "breaker_reset_seconds": 0.5,
            "backoff_base_seconds": 0.01,
            "backoff_cap_seconds": 0.05,
            "heartbeat_seconds": 0.5,
            "lease_seconds": 2,
            "redis_socket_timeout_seconds": 1,
            "redis_connect_timeout_seconds": 0.5,
            "shutdown_grace_seconds": 2,
            "job_timeout_seconds": 10,
        },
        env={},
        config_file=None,
    ).settings


class EventRecorder(EventLog):
    """An EventLog that keeps every line it writes, for assertions."""

    def __init__(self, redactor=None) -> None:
        self.buffer = io.StringIO()
        super().__init__(self.buffer, level="debug", redactor=redactor)

    def names(self) -> list[str]:
        return [json.loads(line)["event"] for line in self.buffer.getvalue().splitlines()]

    def of(self, name: str) -> list[dict]:
        return [e for e in map(json.loads, self.buffer.getvalue().splitlines()) if e["event"] == name]

    @property
    def text(self) -> str:
        return self.buffer.getvalue()


@pytest.fixture
def events() -> EventRecorder:
    return EventRecorder()


@pytest.fixture(autouse=True)
def _isolated_dirs(tmp_path_factory, monkeypatch):
    """platformdirs (config file, embedded server) point into a temp dir, never ~."""
    base = tmp_path_factory.mktemp("xdg")
    run = base / "run"
    run.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(run))
    for var in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME"):
        monkeypatch.setenv(var, str(base / var.lower()))
    for var in [v for v in __import__("os").environ if v.startswith("SEAWALL_")]:
        monkeypatch.delenv(var)
