"""The dead-letter store against a real redis-server: bounds, paging, atomic retry, delete."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from engine.connection import make_client
from engine.deadletters import DeadLetter, DeadLetterStore, DeadReason, UnknownDeadLetterError
from engine.handlers import default_registry
from engine.keys import Keys
from engine.models import Job, JobState
from engine.producer import Producer
from engine.worker import Worker

KEYS = Keys("seawall", "default")
# Survives any JSON round trip only if nobody re-encodes it carelessly.
ODD_PAYLOAD = {"fail_times": 4, "big": 2**70, "f": 0.1, "e": 1e-300, "u": "ü€\n\"q\"", "empty": {}, "list": [],
               "nested": [{"a": None}]}


@pytest.fixture
async def client(redis_server, fast_settings):
    c = make_client(redis_server.url, fast_settings)
    yield c
    await c.aclose()


def job_entry(i: int, reason=DeadReason.HANDLER_FAILED, session="sGone", **kw) -> DeadLetter:
    job = Job(id=f"{session}-job-{i:04d}", session=session, result_key=KEYS.results(session), handler="echo",
              payload={"i": i}, attempt=3, failures=3)
    return DeadLetter(id=job.id, reason=reason, job=job.model_dump(mode="json"), error=f"boom {i}",
                      error_type="HandlerFailure", attempts=3, session=session, **kw)


async def fill(client, store, n: int, **kw) -> list[DeadLetter]:
    entries = [job_entry(i, **kw) for i in range(n)]
    base = time.time() - 5
    for i, e in enumerate(entries):
        await store.add(client, e, now=base + i * 0.001)
    return entries


async def serve_burst(settings, url, events, concurrency=4):
    worker = Worker(settings, url, events, default_registry(), burst=True, concurrency=concurrency)
    await asyncio.wait_for(worker.run(), 20)
    return worker


# -- the worker's failures land here, and come back --------------------------------------


async def test_flaky_jobs_land_as_handler_failed_and_a_retry_brings_results_back(
        redis_server, fast_settings, events, client):
    store = DeadLetterStore.for_settings(fast_settings)
    async with Producer(fast_settings, redis_server.url, events) as producer:
        jobs = [await producer.submit("flaky", ODD_PAYLOAD | {"n": i}, wait_seconds=20) for i in range(3)]
        await serve_burst(fast_settings, redis_server.url, events)
        first = await asyncio.wait_for(producer.wait_all(), 10)
        assert {o.state for o in first} == {JobState.FAILED}

        page = await store.page(client, reason=DeadReason.HANDLER_FAILED)
        assert {e.id for e in page.entries} == {j.id for j in jobs}
        for e in page.entries:
            raw = await client.hget(KEYS.dlq_entries, e.id)
            assert json.loads(raw)["job"]["payload"] == json.loads(next(j for j in jobs if j.id == e.id).to_json())["payload"]
            assert e.attempts == fast_settings.max_attempts and e.job["failures"] == 3
            assert e.error_type == "HandlerFailure" and "flaky" in e.traceback

        report = await store.retry_matching(client, reason=DeadReason.HANDLER_FAILED)
        assert sorted(report.retried) == sorted(j.id for j in jobs) and not report.rebound
        queued = [Job.from_json(b) for b in await client.lrange(KEYS.queue_list, 0, -1)]
        assert all(q.attempt == 1 and q.failures == 3 and q.retries == 1 for q in queued)
        assert all(q.payload == j.payload for q in queued for j in jobs if j.id == q.id)

        producer._track(jobs, 20)  # the producer awaits the retried jobs again (see the report)
        await serve_burst(fast_settings, redis_server.url, events)
        second = await asyncio.wait_for(producer.wait_all(), 10)
    assert {o.state for o in second} == {JobState.DONE}
    assert all(o.result.value == {"succeeded_after_failures": 4} and o.result.attempts == 2 for o in second)
    assert await store.count(client) == 0
    assert (await store.stats(client))["retried"] == 3


async def test_a_retried_job_whose_session_is_gone_goes_to_the_retrying_session(
        redis_server, fast_settings, events, client):
    store = DeadLetterStore.for_settings(fast_settings)
    async with Producer(fast_settings, redis_server.url, events) as gone:
        job = await gone.submit("flaky", {"fail_times": 3}, wait_seconds=20)
        await serve_burst(fast_settings, redis_server.url, events)
        await asyncio.wait_for(gone.wait_all(), 10)
    async with Producer(fast_settings, redis_server.url, events) as alive:
        report = await store.retry(client, [job.id], session_id=alive.session_id, result_key=alive.result_key)
        assert report.retried == [job.id] and report.rebound == [job.id]
        [queued] = [Job.from_json(b) for b in await client.lrange(KEYS.queue_list, 0, -1)]
        assert (queued.session, queued.result_key) == (alive.session_id, alive.result_key)
        assert report.jobs == {job.id: queued}
        alive._track([queued], 20)
        await serve_burst(fast_settings, redis_server.url, events)
        [outcome] = await asyncio.wait_for(alive.wait_all(), 10)
    assert outcome.ok and outcome.job_id == job.id


async def test_a_live_original_session_keeps_its_job(redis_server, fast_settings, events, client):
    store = DeadLetterStore.for_settings(fast_settings)
    async with Producer(fast_settings, redis_server.url, events) as owner:
        [entry] = await fill(client, store, 1, session=owner.session_id)
        report = await store.retry(client, [entry.id], session_id="sOperator")
        assert report.retried == [entry.id] and report.rebound == []
        [queued] = [Job.from_json(b) for b in await client.lrange(KEYS.queue_list, 0, -1)]
        assert queued.session == owner.session_id and queued.result_key == owner.result_key


async def test_garbage_lands_as_invalid_payload_while_jobs_flow_and_cannot_be_retried(
        redis_server, fast_settings, events, client):
    store = DeadLetterStore.for_settings(fast_settings)
    async with Producer(fast_settings, redis_server.url, events) as producer:
        await client.lpush(KEYS.queue_list, b"\x00\xffnot json", b"[1]")
        good = [await producer.submit("echo", i) for i in range(5)]
        await client.lpush(KEYS.queue_list, b'{"v": 1}')
        await serve_burst(fast_settings, redis_server.url, events, concurrency=1)
        outcomes = await asyncio.wait_for(producer.wait_all(), 10)
    assert sorted(o.job_id for o in outcomes if o.ok) == sorted(j.id for j in good)
    page = await store.page(client, reason=DeadReason.INVALID_PAYLOAD)
    assert len(page.entries) == 3 and all(e.raw is not None and not e.retryable for e in page.entries)
    report = await store.retry_matching(client)
    assert report.count == 0 and len(report.skipped) == 3 and "no job" in next(iter(report.skipped.values()))
    assert await store.count(client) == 3 and await client.llen(KEYS.queue_list) == 0


# -- bounds ---------------------------------------------------------------------------------


async def test_eighty_failures_leave_fifty_entries_and_thirty_dropped(redis_server, fast_settings, events, client):
    settings = fast_settings.model_copy(update={"dlq_max_entries": 50, "max_attempts": 1})
    store = DeadLetterStore.for_settings(settings)
    async with Producer(settings, redis_server.url, events) as producer:
        await producer.submit_many("fail", [{"message": f"no {i}"} for i in range(80)], wait_seconds=20)
        await serve_burst(settings, redis_server.url, events, concurrency=8)
        outcomes = await asyncio.wait_for(producer.wait_all(), 10)
    assert len(outcomes) == 80 and not any(o.ok for o in outcomes)
    assert await store.count(client) == 50 and await client.hlen(KEYS.dlq_entries) == 50
    stats = await store.stats(client)
    assert (stats["added"], stats["dropped_count"], stats["dropped_age"]) == (80, 30, 0)


async def test_entries_past_their_age_are_pruned_on_read(client):
    store = DeadLetterStore(KEYS, 100, ttl_seconds=60)
    old = time.time() - 120
    for i in range(5):
        await store.add(client, job_entry(i), now=old + i)
    assert await client.zcard(KEYS.dlq) == 5  # nothing new was written since
    fresh = job_entry(99)
    page = await store.page(client)
    assert page.entries == [] and page.total == 0
    assert (await store.stats(client))["dropped_age"] == 5
    await store.add(client, fresh)
    assert [e.id for e in (await store.page(client)).entries] == [fresh.id]
    assert await store.get(client, fresh.id) is not None
    await store.add(client, job_entry(7), now=old)  # already too old when written
    assert await store.get(client, job_entry(7).id) is None


# -- reads -----------------------------------------------------------------------------------


async def test_pages_are_newest_first_and_filters_scan_bounded_windows(client):
    store = DeadLetterStore(KEYS, 1000, 3600)
    base = time.time() - 5
    for i in range(300):
        reason = DeadReason.WORKER_LOST if i % 50 == 0 else DeadReason.HANDLER_FAILED
        await store.add(client, job_entry(i, reason=reason), now=base + i * 0.001)
    first = await store.page(client, limit=10)
    assert [e.job["payload"]["i"] for e in first.entries] == list(range(299, 289, -1))
    second = await store.page(client, limit=10, offset=first.next_offset)
    assert second.entries[0].job["payload"]["i"] == 289 and second.total == 300

    lost = await store.page(client, limit=3, reason=DeadReason.WORKER_LOST)
    assert [e.job["payload"]["i"] for e in lost.entries] == [250, 200, 150]
    rest = await store.page(client, limit=10, reason=DeadReason.WORKER_LOST, offset=lost.next_offset)
    assert [e.job["payload"]["i"] for e in rest.entries] == [100, 50, 0] and rest.next_offset is None

    bounded = await store.page(client, limit=10, reason=DeadReason.WORKER_LOST, scan_max=120)
    assert [e.job["payload"]["i"] for e in bounded.entries] == [250, 200] and bounded.next_offset == 120
    assert bounded.scanned == 120

    text = await store.page(client, limit=5, text="BOOM 12")
    assert [e.job["payload"]["i"] for e in text.entries] == [129, 128, 127, 126, 125]
    assert [e.id for e in (await store.page(client, text="ü-none")).entries] == []


async def test_show_one_and_unknown_ids(client):
    store = DeadLetterStore(KEYS, 100, 3600)
    [entry] = await fill(client, store, 1)
    assert (await store.require(client, entry.id)).job == entry.job
    with pytest.raises(UnknownDeadLetterError, match="no dead letter with id 'nope'"):
        await store.require(client, "nope")
    assert await store.unknown(client, [entry.id, "nope"]) == ["nope"]


# -- mutations -------------------------------------------------------------------------------


async def test_two_operators_retrying_the_same_entry_requeue_it_once(redis_server, fast_settings, client):
    store = DeadLetterStore(KEYS, 100, 3600)
    entries = await fill(client, store, 20)
    other = make_client(redis_server.url, fast_settings)
    try:
        for e in entries:
            a, b = await asyncio.gather(store.retry(client, [e.id]), store.retry(other, [e.id]))
            assert sorted([a.count, b.count]) == [0, 1]
            assert sorted([len(a.missing), len(b.missing)]) == [0, 1]
        both = await asyncio.gather(store.retry_matching(client), store.retry_matching(other))
        assert sum(r.count for r in both) == 0
    finally:
        await other.aclose()
    queued = [Job.from_json(b).id for b in await client.lrange(KEYS.queue_list, 0, -1)]
    assert sorted(queued) == sorted(e.id for e in entries)
    assert (await store.stats(client))["retried"] == 20


async def test_concurrent_retry_all_requeues_each_entry_once(redis_server, fast_settings, client):
    store = DeadLetterStore(KEYS, 1000, 3600)
    entries = await fill(client, store, 150)
    other = make_client(redis_server.url, fast_settings)
    try:
        a, b = await asyncio.gather(store.retry_matching(client, batch=7), store.retry_matching(other, batch=11))
    finally:
        await other.aclose()
    assert a.count + b.count == 150 and not set(a.retried) & set(b.retried)
    assert await client.llen(KEYS.queue_list) == 150 and await store.count(client) == 0
    assert len(entries) == 150


async def test_retry_all_with_a_filter_works_in_batches_and_keeps_the_rest(client):
    store = DeadLetterStore(KEYS, 1000, 3600)
    base = time.time() - 5
    for i in range(60):
        reason = DeadReason.RESULT_TIMEOUT if i % 3 == 0 else DeadReason.HANDLER_FAILED
        await store.add(client, job_entry(i, reason=reason), now=base + i * 0.001)
    for i in range(5):
        await store.add(client, DeadLetter.for_raw(b"junk %d" % i, DeadReason.INVALID_PAYLOAD, "not json"))
    seen = []
    report = await store.retry_matching(client, reason=DeadReason.HANDLER_FAILED, batch=7,
                                        progress=lambda done, total: seen.append((done, total)))
    assert report.count == 40 and not report.skipped
    assert seen[-1] == (65, 65) and len(seen) >= 65 // 7
    left = await store.page(client, limit=100)
    assert {e.reason for e in left.entries} == {DeadReason.RESULT_TIMEOUT, DeadReason.INVALID_PAYLOAD}
    assert left.total == 25
    report = await store.retry_matching(client, text="boom 3")  # boom 3, 30, 33, 36, 39 of which %3==0
    assert sorted(report.retried) == sorted(job_entry(i).id for i in (3, 30, 33, 36, 39))


async def test_retry_all_does_not_repeat_jobs_that_fail_again_meanwhile(redis_server, client):
    store = DeadLetterStore(KEYS, 1000, 3600)
    entries = await fill(client, store, 10)
    sync = redis_server.client()
    calls = []

    def failed_again(done, total):  # the first batch's jobs fail again before the next batch is read
        if not calls:
            for e in entries[-3:]:
                sync.eval(*store._add_args(e, time.time() + 60))
        calls.append(done)

    report = await store.retry_matching(client, batch=3, progress=failed_again)
    assert sorted(report.retried) == sorted(e.id for e in entries) and len(calls) >= 4
    assert sorted(e.id for e in (await store.page(client)).entries) == sorted(e.id for e in entries[-3:])


async def test_delete_and_purge(client):
    store = DeadLetterStore(KEYS, 1000, 3600)
    entries = await fill(client, store, 30)
    deleted, missing = await store.delete(client, [entries[0].id, entries[1].id, "nope"])
    assert deleted == [entries[0].id, entries[1].id] and missing == ["nope"]
    assert await store.get(client, entries[0].id) is None and await store.count(client) == 28
    assert await store.purge(client) == 28
    assert await store.count(client) == 0 and await client.exists(KEYS.dlq_entries) == 0
    stats = await store.stats(client)
    assert stats["deleted"] == 30 and stats["added"] == 30


async def test_big_retries_are_split_into_bounded_script_calls(client, monkeypatch):
    monkeypatch.setattr("engine.deadletters.RETRY_BYTES", 2000)  # a few entries per call
    store = DeadLetterStore(KEYS, 1000, 3600)
    entries = await fill(client, store, 25)
    report = await store.retry(client, [e.id for e in entries])
    assert sorted(report.retried) == sorted(e.id for e in entries)
    assert await client.llen(KEYS.queue_list) == 25 and await store.count(client) == 0
