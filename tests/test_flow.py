"""Submit + BLPOP flow against a real redis-server, and what is left behind."""

from __future__ import annotations

import asyncio

import pytest

from engine.handlers import default_registry
from engine.keys import Keys
from engine.models import JobState
from engine.producer import Producer
from engine.worker import Worker


async def run_worker(settings, url, events, **kw):
    worker = Worker(settings, url, events, default_registry(), **kw)
    task = asyncio.create_task(worker.run())
    return worker, task


async def test_submit_and_collect_results(redis_server, fast_settings, events):
    worker, task = await run_worker(fast_settings, redis_server.url, events, concurrency=2)
    async with Producer(fast_settings, redis_server.url, events) as producer:
        jobs = [await producer.submit("echo", {"n": i}) for i in range(20)]
        outcomes = await asyncio.wait_for(producer.wait_all(), 15)
    worker.request_stop()
    await asyncio.wait_for(task, 10)
    assert {o.job_id for o in outcomes} == {j.id for j in jobs}
    assert all(o.state is JobState.DONE for o in outcomes)
    by_id = {o.job_id: o.result.value for o in outcomes}
    assert [by_id[j.id] for j in jobs] == [{"n": i} for i in range(20)]


async def test_run_returns_each_callers_own_outcome(redis_server, fast_settings, events):
    """run() from many tasks at once, beside plain submits: every caller gets its job's
    outcome, and collect() still gets the submitted ones (none is taken by a run())."""
    worker, task = await run_worker(fast_settings, redis_server.url, events, concurrency=4)
    async with Producer(fast_settings, redis_server.url, events) as producer:
        one = await asyncio.wait_for(producer.run("increment", 41), 10)
        submitted = [await producer.submit("echo", f"plain {i}") for i in range(10)]
        ran = await asyncio.wait_for(asyncio.gather(*(producer.run("increment", i) for i in range(30))), 20)
        collected = await asyncio.wait_for(producer.wait_all(), 15)
        assert not producer.pending
    worker.request_stop()
    await asyncio.wait_for(task, 10)
    assert one.ok and one.result.value == 42
    assert [o.result.value for o in ran] == [i + 1 for i in range(30)]
    assert sorted(o.job_id for o in collected) == sorted(j.id for j in submitted)


async def test_run_without_a_worker_ends_at_its_deadline(redis_server, fast_settings, events):
    async with Producer(fast_settings, redis_server.url, events) as producer:
        outcome = await asyncio.wait_for(producer.run("echo", 1, wait_seconds=0.5), 5)
    assert outcome.state is JobState.TIMED_OUT and outcome.result is None


async def test_failing_job_reports_failure_after_max_attempts(redis_server, fast_settings, events):
    worker, task = await run_worker(fast_settings, redis_server.url, events)
    async with Producer(fast_settings, redis_server.url, events) as producer:
        job = await producer.submit("fail", {"message": "boom"})
        [outcome] = await asyncio.wait_for(producer.wait_all(), 15)
    worker.request_stop()
    await asyncio.wait_for(task, 10)
    assert outcome.state is JobState.FAILED
    assert outcome.result.error == "boom" and outcome.result.error_type == "HandlerFailure"
    assert worker.fallback_pools == 0, "a failure was recorded only through the fallback pool"
    assert outcome.result.attempts == fast_settings.max_attempts
    dlq = redis_server.client().zrange(Keys("seawall", "default").dlq, 0, -1)
    assert dlq == [job.id.encode()]


async def test_result_list_ttl_is_positive_and_bounded(redis_server, fast_settings, events):
    async with Producer(fast_settings, redis_server.url, events) as producer:
        await producer.submit("echo", 1)
        worker, task = await run_worker(fast_settings, redis_server.url, events, burst=True)
        await asyncio.wait_for(task, 10)
        ttl = redis_server.client().ttl(producer.result_key)
        assert 0 < ttl <= fast_settings.worker_result_ttl_seconds
        await producer.wait_all()


async def test_clean_shutdown_leaves_no_result_lists(redis_server, fast_settings, events):
    producer = Producer(fast_settings, redis_server.url, events)
    await producer.start()
    for i in range(5):
        await producer.submit("echo", i)
    worker, task = await run_worker(fast_settings, redis_server.url, events, burst=True)
    await asyncio.wait_for(task, 10)
    # results are still unread in the list: shutdown must delete them anyway
    assert redis_server.client().llen(producer.result_key) == 5
    await producer.close()
    client = redis_server.client()
    assert list(client.scan_iter(match="seawall:{default}:results:*")) == []
    assert list(client.scan_iter(match="seawall:{default}:session:*")) == []
    assert "result_queue_deleted" in events.names()


async def test_job_past_its_deadline_is_timed_out(redis_server, fast_settings, events):
    async with Producer(fast_settings, redis_server.url, events) as producer:
        await producer.submit("echo", 1, wait_seconds=0.5)  # no worker runs
        [outcome] = await asyncio.wait_for(producer.wait_all(), 5)
    assert outcome.state is JobState.TIMED_OUT


@pytest.mark.parametrize("concurrency", [1, 3])
async def test_every_key_has_a_ttl_or_is_bounded(redis_server, fast_settings, events, concurrency):
    worker, task = await run_worker(fast_settings, redis_server.url, events, concurrency=concurrency)
    async with Producer(fast_settings, redis_server.url, events) as producer:
        for i in range(10):
            await producer.submit("echo", i)
        await producer.submit("fail")
        await asyncio.wait_for(producer.wait_all(), 15)
        client = redis_server.client()
        keys = Keys("seawall", "default")
        bounded = {keys.queue_list, keys.dlq, keys.dlq_entries, keys.dlq_stats, keys.workers}
        for key in client.scan_iter(match="seawall:*"):
            k = key.decode()
            if k in bounded or keys.suffix_of(k, "processing") is not None:
                continue
            assert client.ttl(key) > 0, f"{k} has no TTL"
    worker.request_stop()
    await asyncio.wait_for(task, 10)
