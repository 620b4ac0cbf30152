"""Redis clients built one way, and every call counted by the breaker and metrics.

redis-py's own retries are off: retrying is Seawall's job (backoff with jitter,
the breaker), so an outage is seen and reported instead of hidden for seconds.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, deque
from typing import Any, Awaitable, Callable, TypeVar

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import (
    AuthenticationError, AuthorizationError, InvalidResponse, OutOfMemoryError, RedisError, ResponseError,
)
from redis.exceptions import TimeoutError as RedisTimeoutError

from .breaker import BreakerSnapshot, BreakerState, CircuitBreaker
from .config import Settings
from .events import EventLog
from .lane import Lane
from .redact import redact_url

T = TypeVar("T")
ClientFactory = Callable[[str, Settings], aioredis.Redis]

#: Errors that say Redis is unhealthy (counted by the breaker). A ResponseError
#: such as WRONGTYPE is a bug or bad data, not an outage.
OUTAGE_ERRORS: tuple[type[BaseException], ...] = (RedisConnectionError, RedisTimeoutError, OSError)


def connection_options(settings: Settings) -> dict[str, Any]:
    """What every Seawall connection has: a connect timeout, no redis-py retries, no health-check PINGs, a name."""
    return {
        "socket_connect_timeout": settings.redis_connect_timeout_seconds,
        "retry": Retry(NoBackoff(), 0),
        "health_check_interval": 0,
        "client_name": "seawall",
    }


def make_client(url: str, settings: Settings, *, blocking_margin: float = 2.0) -> aioredis.Redis:
    """A client whose socket timeout outlasts the blocking-call timeout."""
    socket_timeout = max(settings.redis_socket_timeout_seconds, settings.blpop_timeout_seconds + blocking_margin)
    return aioredis.Redis.from_url(url, socket_timeout=socket_timeout, **connection_options(settings))


def error_kind(exc: BaseException) -> str:
    if isinstance(exc, (RedisTimeoutError, TimeoutError)):
        return "timeout"
    if isinstance(exc, (RedisConnectionError, OSError)):
        return "connection"
    if isinstance(exc, ResponseError):
        return "response"
    return "other"


def is_refusal(exc: BaseException) -> bool:
    """Redis (or TLS) said no to our credentials: retrying will not help, the operator must act."""
    if isinstance(exc, (AuthenticationError, AuthorizationError)):
        return True
    text = str(exc)
    return any(s in text for s in ("WRONGPASS", "NOAUTH", "NOPERM", "certificate verify failed"))


def failure_message(exc: BaseException, where: str = "") -> str:
    """One line for a person about a failed Redis call: what kind of failure, then the error."""
    at = f" at {where}" if where else ""
    text = str(exc)
    if "certificate verify failed" in text:
        head = f"Redis's TLS certificate was not accepted{at} (check ssl_ca_certs in the URL)"
    elif "HELLO must be called" in text or "NOAUTH" in text:
        head = f"Redis{at} needs a password: put it in the URL, redis://:PASSWORD@host:port/0"
    elif is_refusal(exc):
        head = f"Redis refused the connection{at}"
    elif isinstance(exc, OutOfMemoryError):
        head = f"Redis is out of memory{at} (used memory is over maxmemory: free some, or raise maxmemory)"
    elif isinstance(exc, InvalidResponse):
        head = f"that is not a Redis server{at} (it answered something else)"
    elif isinstance(exc, OUTAGE_ERRORS):
        head = f"Redis is unreachable{at}"
    else:
        head = f"Redis answered with an error{at}"
    return f"{head}: {describe_error(exc)}"


def describe_error(exc: BaseException) -> str:
    """One line for a person: the error's class and first line."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class RedisLink:
    """A client plus the breaker, error counters and a latency window.

    Producer and worker each own one. ``call`` is the only way they talk to
    Redis, so every error is counted and every state change is an event.
    """

    def __init__(
        self,
        url: str,
        settings: Settings,
        events: EventLog,
        *,
        client_factory: ClientFactory = make_client,
        clock: Callable[[], float] = time.monotonic,
        role: str = "producer",
    ) -> None:
        self.url = url
        self.settings = settings
        self.events = events
        self.client_factory = client_factory
        self.role = role
        self.breaker = CircuitBreaker(settings.queue_circuit_breaker_threshold, settings.breaker_reset_seconds, clock)
        self.breaker.subscribe(self._on_breaker_change)
        self.errors: Counter[str] = Counter()
        self.latencies: deque[float] = deque(maxlen=512)
        self.client = client_factory(url, settings)
        self._lanes: dict[str, Lane] = {}
        events.emit("redis_pool_created", role=role, url=redact_url(url), pool="primary")

    def lane(self, name: str) -> Lane:
        """The dedicated connection of one hot loop (claim, ack, submit, collect), made on first use."""
        lane = self._lanes.get(name)
        if lane is None:
            options = connection_options(self.settings) | {"client_name": f"seawall-{self.role}-{name}"}
            lane = self._lanes[name] = Lane(self.url, **options)
        return lane

    async def call(self, fn: Callable[[Any], Awaitable[T]], *, blocking: bool = False, lane: str | None = None) -> T:
        """Run ``fn(client)`` if the breaker allows; count the outcome.

        ``blocking``: a BLPOP/BLMOVE whose duration is mostly waiting, kept out of the latency window.
        ``lane``: ``fn`` gets that loop's Lane instead of the pooled client, and the call a
        deadline: the socket timeout, plus the blocking timeout for a blocking call.
        """
        self.breaker.check()
        started = time.perf_counter()
        try:
            result = await (fn(self.client) if lane is None else self._on_lane(fn, lane, blocking))
        except OUTAGE_ERRORS as exc:
            self.record_error(exc)
            raise_if_cancelling()
            raise
        except RedisError as exc:
            # Redis answered: it is alive, the command was wrong.
            self.errors[error_kind(exc)] += 1
            self.breaker.record_success()
            raise_if_cancelling()
            raise
        except BaseException:
            self.breaker.release_probe()
            raise
        if not blocking:
            self.latencies.append(time.perf_counter() - started)
        self.breaker.record_success()
        return result

    async def _on_lane(self, fn: Callable[[Lane], Awaitable[T]], lane: str, blocking: bool) -> T:
        s = self.settings
        deadline = s.redis_socket_timeout_seconds + (s.blpop_timeout_seconds if blocking else 0.0)
        try:
            async with asyncio.timeout(deadline):
                return await fn(self.lane(lane))
        except TimeoutError:
            raise RedisTimeoutError(f"no reply from Redis within {deadline:g}s") from None

    def record_error(self, exc: BaseException) -> None:
        self.errors[error_kind(exc)] += 1
        self.breaker.record_failure(describe_error(exc))

    async def ping(self) -> float:
        """Round-trip seconds of one PING."""
        started = time.perf_counter()
        await self.call(lambda c: c.ping())
        return time.perf_counter() - started

    def _on_breaker_change(self, snap: BreakerSnapshot, previous: BreakerState) -> None:
        name = {
            BreakerState.OPEN: "breaker_opened",
            BreakerState.HALF_OPEN: "breaker_half_open",
            BreakerState.CLOSED: "breaker_closed",
        }[snap.state]
        self.events.emit(
            name,
            level="warning" if snap.state is BreakerState.OPEN else "info",
            role=self.role,
            previous=previous.value,
            errors=snap.errors,
            threshold=snap.threshold,
            trips=snap.trips,
            last_error=snap.last_error,
        )

    async def close(self) -> None:
        for lane in self._lanes.values():
            await close_quietly(lane)
        self._lanes.clear()
        await close_quietly(self.client)


def raise_if_cancelling() -> None:
    """redis-py can turn a cancellation mid-read into a ConnectionError; a loop
    that retries on ConnectionError would then never end. Put the cancel back."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError()


async def close_quietly(client: Any) -> None:
    """Close a client and its pool; never raise (it may be half-dead)."""
    if client is None:
        return
    try:
        await client.aclose()
    except Exception:  # noqa: BLE001 - closing a broken pool must not mask the real error
        pass
