"""RQ: ``Queue.enqueue`` per job, results read back with ``Job.latest_result(timeout=...)``.

``latest_result`` blocks on the job's result stream with XREAD BLOCK, so the
producer waits without polling. Workers are the ``rq worker`` command, either
``rq.worker.SimpleWorker`` (runs jobs in the worker process) or the default
``rq.worker.Worker`` (forks a work horse per job, RQ's default isolation).
``--quiet`` keeps RQ from logging two INFO lines per job.
"""

from __future__ import annotations

import time
from typing import Any

from redis import Redis
from rq import Queue
from rq.results import Result

from . import Client as _Base
from . import spawn, tool

JOB = "benchmarks.peers.rq.increment"


def increment(n: int) -> int:
    return n + 1


def start_workers(n: int, url: str, *, worker_class: str = "rq.worker.SimpleWorker", **opts: Any) -> list:
    cmd = [tool("rq"), "worker", "--url", url, "--worker-class", worker_class, "--quiet"]
    return [spawn(cmd, url) for _ in range(n)]


class Client(_Base):
    async def start(self) -> None:
        self.redis = Redis.from_url(self.url)
        self.queue = Queue(connection=self.redis)

    async def close(self) -> None:
        self.redis.close()

    async def enqueue_one(self, i: int) -> Any:
        return self.queue.enqueue(JOB, i)

    async def collect(self, handles: list[Any], timeout: float) -> list[int]:
        deadline = time.monotonic() + timeout
        out = []
        for job in handles:
            left = deadline - time.monotonic()
            result = job.latest_result(timeout=max(1, int(left))) if left > 0 else None
            if result is None:
                raise TimeoutError(f"no result for job {job.id} within {timeout:.0f}s")
            if result.type != Result.Type.SUCCESSFUL:
                raise RuntimeError(f"job {job.id}: {result.type.name}: {(result.exc_string or '')[-200:]}")
            out.append(result.return_value)
        return out
