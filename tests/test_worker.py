"""Worker behaviour against a real server: fallback pools, garbage, shutdown."""

from __future__ import annotations

import asyncio
import json

from engine.connection import make_client
from engine.deadletters import DeadLetterStore, DeadReason
from engine.handlers import default_registry
from engine.keys import Keys
from engine.models import Job
from engine.producer import Producer
from engine.worker import Worker

KEYS = Keys("seawall", "default")


def job_bytes(result_key="seawall:{default}:results:sX", handler="echo", payload=1, **kw) -> bytes:
    return Job(id=kw.pop("id", "sX-j-1"), session="sX", result_key=result_key, handler=handler, payload=payload, **kw).to_json()


async def test_fallback_pool_creation_failure_gives_a_falsey_push(redis_server, fast_settings, events):
    calls = {"n": 0}

    def factory(url, settings):
        calls["n"] += 1
        if calls["n"] > 1:
            raise OSError("cannot create a pool right now")
        return make_client(url, settings)

    worker = Worker(fast_settings, redis_server.url, events, default_registry(), client_factory=factory)
    redis_server.stop()
    job = Job.from_json(job_bytes())
    ok = await worker._record([], lambda c: c.rpush(job.result_key, b"x"))
    assert ok is False
    assert any(e["error"].startswith("OSError") for e in events.of("fallback_push_failed"))
    await worker.link.close()


async def test_fallback_pool_is_used_when_the_primary_fails(redis_server, fast_settings, events):
    worker = Worker(fast_settings, redis_server.url, events, default_registry())
    await worker.link.client.ping()
    redis_server.restart()  # the primary pool's sockets are now dead; retries=0 below forces the fallback
    settings = fast_settings.model_copy(update={"enqueue_max_retries": 0})
    worker.settings = settings
    job = Job.from_json(job_bytes())
    ok = await worker._record([], lambda c: c.rpush(job.result_key, b"x"))
    assert ok is True and worker.fallback_pools == 1
    assert redis_server.client().lrange(job.result_key, 0, -1) == [b"x"]
    await worker.link.close()


async def test_garbage_on_the_queue_is_dead_lettered_and_work_goes_on(redis_server, fast_settings, events):
    client = redis_server.client()
    garbage = [b"\xff\xfe not json", b"[1, 2, 3]", b'{"id": "x"}', b"x" * (2 * 1024 * 1024)]
    async with Producer(fast_settings, redis_server.url, events) as producer:
        for g in garbage:
            client.lpush(KEYS.queue_list, g)
        good = await producer.submit("echo", "still flowing")
        worker = Worker(fast_settings, redis_server.url, events, default_registry(), burst=True)
        await asyncio.wait_for(worker.run(), 20)
        [outcome] = await asyncio.wait_for(producer.wait_all(), 5)
        assert outcome.job_id == good.id and outcome.ok
    store = DeadLetterStore(KEYS, 100, 3600)
    entries = await store.newest(worker.link.client_factory(redis_server.url, fast_settings), 10)
    assert len(entries) == 4
    assert {e.reason for e in entries} == {DeadReason.INVALID_PAYLOAD}
    assert max(e.raw_bytes for e in entries) == 2 * 1024 * 1024
    assert all(len(e.raw) <= 64 * 1024 * 4 for e in entries)
    assert client.llen(KEYS.processing(worker.worker_id)) == 0


async def test_unknown_handler_is_never_run_and_the_producer_hears_of_it(redis_server, fast_settings, events):
    async with Producer(fast_settings, redis_server.url, events) as producer:
        job = await producer.submit("os.system", "rm -rf /")
        worker = Worker(fast_settings, redis_server.url, events, default_registry(), burst=True)
        await asyncio.wait_for(worker.run(), 10)
        [outcome] = await asyncio.wait_for(producer.wait_all(), 5)
    assert not outcome.ok and outcome.result.error_type == "UnknownHandlerError"
    entry = json.loads(redis_server.client().hget(KEYS.dlq_entries, job.id))
    assert entry["reason"] == "invalid_payload"


async def test_flaky_counts_failures_over_the_jobs_history(redis_server, fast_settings, events):
    async with Producer(fast_settings, redis_server.url, events) as producer:
        await producer.submit("flaky", {"fail_times": 2})
        worker = Worker(fast_settings, redis_server.url, events, default_registry(), burst=True)
        await asyncio.wait_for(worker.run(), 10)
        [outcome] = await asyncio.wait_for(producer.wait_all(), 5)
    assert outcome.ok and outcome.result.attempts == 3
    assert outcome.result.value == {"succeeded_after_failures": 2}


async def test_stop_mid_job_past_grace_puts_the_job_back(redis_server, fast_settings, events):
    settings = fast_settings.model_copy(update={"shutdown_grace_seconds": 0.2})
    async with Producer(settings, redis_server.url, events) as producer:
        job = await producer.submit("sleep", {"seconds": 30})
        worker = Worker(settings, redis_server.url, events, default_registry())
        task = asyncio.create_task(worker.run())
        client = redis_server.client()
        for _ in range(100):
            if client.llen(KEYS.processing(worker.worker_id)):
                break
            await asyncio.sleep(0.05)
        worker.request_stop()
        assert await asyncio.wait_for(task, 10) == 0
        queued = client.lrange(KEYS.queue_list, 0, -1)
        assert [Job.from_json(q).id for q in queued] == [job.id]
        assert client.llen(KEYS.processing(worker.worker_id)) == 0
        assert client.exists(KEYS.worker(worker.worker_id)) == 0
        assert client.zscore(KEYS.workers, worker.worker_id) is None


async def test_stop_lets_a_short_job_finish(redis_server, fast_settings, events):
    async with Producer(fast_settings, redis_server.url, events) as producer:
        await producer.submit("sleep", {"seconds": 0.5})
        worker = Worker(fast_settings, redis_server.url, events, default_registry())
        task = asyncio.create_task(worker.run())
        while not worker.current:
            await asyncio.sleep(0.02)
        worker.request_stop()
        await asyncio.wait_for(task, 10)
        [outcome] = await asyncio.wait_for(producer.wait_all(), 5)
        assert outcome.ok
