"""Helpers for console tests: a Runtime on a private server, waiting on conditions."""

from __future__ import annotations

import asyncio
import time
from typing import Callable

from engine.config import load_settings
from engine.redact import Redactor, url_password
from engine.runtime import Runtime

FAST = {
    "blpop_timeout_seconds": 0.2,
    "breaker_reset_seconds": 1,
    "backoff_base_seconds": 0.02,
    "backoff_cap_seconds": 0.1,
    "heartbeat_seconds": 0.5,
    "lease_seconds": 2,
    "redis_socket_timeout_seconds": 1,
    "redis_connect_timeout_seconds": 0.5,
    "shutdown_grace_seconds": 2,
    "job_timeout_seconds": 20,
}


def runtime_for(url: str, **overrides) -> Runtime:
    loaded = load_settings({**FAST, **overrides, "redis_url": url}, env={}, config_file=None)
    return Runtime(loaded, url, False, Redactor(url_password(url)))


async def until(pilot, predicate: Callable[[], bool], timeout: float = 15.0, what: str = "condition") -> None:
    """Wait on a condition, not a fixed sleep; fail clearly if it never holds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await pilot.pause(0.05)
    await asyncio.sleep(0)


async def launch_a_worker_and_send_ten(pilot, app, timeout: float = 15.0) -> None:
    """The console's main path: connect, `w`, then `s` Enter; wait for ten done jobs."""
    from engine.models import JobState
    from tui.screens.dialogs import SubmitDialog

    await until(pilot, lambda: app.state.server_version != "", what="connection")
    await pilot.press("w")
    await until(pilot, lambda: len(app.backend.workers) == 1, what="worker launch")
    await pilot.press("s")
    assert isinstance(app.screen, SubmitDialog)
    await pilot.press("enter")
    await until(pilot, lambda: app.state.counts[JobState.DONE.value] == 10, timeout=timeout, what="ten results")
