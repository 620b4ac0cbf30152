"""Dramatiq with its Redis broker and its Redis results backend, worker threads.

The broker and the results middleware are module-level, as Dramatiq expects: the
``dramatiq`` command imports this module, so the URL comes from the environment
(``BENCH_REDIS_URL``, set by compare.py). Producer: ``actor.send`` per job, then
``message.get_result(block=True)`` (BRPOPLPUSH on the result key, no polling).
Each worker is ``dramatiq benchmarks.peers.dramatiq --processes 1 --threads T``.
"""

from __future__ import annotations

import time
from typing import Any

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.results import Results
from dramatiq.results.backends.redis import RedisBackend

from . import Client as _Base
from . import bench_url, spawn, tool

URL = bench_url()
broker = RedisBroker(url=URL)
broker.add_middleware(Results(backend=RedisBackend(url=URL)))
dramatiq.set_broker(broker)


@dramatiq.actor(store_results=True, max_retries=0)
def increment(n: int) -> int:
    return n + 1


def start_workers(n: int, url: str, *, threads: int = 8, **opts: Any) -> list:
    cmd = [tool("dramatiq"), "benchmarks.peers.dramatiq", "--processes", "1", "--threads", str(threads)]
    return [spawn(cmd, url) for _ in range(n)]


class Client(_Base):
    async def enqueue_one(self, i: int) -> Any:
        return increment.send(i)

    async def collect(self, handles: list[Any], timeout: float) -> list[int]:
        deadline = time.monotonic() + timeout
        # The backend rounds timeouts down to whole seconds (0 would not block): keep >= 1 s.
        return [m.get_result(block=True, timeout=max(1000, int((deadline - time.monotonic()) * 1000)))
                for m in handles]
