"""Seawall, used as its README says: the ``seawall worker`` command and the async Producer.

The job is the built-in handler ``increment`` (engine/handlers.py), so there is no
job function here. Reliability stays on: reliable fetch (BLMOVE into a
processing list), result TTLs, the breaker: the defaults, nothing switched off.
``concurrency`` is the worker's ``--concurrency`` (jobs run at once per process).
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any, Iterable

from engine.config import load_settings
from engine.events import EventLog
from engine.producer import Producer

from . import Client as _Base
from . import spawn


def start_workers(n: int, url: str, *, concurrency: int = 1, **opts: Any) -> list:
    cmd = [sys.executable, "-m", "engine.cli", "worker", "--redis-url", url, "--log-level", "error",
           "--concurrency", str(concurrency)]
    return [spawn(cmd, url) for _ in range(n)]


class Client(_Base):
    async def start(self) -> None:
        settings = load_settings({"redis_url": self.url}, env={}, config_file=None).settings
        self.producer = Producer(settings, self.url, EventLog(None))
        await self.producer.start()

    async def close(self) -> None:
        await self.producer.close()

    async def enqueue_one(self, i: int) -> Any:
        return await self.producer.submit("increment", i)

    async def enqueue_many(self, items: Iterable[int]) -> list[Any]:
        """The batch path: every job in one LPUSH."""
        return await self.producer.submit_many("increment", items)

    async def run_one(self, i: int, timeout: float) -> int:
        """Producer.run: the job's LPUSH and the BLPOP for its result in one round trip."""
        outcome = await self.producer.run("increment", i, wait_seconds=timeout)
        if not outcome.ok:
            raise RuntimeError(f"latency job {i}: {outcome.state.value}, {outcome.result}")
        return outcome.result.value

    async def collect(self, handles: list[Any], timeout: float) -> list[int]:
        outcomes = await asyncio.wait_for(self.producer.wait_all(), timeout)
        bad = [o for o in outcomes if not o.ok]
        if bad or len(outcomes) != len(handles):
            first = bad[0] if bad else None
            raise RuntimeError(f"{len(bad)} of {len(handles)} jobs not done"
                               + (f" (first: {first.state.value}, {first.result})" if first else ""))
        return [o.result.value for o in outcomes]
