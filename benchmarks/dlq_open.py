"""How fast the dead-letter store opens with 100,000 entries (what the console's screen does first).

Run by hand (not part of pytest):

    /work/venv/bin/python benchmarks/dlq_open.py [--entries 100000]

Starts a private redis-server, writes the entries (pipelined ZADD/HSET, the
same layout the store's Lua writes), then times: the count, the first page,
a deep page, a page filtered by a rare reason (bounded scan) and by text, and
Redis' own time for the slowest read script.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Awaitable, Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import redis.asyncio as aioredis  # noqa: E402

from engine.deadletters import DeadLetter, DeadLetterStore, DeadReason  # noqa: E402
from engine.keys import Keys  # noqa: E402
from engine.models import Job  # noqa: E402
from tests.redisproc import RedisProcess  # noqa: E402

KEYS = Keys("seawall", "default")
RARE_EVERY = 1000  # one entry in this many is worker_lost


def entry(i: int, now: float) -> DeadLetter:
    job = Job(id=f"sBench-echo-{i:06d}", session="sBench", result_key=KEYS.results("sBench"), handler="echo",
              payload={"i": i, "note": "x" * 200}, attempt=3, failures=3)
    reason = DeadReason.WORKER_LOST if i % RARE_EVERY == 0 else DeadReason.HANDLER_FAILED
    return DeadLetter(id=job.id, reason=reason, job=job.model_dump(mode="json"), error=f"boom {i}",
                      error_type="HandlerFailure", traceback="Traceback ...\n" * 20, attempts=3, session="sBench",
                      first_failed_at=now, last_failed_at=now)


async def load(client: aioredis.Redis, n: int) -> float:
    started = time.perf_counter()
    base = time.time() - n * 0.001
    for start in range(0, n, 5000):
        pipe = client.pipeline(transaction=False)
        for i in range(start, min(n, start + 5000)):
            e = entry(i, base + i * 0.001)
            pipe.zadd(KEYS.dlq, {e.id: e.last_failed_at})
            pipe.hset(KEYS.dlq_entries, e.id, e.model_dump_json())
        await pipe.execute()
    await client.hset(KEYS.dlq_stats, "added", n)
    return time.perf_counter() - started


async def timed(label: str, fn: Callable[[], Awaitable[Any]], runs: int = 5) -> Any:
    times, result = [], None
    for _ in range(runs):
        started = time.perf_counter()
        result = await fn()
        times.append((time.perf_counter() - started) * 1000)
    print(f"{label:<48} best {min(times):7.2f} ms   median {statistics.median(times):7.2f} ms")
    return result


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--entries", type=int, default=100_000)
    args = ap.parse_args()
    server = RedisProcess().start()
    client = aioredis.Redis.from_url(server.url, socket_timeout=30)
    store = DeadLetterStore(KEYS, max_entries=args.entries, ttl_seconds=7 * 24 * 3600)
    try:
        print(f"loaded {args.entries:,} entries in {await load(client, args.entries):.2f}s "
              f"(used_memory {(await client.info('memory'))['used_memory_human']})")
        await client.config_set("slowlog-log-slower-than", 0)
        await client.config_set("slowlog-max-len", 100_000)
        await client.slowlog_reset()

        page = await timed("count()", lambda: store.count(client))
        assert page == args.entries
        first = await timed("first page: page(limit=50)", lambda: store.page(client, limit=50))
        assert len(first.entries) == 50 and first.total == args.entries
        await timed("deep page: page(limit=50, offset=total-50)",
                    lambda: store.page(client, limit=50, offset=args.entries - 50))
        rare = await timed(f"reason worker_lost (1 in {RARE_EVERY}), limit=50",
                           lambda: store.page(client, limit=50, reason=DeadReason.WORKER_LOST))
        print(f"{'':<48} -> {len(rare.entries)} found, {rare.scanned:,} ids examined, "
              f"next_offset {rare.next_offset}")
        text = await timed("text 'boom 4242', limit=50", lambda: store.page(client, limit=50, text="boom 4242"))
        print(f"{'':<48} -> {len(text.entries)} found, {text.scanned:,} ids examined")
        one = await timed("show one: get(id)", lambda: store.get(client, first.entries[0].id))
        assert one is not None

        log = await client.slowlog_get(-1)
        evals = [e["duration"] for e in log if e["command"].upper().startswith(b"EVAL")]
        print(f"\nRedis itself, slowest read script: {max(evals) / 1000:.3f} ms "
              f"(mean {statistics.mean(evals) / 1000:.3f} ms over {len(evals)} calls)")
    finally:
        await client.aclose()
        server.cleanup()


if __name__ == "__main__":
    asyncio.run(main())
