"""The floor: bare redis-py, no queue library. What any Redis job queue costs at least.

The producer LPUSHes the input on a request list; a tiny echo worker process
BLPOPs it and LPUSHes input + 1 on a reply list, which the producer BLPOPs.
No ids, no acks, no retries, no TTLs: one command each way per job.
Sync redis-py (with hiredis), since that is the fastest plain client.

Run as an echo worker: ``python -m benchmarks.peers.floor URL`` (ended by SIGTERM).
"""

from __future__ import annotations

import sys
import time
from typing import Any

import redis

from . import Client as _Base
from . import spawn

REQUESTS = "floor:requests"
REPLIES = "floor:replies"


def start_workers(n: int, url: str, **opts: Any) -> list:
    return [spawn([sys.executable, "-m", "benchmarks.peers.floor", url], url) for _ in range(n)]


class Client(_Base):
    async def start(self) -> None:
        self.r = redis.Redis.from_url(self.url)

    async def close(self) -> None:
        self.r.close()

    async def enqueue_one(self, i: int) -> int:
        self.r.lpush(REQUESTS, i)
        return i

    async def collect(self, handles: list[int], timeout: float) -> list[int]:
        deadline = time.monotonic() + timeout
        out = []
        for _ in handles:
            hit = self.r.blpop([REPLIES], timeout=max(0.01, deadline - time.monotonic()))
            if hit is None:
                raise TimeoutError(f"{len(handles) - len(out)} replies missing after {timeout:.0f}s")
            out.append(int(hit[1]))
        return out


def echo(url: str) -> None:
    r = redis.Redis.from_url(url)
    while True:
        hit = r.blpop([REQUESTS], timeout=1)
        if hit is not None:
            r.lpush(REPLIES, int(hit[1]) + 1)


if __name__ == "__main__":
    echo(sys.argv[1])
