"""The worker: claims jobs reliably, runs registered handlers, records outcomes.

A claim is one BLMOVE from the queue into this worker's processing list, so a
claimed job is always in Redis. It leaves that list only in the same MULTI that
records its outcome (result pushed, or dead-lettered), never before.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import socket
import time
import traceback
import uuid
from typing import Any, Callable

from pydantic import ValidationError

from .backoff import full_jitter
from .breaker import BreakerOpenError
from .config import Settings
from .connection import OUTAGE_ERRORS, ClientFactory, RedisLink, close_quietly, describe_error, make_client
from .deadletters import TRACEBACK_MAX_CHARS, DeadLetter, DeadLetterStore, DeadReason
from .events import EventLog
from .handlers import JobContext, Registry, UnknownHandlerError
from .keys import WORKER_REGISTRY_SECONDS, Keys
from .models import Job, Outcome, Result, describe_validation_error, sanitize_name

_DEREGISTER = """
redis.call('DEL', KEYS[1])
if redis.call('LLEN', KEYS[2]) == 0 then redis.call('ZREM', KEYS[3], ARGV[1]) end
"""


def new_worker_id() -> str:
    return sanitize_name(f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}", 80)


class JobTimeoutError(TimeoutError):
    pass


class Worker:
    """Run with ``await Worker(...).run()``; ``request_stop()`` ends it gracefully."""

    def __init__(
        self,
        settings: Settings,
        url: str,
        events: EventLog,
        registry: Registry,
        *,
        worker_id: str | None = None,
        concurrency: int = 1,
        burst: bool = False,
        client_factory: ClientFactory = make_client,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        self.url = url
        self.events = events
        self.registry = registry
        self.worker_id = worker_id or new_worker_id()
        self.concurrency = max(1, concurrency)
        self.burst = burst
        self.client_factory = client_factory
        self.clock = clock
        self.rng = rng or random.Random()
        self.keys = Keys(settings.namespace, settings.queue)
        self.processing = self.keys.processing(self.worker_id)
        self.dlq = DeadLetterStore(self.keys, settings.dlq_max_entries, settings.dlq_ttl_seconds)
        self.link = RedisLink(url, settings, events, client_factory=client_factory, clock=clock, role="worker")
        self.jobs_done = 0
        self.jobs_failed = 0
        self.push_failures = 0
        self.fallback_pools = 0
        self.current: dict[int, str] = {}
        self._stopping = asyncio.Event()
        self.started_at = time.time()

    # -- lifecycle ---------------------------------------------------------

    def request_stop(self) -> None:
        """Stop claiming; running jobs get ``shutdown_grace_seconds`` to finish."""
        if not self._stopping.is_set():
            self.events.emit("worker_stopping", worker=self.worker_id, running=len(self.current))
            self._stopping.set()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    async def run(self) -> int:
        """Serve until stopped (or, with ``burst``, until the queue is empty). Returns 0."""
        self.events.emit("worker_started", worker=self.worker_id, queue=self.settings.queue,
                         concurrency=self.concurrency, burst=self.burst, handlers=self.registry.names())
        heartbeat = asyncio.create_task(self._heartbeat_loop())
        slots = [asyncio.create_task(self._slot(i), name=f"seawall-slot-{i}") for i in range(self.concurrency)]
        stop_wait = asyncio.create_task(self._stopping.wait())
        try:
            await asyncio.wait([stop_wait, *slots], return_when=asyncio.FIRST_COMPLETED)
            if not all(s.done() for s in slots):
                if stop_wait.done():
                    _, late = await asyncio.wait(slots, timeout=self.settings.shutdown_grace_seconds + self.settings.blpop_timeout_seconds)
                    for task in late:
                        task.cancel()
                    await asyncio.gather(*late, return_exceptions=True)
                await asyncio.gather(*slots, return_exceptions=True)
        finally:
            stop_wait.cancel()
            for task in slots:
                task.cancel()
            await asyncio.gather(*slots, return_exceptions=True)
            heartbeat.cancel()
            await asyncio.gather(heartbeat, return_exceptions=True)
            await self._release_leftovers()
            await self._drop_heartbeat()
            await self.link.close()
            self.events.emit("worker_stopped", worker=self.worker_id, done=self.jobs_done, failed=self.jobs_failed)
        return 0

    async def _heartbeat_loop(self) -> None:
        while True:
            try:
                await self._beat()
            except (*OUTAGE_ERRORS, BreakerOpenError):
                pass
            await asyncio.sleep(self.settings.heartbeat_seconds)

    def heartbeat_value(self) -> dict[str, Any]:
        snap = self.link.breaker.snapshot()
        return {
            "pid": os.getpid(), "host": socket.gethostname(), "started": self.started_at, "at": time.time(),
            "state": "stopping" if self.stopping else ("busy" if self.current else "idle"),
            "current": sorted(self.current.values()), "done": self.jobs_done, "failed": self.jobs_failed,
            "breaker": snap.state.value, "trips": snap.trips,
        }

    async def _beat(self) -> None:
        """Heartbeat key (TTL = lease) and the registry entry, in one round trip."""
        value = json.dumps(self.heartbeat_value())
        now = time.time()
        pipe = self.link.client.pipeline(transaction=False)
        pipe.set(self.keys.worker(self.worker_id), value, px=int(self.settings.lease_seconds * 1000))
        pipe.zadd(self.keys.workers, {self.worker_id: now})
        pipe.zremrangebyscore(self.keys.workers, "-inf", now - WORKER_REGISTRY_SECONDS)
        await self.link.call(lambda c: pipe.execute())

    async def _drop_heartbeat(self) -> None:
        """A clean exit leaves nothing; the registry entry stays while jobs are still held."""
        try:
            keys = (self.keys.worker(self.worker_id), self.processing, self.keys.workers)
            await asyncio.wait_for(self.link.client.eval(_DEREGISTER, 3, *keys, self.worker_id), 2)
        except (*OUTAGE_ERRORS, asyncio.TimeoutError, Exception):  # noqa: BLE001 - it expires anyway
            pass

    async def _release_leftovers(self) -> None:
        """Put anything still in our processing list back at the head of the queue."""
        try:
            async with asyncio.timeout(5):
                while await self.link.client.lmove(self.processing, self.keys.queue_list, "LEFT", "RIGHT"):
                    self.events.emit("job_requeued", worker=self.worker_id, reason="shutdown")
        except (*OUTAGE_ERRORS, TimeoutError, Exception) as exc:  # noqa: BLE001
            self.events.emit("requeue_failed", level="warning", worker=self.worker_id, error=describe_error(exc),
                             note="the jobs stay in the processing list for the reaper")

    # -- claiming ----------------------------------------------------------

    async def _slot(self, index: int) -> None:
        errors = 0
        while not self.stopping:
            if not self.link.breaker.available():
                await self._nap(min(self.settings.blpop_timeout_seconds, max(0.05, self.link.breaker.snapshot().retry_in)))
                continue
            try:
                raw = await self._claim()
                errors = 0
            except (*OUTAGE_ERRORS, BreakerOpenError) as exc:
                errors += 1
                delay = full_jitter(errors, self.settings.backoff_base_seconds, self.settings.backoff_cap_seconds, self.rng)
                if errors == 1:
                    self.events.emit("claim_failed", level="warning", worker=self.worker_id, error=describe_error(exc))
                await self._nap(delay)
                continue
            if raw is None:
                if self.burst:
                    return
                continue
            self.current[index] = "?"
            try:
                await self._handle(raw, index)
            finally:
                self.current.pop(index, None)

    async def _claim(self) -> bytes | None:
        if self.burst:
            return await self.link.call(lambda c: c.lmove(self.keys.queue_list, self.processing, "RIGHT", "LEFT"))
        return await self.link.call(
            lambda c: c.blmove(self.keys.queue_list, self.processing, self.settings.blpop_timeout_seconds, "RIGHT", "LEFT")
        )

    async def _nap(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)
        except asyncio.TimeoutError:
            pass

    # -- running -----------------------------------------------------------

    async def _handle(self, raw: bytes, index: int) -> None:
        job, problem = self._parse(raw)
        if job is None:
            return await self._dead_letter_raw(raw, problem)
        self.current[index] = job.id
        if job.handler not in self.registry:
            err = UnknownHandlerError(f"no handler registered as {job.handler!r} on worker {self.worker_id}")
            return await self._finish_failed(raw, job, err, DeadReason.INVALID_PAYLOAD, job.attempt, job.failures, "")
        try:
            await self._run_attempts(raw, job)
        except asyncio.CancelledError:
            await self._requeue(raw, job)
            raise

    def _parse(self, raw: bytes) -> tuple[Job | None, str]:
        """The job, or None and why the bytes are not one."""
        if len(raw) > self.settings.max_payload_bytes:
            return None, f"job is {len(raw):,} bytes, over max_payload_bytes = {self.settings.max_payload_bytes:,}"
        try:
            return Job.from_json(raw), ""
        except ValidationError as exc:
            return None, describe_validation_error(exc)
        except ValueError as exc:
            return None, (str(exc).splitlines() or ["not a job"])[0]

    async def _run_attempts(self, raw: bytes, job: Job) -> None:
        attempt, failures = job.attempt, job.failures
        started = time.time()
        while True:
            ctx = JobContext(job.id, attempt, failures, self.worker_id)
            try:
                value = await asyncio.wait_for(self.registry.run(job.handler, job.payload, ctx), timeout=job.timeout)
                result = Result(job_id=job.id, outcome=Outcome.OK, value=value, attempts=attempt, worker=self.worker_id,
                                handler=job.handler, enqueued_at=job.enqueued_at, started_at=started)
                data = result.to_json()
            except asyncio.TimeoutError:
                error: BaseException = JobTimeoutError(f"handler {job.handler!r} ran past the job timeout of {job.timeout}s")
                tb = ""
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - a handler's error is data, not a crash
                error, tb = self._handler_error(exc)
            else:
                self.jobs_done += 1
                await self._record(job, lambda p: self._push_ops(p, job, data).lrem(self.processing, 1, raw))
                return
            failures += 1
            if attempt >= job.max_attempts or self.registry.is_permanent(job.handler, error):
                return await self._finish_failed(raw, job, error, DeadReason.HANDLER_FAILED, attempt, failures, tb)
            delay = full_jitter(attempt - 1, self.settings.backoff_base_seconds, self.settings.backoff_cap_seconds, self.rng)
            self.events.emit("job_retry", job_id=job.id, attempt=attempt, error=describe_error(error), delay=round(delay, 3))
            attempt += 1
            await asyncio.sleep(delay)

    @staticmethod
    def _handler_error(exc: BaseException) -> tuple[BaseException, str]:
        if isinstance(exc, (TypeError, ValueError)) and "serializ" in str(exc).lower():
            exc = TypeError(f"result is not JSON-serializable: {str(exc).splitlines()[0]}")
        tb = "".join(traceback.format_exception(exc))[-TRACEBACK_MAX_CHARS:]
        return exc, tb

    def _push_ops(self, pipe: Any, job: Job, data: bytes) -> Any:
        ttl = self.settings.worker_result_ttl_seconds
        return pipe.rpush(job.result_key, data).expire(job.result_key, ttl)

    async def _finish_failed(
        self, raw: bytes, job: Job, error: BaseException, reason: DeadReason, attempts: int, failures: int, tb: str
    ) -> None:
        """Tell the producer (a failure Result) and keep the job (a dead letter), in one MULTI."""
        self.jobs_failed += 1
        now = time.time()
        result = Result(job_id=job.id, outcome=Outcome.ERROR, error_type=type(error).__name__, error=str(error)[:2000],
                        attempts=attempts, worker=self.worker_id, handler=job.handler, enqueued_at=job.enqueued_at,
                        finished_at=now)
        kept = job.model_copy(update={"attempt": attempts, "failures": failures})
        entry = DeadLetter(id=job.id, reason=reason, job=kept.model_dump(mode="json"), error_type=type(error).__name__,
                           error=str(error)[:2000], traceback=tb, attempts=attempts, first_failed_at=now,
                           last_failed_at=now, worker=self.worker_id, session=job.session)
        self.events.emit("job_dead_lettered", level="warning", job_id=job.id, reason=reason.value,
                         error=describe_error(error), attempts=attempts)

        def ops(pipe: Any) -> Any:
            self._push_ops(pipe, job, result.to_json())
            self.dlq.add_to(pipe, entry, now)
            return pipe.lrem(self.processing, 1, raw)

        await self._record(job, ops)

    async def _dead_letter_raw(self, raw: bytes, error: str) -> None:
        """Garbage on the queue: keep it (bounded) in dead letters and move on."""
        entry = DeadLetter.for_raw(raw, DeadReason.INVALID_PAYLOAD, error, worker=self.worker_id)
        self.jobs_failed += 1
        self.events.emit("job_dead_lettered", level="warning", job_id=entry.id, reason=entry.reason.value, error=error,
                         bytes=len(raw))
        now = time.time()

        def ops(pipe: Any) -> Any:
            self.dlq.add_to(pipe, entry, now)
            return pipe.lrem(self.processing, 1, raw)

        await self._record(None, ops)

    async def _requeue(self, raw: bytes, job: Job | None) -> None:
        """Shutdown cut a job short: back to the head of the queue, atomically."""
        try:
            async with asyncio.timeout(3):
                await self.link.client.pipeline(transaction=True).lrem(self.processing, 1, raw).rpush(
                    self.keys.queue_list, raw).execute()
            self.events.emit("job_requeued", worker=self.worker_id, job_id=job.id if job else None, reason="shutdown")
        except (*OUTAGE_ERRORS, TimeoutError, Exception) as exc:  # noqa: BLE001 - the reaper covers it
            self.events.emit("requeue_failed", level="warning", job_id=job.id if job else None, error=describe_error(exc))

    # -- recording outcomes ------------------------------------------------

    async def _record(self, job: Job | None, ops: Callable[[Any], Any]) -> bool:
        """Run ``ops`` in one MULTI: retries with backoff, then one fresh fallback pool.

        Returns False (never raises) if the outcome could not be recorded; the
        job then stays in the processing list, so it is not lost.
        """
        job_id = job.id if job else None
        last: BaseException | None = None
        tries = self.settings.enqueue_max_retries + 1
        for attempt in range(tries):
            try:
                await self.link.call(lambda c: ops(c.pipeline(transaction=True)).execute())
                return True
            except (*OUTAGE_ERRORS, BreakerOpenError) as exc:
                last = exc
            except Exception as exc:  # noqa: BLE001 - e.g. a script error: not worth retrying
                last = exc
                break
            if attempt + 1 < tries:
                await asyncio.sleep(full_jitter(attempt, self.settings.backoff_base_seconds,
                                                self.settings.backoff_cap_seconds, self.rng))
        if await self._record_via_fallback(job_id, ops):
            return True
        self.push_failures += 1
        self.events.emit("result_push_failed", level="error", job_id=job_id, worker=self.worker_id,
                         error=describe_error(last) if last else "", note="job kept in the processing list")
        return False

    async def _record_via_fallback(self, job_id: str | None, ops: Callable[[Any], Any]) -> bool:
        """One try through a freshly created pool (the primary may hold dead sockets)."""
        client = None
        try:
            client = self.client_factory(self.url, self.settings)
            self.fallback_pools += 1
            self.events.emit("redis_pool_created", role="worker", pool="fallback", job_id=job_id)
            async with asyncio.timeout(self.settings.redis_socket_timeout_seconds + 1):
                await ops(client.pipeline(transaction=True)).execute()
            self.link.breaker.record_success()
            return True
        except Exception as exc:  # noqa: BLE001 - creation or push failure: the caller reports it
            self.events.emit("fallback_push_failed", level="warning", job_id=job_id, error=describe_error(exc))
            return False
        finally:
            await close_quietly(client)
