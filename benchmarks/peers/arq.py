"""arq: ``ArqRedis.enqueue_job`` per job, results read with ``Job.result()``.

arq has no blocking pop: the worker polls its queue (a sorted set) every
``poll_delay`` (0.5 s by default) and ``Job.result`` polls for the result every
``poll_delay`` (0.5 s by default) too. So there are two rows: the defaults, and
``tuned`` with both polls at 10 ms (more Redis commands while idle, far less
latency). Workers: ``arq benchmarks.peers.arq.WorkerSettings`` (or
``...TunedWorkerSettings``); arq's per-job INFO log lines are turned off with
``--custom-log-dict`` so every system runs quiet.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from arq import create_pool
from arq.connections import RedisSettings

from . import Client as _Base
from . import bench_url, spawn, tool

TUNED_POLL = 0.01
LOG_CONFIG = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"stderr": {"class": "logging.StreamHandler"}},
    "loggers": {"arq": {"handlers": ["stderr"], "level": "WARNING"}},
}


async def increment(ctx: dict, n: int) -> int:
    return n + 1


def _redis_settings() -> RedisSettings:
    return RedisSettings.from_dsn(bench_url())


class WorkerSettings:
    functions = [increment]
    redis_settings = _redis_settings()


class TunedWorkerSettings:  # arq reads a settings class's own __dict__, not inherited fields
    functions = [increment]
    redis_settings = WorkerSettings.redis_settings
    poll_delay = TUNED_POLL


def start_workers(n: int, url: str, *, tuned: bool = False, **opts: Any) -> list:
    settings = "TunedWorkerSettings" if tuned else "WorkerSettings"
    cmd = [tool("arq"), f"benchmarks.peers.arq.{settings}", "--custom-log-dict", "benchmarks.peers.arq.LOG_CONFIG"]
    return [spawn(cmd, url) for _ in range(n)]


class Client(_Base):
    async def start(self) -> None:
        self.pool = await create_pool(RedisSettings.from_dsn(self.url))
        self.poll = TUNED_POLL if self.opts.get("tuned") else 0.5

    async def close(self) -> None:
        await self.pool.aclose()

    async def enqueue_one(self, i: int) -> Any:
        return await self.pool.enqueue_job("increment", i)

    async def collect(self, handles: list[Any], timeout: float) -> list[int]:
        deadline = time.monotonic() + timeout
        out = []
        for job in handles:
            left = max(0.01, deadline - time.monotonic())
            out.append(await asyncio.wait_for(job.result(timeout=left, poll_delay=self.poll), left + 1))
        return out
