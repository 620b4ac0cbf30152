"""The circuit breaker: its state machine, and against a real server going away."""

from __future__ import annotations

import asyncio
import time

import pytest

from engine.breaker import BreakerOpenError, BreakerState, CircuitBreaker
from engine.errors import RedisUnavailableError, SubmitError
from engine.producer import Producer


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_state_machine_with_a_fixed_clock():
    clock = Clock()
    changes = []
    b = CircuitBreaker(3, 10, clock)
    b.subscribe(lambda snap, prev: changes.append((prev, snap.state)))
    for _ in range(2):
        b.record_failure(ConnectionError("down"))
    assert b.state is BreakerState.CLOSED and b.allow()
    b.record_failure(ConnectionError("down"))
    assert b.state is BreakerState.OPEN and b.trips == 1
    assert not b.allow()
    assert b.snapshot().retry_in == pytest.approx(10)
    with pytest.raises(BreakerOpenError, match="OPEN after 3 consecutive errors"):
        b.check()
    clock.now += 10
    assert b.allow() and b.state is BreakerState.HALF_OPEN
    assert not b.allow(), "only one probe while half-open"
    b.record_failure("still down")
    assert b.state is BreakerState.OPEN and b.trips == 2
    clock.now += 10
    assert b.allow()
    b.record_success()
    assert b.state is BreakerState.CLOSED and b.errors == 0
    assert changes == [
        (BreakerState.CLOSED, BreakerState.OPEN),
        (BreakerState.OPEN, BreakerState.HALF_OPEN),
        (BreakerState.HALF_OPEN, BreakerState.OPEN),
        (BreakerState.OPEN, BreakerState.HALF_OPEN),
        (BreakerState.HALF_OPEN, BreakerState.CLOSED),
    ]


def test_success_resets_the_consecutive_count():
    b = CircuitBreaker(2, 1, Clock())
    b.record_failure("x")
    b.record_success()
    b.record_failure("x")
    assert b.state is BreakerState.CLOSED


async def test_breaker_opens_on_a_stopped_server_and_closes_when_it_returns(redis_server, fast_settings, events):
    producer = Producer(fast_settings, redis_server.url, events)
    await producer.start()
    try:
        redis_server.stop()
        started = time.monotonic()
        with pytest.raises(SubmitError) as err:
            await producer.submit("echo", 1)
        assert time.monotonic() - started < 5
        assert "\n" not in str(err.value)
        assert producer.link.breaker.state is BreakerState.OPEN
        assert producer.link.breaker.errors >= fast_settings.queue_circuit_breaker_threshold
        assert "breaker_opened" in events.names()
        with pytest.raises(SubmitError, match="breaker is OPEN"):
            await producer.submit("echo", 1)  # fails fast, no hang
        redis_server.start()
        deadline = time.monotonic() + 10
        while producer.link.breaker.state is not BreakerState.CLOSED and time.monotonic() < deadline:
            await producer.collect(block=0.1)
        assert producer.link.breaker.state is BreakerState.CLOSED
        assert "breaker_closed" in events.names()
        job = await producer.submit("echo", 2)
        assert job.id
    finally:
        await producer.close()


async def test_collect_never_raises_while_redis_is_down(redis_server, fast_settings, events):
    async with Producer(fast_settings, redis_server.url, events) as producer:
        await producer.submit("echo", 1, wait_seconds=1.5)
        redis_server.stop()
        outcomes = await asyncio.wait_for(producer.wait_all(), 10)
        assert [o.state.value for o in outcomes] == ["timed_out"]
        redis_server.start()


async def test_unreachable_server_is_a_clear_error(fast_settings, events):
    from .redisproc import free_port

    producer = Producer(fast_settings, f"redis://127.0.0.1:{free_port()}/0", events)
    with pytest.raises(RedisUnavailableError, match="unreachable"):
        await producer.start()
