"""Orphaned result lists against a real redis-server: found by SCAN, cleaned only when the session is gone."""

from __future__ import annotations

import asyncio
import json

import pytest

from engine.connection import make_client
from engine.deadletters import DeadLetterStore, DeadReason
from engine.handlers import default_registry
from engine.keys import Keys
from engine.models import Outcome, Result
from engine.orphans import adopt_orphans, count_orphans, delete_orphans, scan_orphans
from engine.producer import Producer
from engine.worker import Worker

KEYS = Keys("seawall", "default")


@pytest.fixture
async def client(redis_server, fast_settings):
    c = make_client(redis_server.url, fast_settings)
    yield c
    await c.aclose()


def result(i: int) -> bytes:
    return Result(job_id=f"sDead-job-{i}", outcome=Outcome.OK, value={"i": i, "big": 2**70}, worker="w1",
                  handler="echo").to_json()


async def plant(client, session: str, n: int, *, ttl: int | None = 600, alive: bool = False) -> str:
    key = KEYS.results(session)
    await client.rpush(key, *[result(i) for i in range(n)])
    if ttl:
        await client.expire(key, ttl)
    if alive:
        await client.set(KEYS.session(session), "{}", ex=600)
    return key


async def snapshot(client, key: str) -> tuple[list[bytes], int]:
    return await client.lrange(key, 0, -1), await client.ttl(key)


async def test_a_planted_list_of_a_missing_session_is_found_and_deleted_and_a_live_one_never(client):
    dead = await plant(client, "sDead", 3)
    no_ttl = await plant(client, "sNoTtl", 2, ttl=None)
    live = await plant(client, "sLive", 4, alive=True)
    await client.mset({f"unrelated:{i}": i for i in range(2000)})
    before = await snapshot(client, live)

    found = await scan_orphans(client, KEYS, count=100)
    by_key = {o.key: o for o in found}
    assert set(by_key) == {dead, no_ttl}
    assert (by_key[dead].session, by_key[dead].length, by_key[dead].session_alive) == ("sDead", 3, False)
    assert 0 < by_key[dead].ttl <= 600 and by_key[no_ttl].ttl == -1 and by_key[dead].idle >= 0
    assert await count_orphans(client, KEYS) == (2, 5)

    report = await delete_orphans(client, KEYS, found)
    assert (report.lists, report.results, report.skipped) == (2, 5, {})
    assert await client.exists(dead, no_ttl) == 0
    assert await scan_orphans(client, KEYS) == []
    assert (await delete_orphans(client, KEYS, found)).lists == 0  # idempotent
    assert await snapshot(client, live) == before and await client.dbsize() == 2000 + 2


async def test_cleanup_rechecks_the_session_so_a_revived_one_is_left_alone(client):
    key = await plant(client, "sBack", 2)
    [orphan] = await scan_orphans(client, KEYS)
    await client.set(KEYS.session("sBack"), "{}", ex=60)  # its producer came back meanwhile
    before = await snapshot(client, key)
    store = DeadLetterStore(KEYS, 100, 3600)
    for report in (await delete_orphans(client, KEYS, [orphan]), await adopt_orphans(client, KEYS, store, [orphan])):
        assert report.lists == 0 and "alive" in report.skipped[key]
    assert await snapshot(client, key) == before and await store.count(client) == 0


async def test_a_live_session_without_ttl_is_listed_but_never_touched(client):
    key = await plant(client, "sLiveNoTtl", 2, ttl=None, alive=True)
    [orphan] = await scan_orphans(client, KEYS)
    assert orphan.session_alive and orphan.ttl == -1
    assert "alive" in (await delete_orphans(client, KEYS, [orphan])).skipped[key]
    assert await client.llen(key) == 2


async def test_adopt_moves_results_into_dead_letters_exactly_and_is_idempotent(client):
    key = await plant(client, "sDead", 250)
    await client.rpush(key, b"not a result")
    pushed = {Result.from_json(r).job_id: json.loads(r) for r in (await client.lrange(key, 0, -1))[:-1]}
    store = DeadLetterStore(KEYS, 1000, 3600)
    found = await scan_orphans(client, KEYS)
    report = await adopt_orphans(client, KEYS, store, found)
    assert (report.lists, report.results, report.skipped) == (1, 251, {})
    assert await client.exists(key) == 0
    page = await store.page(client, limit=300, reason=DeadReason.ORPHANED_RESULT)
    assert len(page.entries) == 251 and page.total == 251
    kept = {e.id: e for e in page.entries}
    assert all(kept[f"result-{job_id}"].result == data for job_id, data in pushed.items())
    assert kept["result-sDead-job-7"].result["value"]["big"] == 2**70
    assert kept["result-sDead-job-7"].session == "sDead" and not kept["result-sDead-job-7"].retryable
    assert sum(e.raw == "not a result" for e in page.entries) == 1
    again = await adopt_orphans(client, KEYS, store, found)
    assert (again.lists, again.results) == (0, 0) and await store.count(client) == 251


async def test_adopt_respects_the_dead_letter_bound(client):
    await plant(client, "sDead", 30)
    store = DeadLetterStore(KEYS, 10, 3600)
    await adopt_orphans(client, KEYS, store, await scan_orphans(client, KEYS))
    assert await store.count(client) == 10 and (await store.stats(client))["dropped_count"] == 20


async def test_progress_reports_and_cancel_stops_early(client):
    await client.mset({f"unrelated:{i}": i for i in range(3000)})
    for i in range(20):
        await plant(client, f"sDead{i}", 1)
    steps = []
    found = await scan_orphans(client, KEYS, count=100, progress=lambda done, total: steps.append((done, total)))
    assert len(found) == 20 and len(steps) > 5
    assert steps[-1] == (3020, 3020) and all(d <= t for d, t in steps)
    cancel = asyncio.Event()
    calls = []

    def stop_after_two(done, total):
        calls.append(done)
        if len(calls) == 2:
            cancel.set()

    partial = await scan_orphans(client, KEYS, count=100, progress=stop_after_two, cancel=cancel)
    assert len(calls) == 2 and len(partial) < 20


async def test_scanning_changes_nothing(client):
    await plant(client, "sDead", 2)
    await plant(client, "sLive", 2, alive=True)
    keys_before = sorted([k async for k in client.scan_iter("*")])
    values = {k: await client.lrange(k, 0, -1) for k in keys_before if b"results" in k}
    await scan_orphans(client, KEYS, count=1)
    assert sorted([k async for k in client.scan_iter("*")]) == keys_before
    assert {k: await client.lrange(k, 0, -1) for k in values} == values


async def test_producers_and_workers_busy_meanwhile_lose_nothing(redis_server, fast_settings, events, client):
    await plant(client, "sDead", 5)
    store = DeadLetterStore.for_settings(fast_settings)
    worker = Worker(fast_settings, redis_server.url, events, default_registry(), concurrency=2)
    task = asyncio.create_task(worker.run())
    try:
        async with Producer(fast_settings, redis_server.url, events) as producer:
            jobs = [await producer.submit("echo", i) for i in range(30)]
            for _ in range(5):
                found = await scan_orphans(client, KEYS, count=10)
                assert producer.result_key not in {o.key for o in found}
                await adopt_orphans(client, KEYS, store, found)
                await asyncio.sleep(0.05)
            outcomes = await asyncio.wait_for(producer.wait_all(), 15)
    finally:
        worker.request_stop()
        await asyncio.wait_for(task, 10)
    assert sorted(o.job_id for o in outcomes if o.ok) == sorted(j.id for j in jobs)
    assert await store.count(client) == 5


async def test_idle_time_is_the_lists_own_not_reset_by_the_scan(redis_server):
    import asyncio

    from engine.connection import make_client
    from engine.keys import Keys
    from engine.orphans import scan_orphans

    from .console_support import runtime_for

    keys = Keys("seawall", "default")
    client = redis_server.client()
    written = Result(job_id="j", outcome=Outcome.OK, finished_at=__import__("time").time() - 90)
    client.rpush(keys.results("sGone"), written.to_json())
    await asyncio.sleep(0.1)
    rt = runtime_for(redis_server.url)
    aclient = make_client(rt.url, rt.settings)
    try:
        first = await scan_orphans(aclient, keys)
        second = await scan_orphans(aclient, keys)
    finally:
        await aclient.aclose()
    assert 89 <= first[0].idle <= 92 and 89 <= second[0].idle <= 92, (first, second)
