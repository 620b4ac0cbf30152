"""How long Redis is blocked while Seawall looks for orphaned result lists.

Run by hand (not part of pytest):

    /work/venv/bin/python benchmarks/orphan_scan.py [--keys 1000000] [--count 500]

Starts a private redis-server (never the shared one), fills it with unrelated
keys (DEBUG POPULATE, or pipelined SETs if DEBUG is refused), plants orphaned
and live result lists, runs ``scan_orphans`` and prints the total time, the
slowest SCAN step and pipeline as the client saw them, and Redis' own view:
the slowest single command in the slowlog (every command is logged) and the
SCAN latency percentiles.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import redis.asyncio as aioredis  # noqa: E402

from engine.keys import Keys  # noqa: E402
from engine.models import Outcome, Result  # noqa: E402
from engine.orphans import scan_orphans  # noqa: E402
from tests.redisproc import RedisProcess  # noqa: E402

KEYS = Keys("seawall", "default")


class Timed:
    """A client whose SCAN calls and pipeline executions are timed (client side, ms)."""

    def __init__(self, client: aioredis.Redis) -> None:
        self._client = client
        self.scan_ms: list[float] = []
        self.pipe_ms: list[float] = []

    async def scan(self, *args: Any, **kw: Any) -> Any:
        started = time.perf_counter()
        try:
            return await self._client.scan(*args, **kw)
        finally:
            self.scan_ms.append((time.perf_counter() - started) * 1000)

    def pipeline(self, *args: Any, **kw: Any) -> Any:
        return _TimedPipe(self._client.pipeline(*args, **kw), self.pipe_ms)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


class _TimedPipe:
    def __init__(self, pipe: Any, sink: list[float]) -> None:
        self._pipe, self._sink = pipe, sink

    async def execute(self, *args: Any, **kw: Any) -> Any:
        started = time.perf_counter()
        try:
            return await self._pipe.execute(*args, **kw)
        finally:
            self._sink.append((time.perf_counter() - started) * 1000)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._pipe, name)


async def load_unrelated(client: aioredis.Redis, n: int) -> str:
    started = time.perf_counter()
    try:
        await client.execute_command("DEBUG", "POPULATE", n, "unrelated")
        how = "DEBUG POPULATE"
    except Exception:  # noqa: BLE001 - DEBUG disabled: fall back to pipelined SETs
        for base in range(0, n, 10_000):
            pipe = client.pipeline(transaction=False)
            for i in range(base, min(n, base + 10_000)):
                pipe.set(f"unrelated:{i}", "x")
            await pipe.execute()
        how = "pipelined SET"
    return f"{how} in {time.perf_counter() - started:.2f}s"


async def plant(client: aioredis.Redis, dead: int, no_ttl: int, live: int) -> None:
    pipe = client.pipeline(transaction=False)
    body = Result(job_id="bench", outcome=Outcome.OK, value=1).to_json()
    for i in range(dead):
        pipe.rpush(KEYS.results(f"sDead{i}"), body, body).expire(KEYS.results(f"sDead{i}"), 3600)
    for i in range(no_ttl):
        pipe.rpush(KEYS.results(f"sNoTtl{i}"), body)
    for i in range(live):
        pipe.rpush(KEYS.results(f"sLive{i}"), body).expire(KEYS.results(f"sLive{i}"), 3600)
        pipe.set(KEYS.session(f"sLive{i}"), "{}", ex=3600)
    await pipe.execute()


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--keys", type=int, default=1_000_000)
    ap.add_argument("--count", type=int, default=500, help="SCAN COUNT per step")
    args = ap.parse_args()
    server = RedisProcess("--enable-debug-command", "yes").start()
    client = aioredis.Redis.from_url(server.url, socket_timeout=30)
    try:
        print(f"redis-server {(await client.info('server'))['redis_version']} on port {server.port}")
        print(f"loaded {args.keys:,} unrelated keys: {await load_unrelated(client, args.keys)}")
        await plant(client, dead=100, no_ttl=100, live=100)
        print(f"planted 200 orphaned lists (100 dead sessions, 100 without TTL) and 100 live ones; "
              f"DBSIZE {await client.dbsize():,}")
        await client.config_set("slowlog-log-slower-than", 0)
        await client.config_set("slowlog-max-len", 1_000_000)
        await client.slowlog_reset()
        await client.config_resetstat()

        timed = Timed(client)
        started = time.perf_counter()
        found = await scan_orphans(timed, KEYS, count=args.count)
        total = time.perf_counter() - started

        log = await client.slowlog_get(-1)
        scans = [e["duration"] for e in log if e["command"].upper().startswith(b"SCAN")]
        others = [e for e in log if not e["command"].upper().startswith((b"SCAN", b"SLOWLOG", b"CONFIG"))]
        worst = max(others, key=lambda e: e["duration"]) if others else None
        lat = (await client.info("latencystats")).get("latency_percentiles_usec_scan", {})

        assert len(found) == 200, len(found)
        print(f"\nscan_orphans(count={args.count}): found {len(found)} orphans in {total:.2f}s, "
              f"{len(timed.scan_ms):,} SCAN steps, {len(timed.pipe_ms)} inspection pipelines")
        print(f"client side  SCAN step: max {max(timed.scan_ms):.2f} ms, "
              f"median {statistics.median(timed.scan_ms):.3f} ms")
        if timed.pipe_ms:
            print(f"client side  pipeline:  max {max(timed.pipe_ms):.2f} ms")
        print(f"Redis itself SCAN: max {max(scans) / 1000:.3f} ms, mean {statistics.mean(scans) / 1000:.3f} ms "
              f"over {len(scans):,} calls; percentiles (usec) {lat}")
        if worst:
            print(f"Redis itself slowest other command: {worst['command'][:60]!r} {worst['duration'] / 1000:.3f} ms")
    finally:
        await client.aclose()
        server.cleanup()


if __name__ == "__main__":
    asyncio.run(main())
