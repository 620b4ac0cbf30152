"""The chaos test: every submitted job ends delivered exactly once, or as a dead letter with a reason.

Workers are kill -9'd at random and restarted, Redis is stopped and restarted
twice (once losing all its data), poison and garbage jobs are mixed in. The
short run is part of the suite (about a minute); ``pytest -m soak`` runs the
long one (CHAOS_SOAK_SECONDS, default 300).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import time
from collections import Counter
from dataclasses import dataclass, field

import pytest

from engine.errors import SubmitError
from engine.keys import Keys
from engine.models import JobState
from engine.producer import Producer

from .console_support import runtime_for
from .redisproc import RedisProcess
from .worker_support import Workers

KEYS = Keys("seawall", "default")
BOUNDED = {KEYS.queue_list, KEYS.dlq, KEYS.dlq_entries, KEYS.dlq_stats, KEYS.workers}


@dataclass
class Accounting:
    submitted: int = 0
    outcomes: Counter = field(default_factory=Counter)
    dead_by_reason: Counter = field(default_factory=Counter)
    kills: int = 0
    recoveries: list[float] = field(default_factory=list)
    restarts: int = 0
    submit_refusals: int = 0

    def report(self, producer: Producer, redeliveries: int) -> str:
        rec = sorted(self.recoveries)
        worst = f"{rec[-1]:.2f}s" if rec else "-"
        median = f"{rec[len(rec) // 2]:.2f}s" if rec else "-"
        return (f"submitted {self.submitted}, outcomes {dict(self.outcomes)}, dead by reason "
                f"{dict(self.dead_by_reason)}, duplicates suppressed {producer.duplicates}, redeliveries "
                f"{redeliveries}, resubmitted after data loss {producer.resubmitted}, kills {self.kills}, "
                f"recovery median {median} worst {worst}, redis restarts {self.restarts}, "
                f"submissions refused during outages {self.submit_refusals}")


async def chaos(tmp_path, events, *, jobs: int, seconds: float) -> None:
    server = RedisProcess("--appendonly", "yes", "--appendfsync", "always").start()
    rt = runtime_for(server.url, lease_seconds=1, heartbeat_seconds=0.3, job_timeout_seconds=10)
    fleet = Workers(rt, tmp_path, "--concurrency", "4")
    rng = random.Random(20261203)
    acct = Accounting()
    client = server.client()
    try:
        for _ in range(3):
            fleet.spawn()
        async with Producer(rt.settings, rt.url, events) as producer:
            outcomes: dict[str, list] = {}
            submitted: dict[str, str] = {}
            started = time.monotonic()
            stop = asyncio.Event()

            data_lost = asyncio.Event()

            async def submit_all() -> None:
                poisoned = 0
                for i in range(jobs):
                    # poison (kills whoever runs it) after the data loss, so its dead letter survives
                    if data_lost.is_set() and poisoned < 2 and i % (jobs // 10) == 0:
                        await submit("crash", {})
                        poisoned += 1
                    handler, payload = ("sleep", {"seconds": 0.01}) if i % 3 else ("echo", i)
                    await submit(handler, payload)
                    await asyncio.sleep(seconds * 0.55 / jobs)

            async def submit(handler, payload) -> None:
                while True:
                    try:
                        job = await producer.submit(handler, payload, wait_seconds=seconds * 2)
                        submitted[job.id] = handler
                        acct.submitted += 1
                        return
                    except SubmitError:
                        acct.submit_refusals += 1  # Redis is down: the caller was told; try again
                        await asyncio.sleep(0.2)

            async def collect() -> None:
                while not stop.is_set() or producer.pending:
                    for o in await producer.collect():
                        outcomes.setdefault(o.job_id, []).append(o)

            async def kill_workers() -> None:
                while not stop.is_set():
                    await asyncio.sleep(rng.uniform(0.8, 2.0))
                    alive = fleet.alive()
                    if alive:
                        victim = rng.choice(alive)
                        held = KEYS.processing(victim)
                        try:
                            busy = client.llen(held) > 0
                        except Exception:  # noqa: BLE001 - Redis may be down right now
                            busy = False
                        fleet.kill9(victim)
                        fleet.procs.pop(victim)  # replaced just below, once
                        acct.kills += 1
                        killed_at = time.monotonic()
                        fleet.spawn()
                        if busy:  # recovery time: until what it held is back on the queue
                            asyncio.create_task(watch_recovery(held, killed_at))
                    for wid in fleet.dead():  # poison victims: the fleet stays at three
                        fleet.procs.pop(wid)
                        fleet.spawn()

            async def watch_recovery(held: str, killed_at: float) -> None:
                while time.monotonic() - killed_at < 30:
                    try:
                        if not client.exists(held):
                            acct.recoveries.append(time.monotonic() - killed_at)
                            return
                    except Exception:  # noqa: BLE001 - Redis may be down right now
                        pass
                    await asyncio.sleep(0.1)

            async def break_redis() -> None:
                await asyncio.sleep(seconds * 0.1)
                server.stop()  # outage 1: data kept (AOF)
                await asyncio.sleep(1.5)
                server.start()
                acct.restarts += 1
                await asyncio.sleep(seconds * 0.1)
                server.stop()  # outage 2: data lost
                for f in server.dir.glob("**/*"):
                    if f.is_file():
                        f.unlink()
                await asyncio.sleep(1.0)
                server.start()
                acct.restarts += 1
                await asyncio.sleep(0.5)
                data_lost.set()
                for blob in (b"\xff not json", b"[1,2,3]", b'{"id": "x"}'):
                    client.lpush(KEYS.queue_list, blob)  # garbage, after the data loss so its dead letters stay

            tasks = [asyncio.create_task(t()) for t in (kill_workers, break_redis)]
            collector = asyncio.create_task(collect())
            await submit_all()
            await tasks[1]
            while producer.pending and time.monotonic() - started < seconds * 3:
                await asyncio.sleep(0.2)
            stop.set()
            tasks[0].cancel()
            await asyncio.gather(tasks[0], return_exceptions=True)
            await asyncio.wait_for(collector, 30)
            # let the fleet drain garbage and anything redelivered late
            await asyncio.sleep(3)
            assert len(fleet.procs) == 3, "every killed worker was replaced once"
            fleet.close()

            entries = {k.decode(): json.loads(v) for k, v in client.hgetall(KEYS.dlq_entries).items()}
            redeliveries = sum(int(client.get(k) or 0) for k in client.scan_iter(match=KEYS.lost("*")))
            for entry in entries.values():
                acct.dead_by_reason[entry["reason"]] += 1
            for job_id, handler in submitted.items():
                got = outcomes.get(job_id, [])
                assert len(got) == 1, f"{job_id} ({handler}) got {len(got)} outcomes"
                outcome = got[0]
                acct.outcomes[outcome.state.value] += 1
                if outcome.state is JobState.FAILED:
                    assert outcome.result is not None  # a delivered failure result
                elif outcome.state is not JobState.DONE:
                    assert job_id in entries, f"{job_id} ended {outcome.state.value} but is not in dead letters"
                if handler == "crash":
                    assert outcome.result.error_type == "WorkerLost"
                    assert entries[job_id]["reason"] == "worker_lost"
            assert set(outcomes) <= set(submitted), "an outcome for a job nobody submitted"
            raw = [e for e in entries.values() if e["id"].startswith("raw-")]
            assert len(raw) >= 3 and {e["reason"] for e in raw} == {"invalid_payload"}
            print("\nchaos:", acct.report(producer, redeliveries))
        for key in client.scan_iter(match="seawall:*"):
            k = key.decode()
            if k in BOUNDED or KEYS.suffix_of(k, "processing") is not None:
                continue
            assert client.ttl(key) > 0, f"{k} has no TTL"
        assert list(client.scan_iter(match="seawall:*:results:*")) == []
        assert fleet.alive() == []
    finally:
        fleet.close()
        server.cleanup()


async def test_chaos(tmp_path, events):
    await chaos(tmp_path, events, jobs=2000, seconds=25)


@pytest.mark.soak
@pytest.mark.timeout(3600)
async def test_chaos_soak(tmp_path, events):
    seconds = float(os.environ.get("CHAOS_SOAK_SECONDS", "300"))
    await chaos(tmp_path, events, jobs=int(seconds * 80), seconds=seconds)
