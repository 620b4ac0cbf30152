"""SAQ with its Redis queue: ``Queue.enqueue`` per job, ``Job.refresh(until_complete=...)`` to wait.

The worker claims with BLMOVE and announces each status change by PUBLISH, and
``refresh(until_complete)`` listens for it (pub/sub), so nobody polls
(``Queue.apply``/``map`` would poll every 0.5 s), except to recover a missed
notification (see ``Client.collect``). Workers:
``saq benchmarks.peers.saq.settings`` with SAQ's default concurrency of 10.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from saq import Queue
from saq.job import TERMINAL_STATUSES, Status

from . import Client as _Base
from . import bench_url, spawn, tool

MISSED_NOTIFICATION_SLICE = 0.1  # seconds; see Client.collect


async def increment(ctx: dict, *, n: int) -> int:
    return n + 1


settings = {
    "queue": Queue.from_url(bench_url()),
    "functions": [increment],
    "concurrency": 10,
}


def start_workers(n: int, url: str, **opts: Any) -> list:
    return [spawn([tool("saq"), "benchmarks.peers.saq.settings"], url) for _ in range(n)]


class Client(_Base):
    async def start(self) -> None:
        self.queue = Queue.from_url(self.url)
        await self.queue.connect()

    async def close(self) -> None:
        await self.queue.disconnect()

    async def enqueue_one(self, i: int) -> Any:
        return await self.queue.enqueue("increment", n=i)

    async def collect(self, handles: list[Any], timeout: float) -> list[int]:
        """Wait in short slices: ``refresh`` reads the job, then subscribes, so a job that
        finishes in between sends its notification to nobody and the wait would run to
        its timeout. Each slice that runs out re-reads the job; ``missed`` counts them."""
        deadline = time.monotonic() + timeout
        out = []
        for job in handles:
            while True:
                try:
                    await job.refresh(until_complete=MISSED_NOTIFICATION_SLICE)
                except asyncio.TimeoutError:
                    self.counters["missed"] = self.counters.get("missed", 0) + 1
                    await job.refresh()
                if job.status in TERMINAL_STATUSES or time.monotonic() > deadline:
                    break
            if job.status != Status.COMPLETE:
                raise RuntimeError(f"job {job.key}: {job.status.value} {job.error or ''}"[:300])
            out.append(job.result)
        return out
