"""No job or result lost: crashed workers, Redis outages and restarts, poison and hostile input."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from engine.handlers import default_registry, load_registry
from engine.keys import Keys
from engine.models import JobState, Outcome, Result
from engine.producer import Producer
from engine.spool import Spool, SpooledOutcome
from engine.worker import Worker

from .console_support import runtime_for
from .redisproc import RedisProcess
from .worker_support import Workers

KEYS = Keys("seawall", "default")
LEASE = {"lease_seconds": 1, "heartbeat_seconds": 0.3}


async def eventually(predicate, timeout: float, what: str) -> float:
    """Seconds until ``predicate()`` held; fails the test after ``timeout``."""
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.05)
    return time.monotonic() - started


@pytest.fixture
def workers_for(tmp_path):
    made = []

    def make(runtime, *extra):
        w = Workers(runtime, tmp_path, *extra)
        made.append(w)
        return w

    yield make
    for w in made:
        w.close()


def dead_letters(server) -> dict[str, dict]:
    raw = server.client().hgetall(KEYS.dlq_entries)
    return {k.decode(): json.loads(v) for k, v in raw.items()}


async def test_kill9_of_a_busy_worker_is_redelivered_within_the_lease(redis_server, events, workers_for):
    rt = runtime_for(redis_server.url, **LEASE)
    fleet = workers_for(rt)
    first = fleet.spawn("victim")
    client = redis_server.client()
    async with Producer(rt.settings, rt.url, events) as producer:
        job = await producer.submit("sleep", {"seconds": 1.0})
        await eventually(lambda: client.llen(KEYS.processing(first)) == 1, 15, "the claim")
        fleet.kill9(first)
        killed = time.monotonic()
        second = fleet.spawn("rescuer")
        recovery = await eventually(lambda: job.id.encode() in b"".join(client.lrange(KEYS.processing(second), 0, -1)),
                                    10, "redelivery")
        [outcome] = await asyncio.wait_for(producer.wait_all(), 15)
    print(f"redelivered {recovery:.2f}s after kill -9 (lease 1s)")
    assert recovery < 3
    assert outcome.ok and outcome.result.worker == second
    assert time.monotonic() - killed < 8
    assert client.get(KEYS.lost(job.id)) == b"1"


async def test_a_slow_healthy_job_is_not_redelivered(redis_server, events, workers_for):
    rt = runtime_for(redis_server.url, **LEASE)
    fleet = workers_for(rt)
    fleet.spawn("slow")
    fleet.spawn("other")
    async with Producer(rt.settings, rt.url, events) as producer:
        job = await producer.submit("sleep", {"seconds": 3})  # three leases long
        [outcome] = await asyncio.wait_for(producer.wait_all(), 20)
        await asyncio.sleep(0.5)
    assert outcome.ok
    assert producer.duplicates == 0
    assert redis_server.client().get(KEYS.lost(job.id)) is None
    assert "job_redelivered" not in fleet.log("slow") + fleet.log("other")


async def test_a_poison_job_is_dead_lettered_as_worker_lost_while_others_flow(redis_server, events, workers_for):
    rt = runtime_for(redis_server.url, **LEASE)
    fleet = workers_for(rt, "--concurrency", "1")
    fleet.spawn()
    fleet.spawn()

    async def supervise():
        while True:
            for wid in fleet.dead():
                fleet.procs.pop(wid)
                fleet.spawn()
            await asyncio.sleep(0.1)

    supervisor = asyncio.create_task(supervise())
    try:
        async with Producer(rt.settings, rt.url, events) as producer:
            poison = await producer.submit("crash", {}, wait_seconds=60)
            good = [await producer.submit("echo", i, wait_seconds=60) for i in range(30)]
            outcomes = {o.job_id: o for o in await asyncio.wait_for(producer.wait_all(), 60)}
    finally:
        supervisor.cancel()
    assert all(outcomes[j.id].ok for j in good)
    lost = outcomes[poison.id]
    assert lost.state is JobState.FAILED and lost.result.error_type == "WorkerLost"
    entry = dead_letters(redis_server)[poison.id]
    assert entry["reason"] == "worker_lost" and entry["job"]["handler"] == "crash"
    assert fleet.spawned >= 4  # it killed a worker every time it was delivered


async def test_result_is_spooled_during_an_outage_and_delivered_after(events, tmp_path):
    server = RedisProcess("--appendonly", "yes", "--appendfsync", "always").start()
    try:
        rt = runtime_for(server.url, shutdown_grace_seconds=5)
        async with Producer(rt.settings, rt.url, events) as producer:
            worker = Worker(rt.settings, rt.url, events, default_registry(), spool_path=tmp_path / "spool")
            task = asyncio.create_task(worker.run())
            job = await producer.submit("sleep", {"seconds": 3.0}, wait_seconds=60)
            await eventually(lambda: worker.inflight, 10, "the claim")
            server.stop()  # for 10 s, while the 3 s job runs
            stopped = time.monotonic()
            await eventually(lambda: worker.spooled == 1, 20, "the spool")
            spooled = (tmp_path / "spool" / f"{worker.worker_id}.jsonl").read_text()
            assert job.id in spooled
            await asyncio.sleep(max(0.0, 10 - (time.monotonic() - stopped)))
            server.start()
            [outcome] = await asyncio.wait_for(producer.wait_all(), 30)
            assert outcome.ok and outcome.job_id == job.id
            assert await worker.replay_spool() == 0
            worker.request_stop()
            await asyncio.wait_for(task, 15)
        assert server.client().llen(KEYS.processing(worker.worker_id)) == 0
    finally:
        server.cleanup()


async def test_a_restarted_worker_replays_the_spool_it_finds(redis_server, events, tmp_path):
    rt = runtime_for(redis_server.url)
    client = redis_server.client()
    async with Producer(rt.settings, rt.url, events) as producer:
        job = producer.build_job("echo", "from the spool")
        producer.expect([job])
        raw = job.to_json()
        client.lpush(KEYS.processing("dead"), raw)
        result = Result(job_id=job.id, outcome=Outcome.OK, value="from the spool", worker="dead")
        spool = Spool(tmp_path / "spool", "dead").open()
        spool.append(SpooledOutcome(job.id, job.session, job.result_key, result.to_json().decode(),
                                    KEYS.processing("dead"), raw.decode("latin-1")))
        spool._fh.close()  # the worker died: its lock is gone  # noqa: SLF001
        worker = Worker(rt.settings, rt.url, events, default_registry(), spool_path=tmp_path / "spool")
        task = asyncio.create_task(worker.run())
        [outcome] = await asyncio.wait_for(producer.wait_all(), 15)
        worker.request_stop()
        await asyncio.wait_for(task, 10)
    assert outcome.ok and outcome.result.value == "from the spool" and outcome.result.worker == "dead"
    assert client.llen(KEYS.processing("dead")) == 0
    assert not (tmp_path / "spool" / "dead.jsonl").exists() or (tmp_path / "spool" / "dead.jsonl").read_text() == ""


async def test_blocked_calls_ended_by_the_server_are_retried(redis_server, events):
    rt = runtime_for(redis_server.url)
    client = redis_server.client()
    async with Producer(rt.settings, rt.url, events) as producer:
        worker = Worker(rt.settings, rt.url, events, default_registry(), concurrency=4)
        task = asyncio.create_task(worker.run())
        jobs = [await producer.submit("sleep", {"seconds": 0.05}) for _ in range(40)]
        collecting = asyncio.create_task(producer.wait_all())
        for round_ in range(6):
            await asyncio.sleep(0.15)
            for c in client.client_list():
                if c.get("cmd") in ("blpop", "blmove"):
                    client.client_unblock(int(c["id"]), error=True)
            if round_ == 2:
                client.client_kill_filter(_type="normal", skipme=True)
            if round_ == 4:
                client.execute_command("CLIENT", "PAUSE", "300", "WRITE")
        outcomes = await asyncio.wait_for(collecting, 30)
        worker.request_stop()
        await asyncio.wait_for(task, 10)
    assert sorted(o.job_id for o in outcomes) == sorted(j.id for j in jobs)
    assert all(o.ok for o in outcomes)


async def test_results_survive_the_producers_connection_dying_mid_reply(redis_server, events):
    """The producer's collecting connection is killed again and again while results flow.
    A kill can land after Redis moved a result but before its reply arrived: that result
    is read again from ``taken``, so every job still ends done, none timed out."""
    rt = runtime_for(redis_server.url)
    admin = redis_server.client()
    kills = 0
    async with Producer(rt.settings, rt.url, events) as producer:
        worker = Worker(rt.settings, rt.url, events, default_registry(), concurrency=8)
        task = asyncio.create_task(worker.run())
        jobs = await producer.submit_many("echo", range(3000), wait_seconds=60)
        collecting = asyncio.create_task(producer.wait_all())
        while not collecting.done():
            await asyncio.sleep(0.005)
            for c in admin.client_list():
                if c.get("name") == "seawall-producer-collect":
                    admin.client_kill_filter(_id=int(c["id"]))
                    kills += 1
        outcomes = await asyncio.wait_for(collecting, 60)
        worker.request_stop()
        await asyncio.wait_for(task, 10)
    states = {o.state for o in outcomes}
    assert kills >= 5, f"only {kills} kills: the test did not test much"
    assert states == {JobState.DONE}, f"{sum(not o.ok for o in outcomes)} of {len(jobs)} not done"
    assert sorted(o.result.value for o in outcomes) == list(range(3000))


async def test_a_full_redis_still_hands_out_results(redis_server, fast_settings, events):
    """At maxmemory with noeviction Redis refuses BLMOVE (it may add to a list). Reading
    results is what frees memory, so the producer pops them instead of waiting it out."""
    client = redis_server.client()
    async with Producer(fast_settings, redis_server.url, events) as producer:
        jobs = [producer.build_job("echo", i) for i in range(5)]
        producer.expect(jobs)
        for job in jobs:
            client.rpush(producer.result_key, Result(job_id=job.id, outcome=Outcome.OK, value=job.payload).to_json())
        client.config_set("maxmemory-policy", "noeviction")
        client.config_set("maxmemory", 1)  # every command that may add memory is refused now
        try:
            outcomes = await asyncio.wait_for(producer.wait_all(), 10)
        finally:
            client.config_set("maxmemory", 0)
    assert sorted(o.result.value for o in outcomes) == list(range(5))
    assert len(events.of("collect_popping")) == 1


async def test_a_claim_whose_reply_was_lost_goes_back_to_the_queue(redis_server, fast_settings, events):
    """Redis moved a job into a live worker's processing list, but the worker never got the
    reply (its connection dropped): no task runs it and no reaper takes it from a live worker."""
    client = redis_server.client()
    async with Producer(fast_settings, redis_server.url, events) as producer:
        worker = Worker(fast_settings, redis_server.url, events, default_registry())
        task = asyncio.create_task(worker.run())
        job = producer.build_job("echo", "found again")
        producer.expect([job])
        client.lpush(worker.processing, job.to_json())  # as if its BLMOVE reply had been lost
        [outcome] = await asyncio.wait_for(producer.wait_all(), 15)
        worker.request_stop()
        await asyncio.wait_for(task, 10)
    assert outcome.ok and outcome.result.value == "found again"
    assert worker.metrics.counters["claims_recovered"] == 1
    assert [e["reason"] for e in events.of("job_requeued")] == ["claim_reply_lost"]


async def test_redis_restarted_empty_makes_the_producer_resubmit(redis_server, events):
    rt = runtime_for(redis_server.url)
    async with Producer(rt.settings, rt.url, events) as producer:
        jobs = [await producer.submit("echo", i, wait_seconds=60) for i in range(10)]
        redis_server.restart()  # no persistence: the queue is gone
        await eventually(lambda: producer.resubmitted == 10, 15, "resubmission")
        worker = Worker(rt.settings, rt.url, events, default_registry(), burst=True)
        await asyncio.wait_for(worker.run(), 15)
        outcomes = await asyncio.wait_for(producer.wait_all(), 15)
    assert sorted(o.job_id for o in outcomes) == sorted(j.id for j in jobs) and all(o.ok for o in outcomes)
    assert "redis_restarted" in events.names()


async def test_a_timed_out_job_is_recorded_as_result_timeout_and_keeps_a_late_result(redis_server, events):
    rt = runtime_for(redis_server.url)
    async with Producer(rt.settings, rt.url, events) as producer:
        job = await producer.submit("echo", "late", wait_seconds=0.3)
        [outcome] = await asyncio.wait_for(producer.wait_all(), 5)
        assert outcome.state is JobState.TIMED_OUT
        await eventually(lambda: job.id in dead_letters(redis_server), 5, "the dead letter")
        assert dead_letters(redis_server)[job.id]["reason"] == "result_timeout"
        worker = Worker(rt.settings, rt.url, events, default_registry(), burst=True)
        await asyncio.wait_for(worker.run(), 10)
        await producer.collect()
        await eventually(lambda: (dead_letters(redis_server)[job.id].get("result") or {}).get("value") == "late", 5,
                         "the late result kept")


@pytest.mark.parametrize(
    ("handler", "payload", "error_type"),
    [("hang", {"seconds": 20}, "JobTimeoutError"), ("unserializable", {}, "_NotSerializable"),
     ("fail", {}, "HandlerFailure")],
)
async def test_hostile_handlers_end_in_dead_letters_while_good_jobs_complete(redis_server, events, handler, payload,
                                                                             error_type):
    rt = runtime_for(redis_server.url, max_attempts=1)
    registry = load_registry(["tests.fault_handlers"])
    async with Producer(rt.settings, rt.url, events) as producer:
        bad = await producer.submit(handler, payload, timeout=0.5)
        good = [await producer.submit("echo", i) for i in range(5)]
        worker = Worker(rt.settings, rt.url, events, registry, concurrency=2)
        task = asyncio.create_task(worker.run())
        outcomes = {o.job_id: o for o in await asyncio.wait_for(producer.wait_all(), 20)}
        worker.request_stop()
        await asyncio.wait_for(task, 10)
    assert all(outcomes[j.id].ok for j in good)
    assert outcomes[bad.id].result.error_type == error_type
    assert dead_letters(redis_server)[bad.id]["reason"] == "handler_failed"


async def test_a_worker_printing_huge_output_keeps_serving_under_the_console(redis_server, events):
    from engine.procs import WorkerProcess

    rt = runtime_for(redis_server.url)
    proc = await WorkerProcess(rt, "--import", "tests.fault_handlers", capture=True).start()
    try:
        async with Producer(rt.settings, rt.url, events) as producer:
            await producer.submit("noisy", {})
            await producer.submit("echo", "after")
            outcomes = await asyncio.wait_for(producer.wait_all(), 30)
        assert all(o.ok for o in outcomes)
        assert all(len(line) <= 2010 for line in proc.lines)
    finally:
        await proc.stop(10)


async def test_payload_over_the_limit_is_refused_at_submit(redis_server, events):
    from engine.errors import PayloadError

    rt = runtime_for(redis_server.url, max_payload_bytes=1000)
    async with Producer(rt.settings, rt.url, events) as producer:
        with pytest.raises(PayloadError, match="over max_payload_bytes"):
            await producer.submit("echo", "x" * 2000)
    assert redis_server.client().llen(KEYS.queue_list) == 0


async def submit_when_closed(producer, handler, payload, **kw):
    """After an outage the producer's breaker refuses until its probe succeeds: a caller retries."""
    from engine.errors import SubmitError

    for _ in range(100):
        try:
            return await producer.submit(handler, payload, **kw)
        except SubmitError:
            await asyncio.sleep(0.3)
    raise AssertionError("the producer never accepted a job after the outage")


@pytest.mark.soak
@pytest.mark.timeout(600)
async def test_a_worker_survives_redis_gone_for_a_minute_idle_and_mid_job(events, tmp_path, workers_for):
    """By hand: pytest -m soak -k survives (about 2.5 minutes)."""
    server = RedisProcess("--appendonly", "yes", "--appendfsync", "always").start()
    try:
        rt = runtime_for(server.url)
        fleet = workers_for(rt)
        wid = fleet.spawn("steadfast")
        async with Producer(rt.settings, rt.url, events) as producer:
            await producer.submit("echo", "warm up")
            await asyncio.wait_for(producer.wait_all(), 20)
            server.stop()  # idle outage
            await asyncio.sleep(60)
            server.start()
            await submit_when_closed(producer, "echo", "after the idle outage", wait_seconds=60)
            [first] = await asyncio.wait_for(producer.wait_all(), 60)
            job = await submit_when_closed(producer, "sleep", {"seconds": 5}, wait_seconds=120)
            await eventually(lambda: server.client().llen(KEYS.processing(wid)) == 1, 30, "the claim")
            server.stop()  # mid-job outage
            await asyncio.sleep(60)
            server.start()
            [second] = await asyncio.wait_for(producer.wait_all(), 60)
        assert first.ok and second.ok and second.job_id == job.id
        assert fleet.alive() == [wid], "the same worker process, never restarted"
    finally:
        server.cleanup()


def test_a_short_lived_submit_records_its_timeouts(redis_server):
    import subprocess
    import sys

    from .conftest import ROOT

    out = subprocess.run([sys.executable, "-m", "engine.cli", "--redis-url", redis_server.url, "submit", "--handler",
                          "echo", "--count", "2", "--wait", "--timeout", "0.5", "--json"],
                         capture_output=True, text=True, timeout=30, cwd=ROOT)
    assert out.returncode == 1
    states = [json.loads(line)["state"] for line in out.stdout.splitlines()]
    assert states == ["timed_out", "timed_out"]
    assert [e["reason"] for e in dead_letters(redis_server).values()] == ["result_timeout", "result_timeout"]
