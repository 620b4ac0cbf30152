"""From settings to a running setup: which Redis, which log, which secrets to hide.

Shared by the CLI and the console so both resolve the embedded server, the
redactor and worker subprocess commands the same way.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from typing import TextIO

from . import embedded
from .config import ENV_PREFIX, LoadedSettings, Settings
from .events import EventLog
from .redact import Redactor, redact_url, url_password


@dataclass
class Runtime:
    loaded: LoadedSettings
    url: str
    embedded: bool
    redactor: Redactor = field(default_factory=Redactor)

    @property
    def settings(self) -> Settings:
        return self.loaded.settings

    @property
    def shown_url(self) -> str:
        return redact_url(self.url)

    def event_log(self, level: str = "info", log_file: str | None = None, sink: TextIO | None = None) -> EventLog:
        if log_file:
            sink = open(log_file, "a", encoding="utf-8", buffering=1)  # noqa: SIM115 - lives as long as the process
        return EventLog(sink if sink is not None else sys.stderr, level, self.redactor)

    def worker_command(self, *extra: str, log_level: str = "info") -> tuple[list[str], dict[str, str]]:
        """argv and environment for a ``seawall worker`` subprocess with these settings."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX)}
        for name, source in self.loaded.sources.items():
            if name != "redis_url" and source != "default":
                env[ENV_PREFIX + name.upper()] = str(getattr(self.settings, name))
        env[ENV_PREFIX + "REDIS_URL"] = self.url  # by env, so the password is not in `ps`
        env["PYTHONUNBUFFERED"] = "1"
        argv = [sys.executable, "-m", "engine.cli", "--log-level", log_level, "worker", *extra]
        return argv, env


def resolve(loaded: LoadedSettings) -> Runtime:
    """The configured URL, or the embedded server (started if needed)."""
    url = loaded.settings.redis_url
    is_embedded = url is None
    if url is None:
        url = embedded.ensure_running()
    return Runtime(loaded, url, is_embedded, Redactor(url_password(url)))
