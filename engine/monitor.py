"""Queue depths and the worker fleet, read in two round trips (no SCAN).

The console polls this every second; it reads the ``workers`` registry rather
than scanning for processing lists, so its cost does not grow with the size of
the database.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from .keys import Keys


@dataclass(frozen=True, slots=True)
class WorkerBeat:
    """One worker as its heartbeat tells it (``alive`` False: heartbeat gone)."""

    worker_id: str
    alive: bool
    processing: int
    state: str = "lost"
    done: int = 0
    failed: int = 0
    pid: int | None = None
    current: tuple[str, ...] = ()
    age: float | None = None  # seconds since its last heartbeat
    breaker: str = ""


@dataclass(frozen=True, slots=True)
class Depths:
    queued: int
    processing: int
    dead: int
    workers: tuple[WorkerBeat, ...] = field(default_factory=tuple)
    at: float = field(default_factory=time.time)

    @property
    def running_jobs(self) -> set[str]:
        return {j for w in self.workers for j in w.current}


async def read_depths(client: Any, keys: Keys, now: float | None = None) -> Depths:
    now = time.time() if now is None else now
    pipe = client.pipeline(transaction=False)
    pipe.llen(keys.queue_list).zcard(keys.dlq).zrange(keys.workers, 0, -1, withscores=True)
    queued, dead, registry = await pipe.execute()
    ids = [wid.decode() if isinstance(wid, bytes) else str(wid) for wid, _ in registry]
    workers: list[WorkerBeat] = []
    if ids:
        pipe = client.pipeline(transaction=False)
        for wid in ids:
            pipe.llen(keys.processing(wid)).get(keys.worker(wid))
        replies = await pipe.execute()
        for i, wid in enumerate(ids):
            workers.append(_beat(wid, replies[2 * i], replies[2 * i + 1], registry[i][1], now))
    return Depths(int(queued), sum(w.processing for w in workers), int(dead), tuple(workers), now)


def _beat(worker_id: str, processing: int, raw: bytes | None, last_seen: float, now: float) -> WorkerBeat:
    if not raw:
        return WorkerBeat(worker_id, False, int(processing), age=max(0.0, now - last_seen))
    try:
        info = json.loads(raw)
    except ValueError:
        info = {}
    return WorkerBeat(
        worker_id, True, int(processing), state=str(info.get("state", "?")), done=int(info.get("done", 0)),
        failed=int(info.get("failed", 0)), pid=info.get("pid"), current=tuple(info.get("current", ())),
        age=max(0.0, now - float(info.get("at", last_seen))), breaker=str(info.get("breaker", "")),
    )
