"""The worker: claims jobs reliably, runs registered handlers, records outcomes.

A claim moves jobs from the queue into this worker's processing list (BLMOVE,
or a Lua batch of LMOVEs when several slots are free), so a claimed job is
always in Redis. It leaves that list only in the same atomic step that records
its outcome: results of finished jobs are acknowledged in batches by one Lua
call; failures go through a MULTI that also dead-letters them.

If an outcome cannot be recorded (retries, then one fresh fallback pool), it
goes to the local durable spool and the job stays claimed; the spool is
replayed when Redis answers again. Meanwhile the heartbeat keeps the job from
being reaped, and the reaper that every worker runs recovers the jobs of
workers whose heartbeat is gone.
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
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Awaitable, Callable

from pydantic import ValidationError
from redis.exceptions import RedisError

from .backoff import full_jitter
from .breaker import BreakerOpenError
from .config import Settings
from .connection import (
    OUTAGE_ERRORS, ClientFactory, RedisLink, close_quietly, describe_error, is_refusal, make_client,
)
from .deadletters import TRACEBACK_MAX_CHARS, DeadLetter, DeadLetterStore, DeadReason
from .errors import SeawallError
from .events import EventLog
from .handlers import JobContext, Registry, UnknownHandlerError
from .keys import WORKER_REGISTRY_SECONDS, Keys, session_ttl
from .lane import run_script
from .metrics import Metrics
from .models import Job, Outcome, Result, describe_validation_error, job_id_of, sanitize_name
from .reaper import DEFAULT_MAX_LOST, Reaper
from .spool import Spool, SpooledOutcome, orphaned_spools, spool_dir

#: Errors that end one Redis call but never a worker loop.
CALL_ERRORS = (*OUTAGE_ERRORS, BreakerOpenError, RedisError)

# Both scripts also return the queue's length: the hint that decides between a
# batch claim (a backlog) and a blocking BLMOVE (an idle queue, one job at a time).

# KEYS: queue, processing list; ARGV: how many. Returns {queue length left, jobs...}
_CLAIM = """
local out = {0}
for i = 1, tonumber(ARGV[1]) do
  local v = redis.call('LMOVE', KEYS[1], KEYS[2], 'RIGHT', 'LEFT')
  if not v then break end
  out[#out + 1] = v
end
out[1] = redis.call('LLEN', KEYS[1])
return out
"""

# KEYS: processing list, queue, then one result list per outcome; ARGV: ttl, then
# (result, raw job) pairs. Returns the queue's length.
_ACK = """
local ttl = tonumber(ARGV[1])
local seen = {}
for i = 3, #KEYS do
  local j = 2 * (i - 2)
  redis.call('RPUSH', KEYS[i], ARGV[j])
  if not seen[KEYS[i]] then
    redis.call('EXPIRE', KEYS[i], ttl)
    seen[KEYS[i]] = true
  end
  redis.call('LREM', KEYS[1], 1, ARGV[j + 1])
end
return redis.call('LLEN', KEYS[2])
"""

# KEYS: processing list, queue; ARGV: raw job. Moves it back only if it is still held.
_REQUEUE_HELD = """
if redis.call('LREM', KEYS[1], 1, ARGV[1]) == 1 then
  redis.call('RPUSH', KEYS[2], ARGV[1])
  return 1
end
return 0
"""

_DEREGISTER = """
redis.call('DEL', KEYS[1])
if redis.call('LLEN', KEYS[2]) == 0 then redis.call('ZREM', KEYS[3], ARGV[1]) end
"""


def new_worker_id() -> str:
    return sanitize_name(f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}", 80)


class JobTimeoutError(TimeoutError):
    pass


class WorkerRefusedError(SeawallError):
    """Redis refused the worker's credentials (password, ACL, TLS): the operator must fix them."""


@dataclass
class Record:
    """One outcome waiting to be written: a result, and for failures a dead letter too."""

    job_id: str | None
    raw: bytes
    result_key: str | None = None
    result: bytes | None = None
    dead_letter: DeadLetter | None = None
    session: str = ""
    done: asyncio.Future[bool] = field(default_factory=lambda: asyncio.get_running_loop().create_future())

    @property
    def simple(self) -> bool:
        """A plain success: batched through the ack script."""
        return self.dead_letter is None and self.result is not None


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
        spool_path: Path | None = None,
        max_lost: int = DEFAULT_MAX_LOST,
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
        self.reaper = Reaper(self.keys, self.dlq, events, holder=self.processing, max_lost=max_lost,
                             reaper_id=self.worker_id, result_ttl=settings.worker_result_ttl_seconds)
        self.spool = Spool(spool_path or spool_dir(settings.namespace, settings.queue), self.worker_id)
        self._claim_script = self.link.client.register_script(_CLAIM)
        self._ack_script = self.link.client.register_script(_ACK)
        self._requeue_held_script = self.link.client.register_script(_REQUEUE_HELD)
        self.metrics = Metrics("worker")
        self.spooled = 0  # outcomes waiting in the spool now
        self._session_missing: dict[str, float] = {}
        self.inflight: dict[bytes, str] = {}  # raw -> job id (or "?")
        self._tasks: set[asyncio.Task[None]] = set()
        self._pending: list[Record] = []
        self._pending_ready = asyncio.Event()
        self._backlog = 0  # the queue's length when Redis last told us (claim and ack replies)
        self._unknown_held: Counter[bytes] = Counter()  # held in our processing list, run by no task
        self._slot_free = asyncio.Event()
        self._slot_free.set()
        self._stopping = asyncio.Event()
        self.started_at = time.time()

    # -- lifecycle ---------------------------------------------------------

    def request_stop(self) -> None:
        """Stop claiming; running jobs get ``shutdown_grace_seconds`` to finish."""
        if not self._stopping.is_set():
            self.events.emit("worker_stopping", worker=self.worker_id, running=len(self.inflight))
            self._stopping.set()
            self._slot_free.set()  # wake the claim loop so it sees the stop

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    @property
    def jobs_done(self) -> int:
        return self.metrics.counters["succeeded"]

    @property
    def jobs_failed(self) -> int:
        return self.metrics.counters["failed"]

    @property
    def fallback_pools(self) -> int:
        return self.metrics.counters["fallback_pools"]

    @property
    def current(self) -> list[str]:
        return sorted(self.inflight.values())

    async def run(self) -> int:
        """Serve until stopped (or, with ``burst``, until the queue is empty). Returns 0."""
        try:
            self.spool.open()
        except OSError as exc:
            raise SeawallError(f"worker cannot open its spool {self.spool.path}: {exc.strerror}") from None
        self.events.emit("worker_started", worker=self.worker_id, queue=self.settings.queue,
                         concurrency=self.concurrency, burst=self.burst, handlers=self.registry.names())
        background = [asyncio.create_task(self._ack_loop(), name="seawall-ack")]
        try:
            if await self._register():
                background += [asyncio.create_task(loop()) for loop in (self._heartbeat_loop, self._reap_loop,
                                                                         self._replay_loop)]
                await self._claim_loop()
            await self._drain()
        finally:
            for task in background:
                task.cancel()
            await asyncio.gather(*background, return_exceptions=True)
            await self._flush_pending()
            await self._release_leftovers()
            await self._drop_heartbeat()
            await self.link.close()
            self.spool.close()
            self.events.emit("worker_stopped", worker=self.worker_id, done=self.jobs_done, failed=self.jobs_failed,
                             spooled=self.spooled)
        return 0

    async def _register(self) -> bool:
        """The first heartbeat (and registry entry) comes before the first claim,
        so a worker killed right after claiming is always findable by the reaper."""
        errors = 0
        while not self.stopping:
            try:
                await self._beat()
                return True
            except CALL_ERRORS as exc:
                if is_refusal(exc):  # wrong password, ACL or CA: waiting will not fix it
                    raise WorkerRefusedError(f"Redis refused worker {self.worker_id}: {describe_error(exc)}") from None
                errors += 1
                if errors == 1:
                    self.events.emit("worker_register_failed", level="warning", worker=self.worker_id,
                                     error=describe_error(exc))
                await self._nap(min(self.settings.backoff_cap_seconds, full_jitter(
                    errors, self.settings.backoff_base_seconds, self.settings.backoff_cap_seconds, self.rng) + 0.05))
        return False

    async def _drain(self) -> None:
        """Let running jobs finish within the grace period; requeue the rest."""
        if not self._tasks:
            return
        _, late = await asyncio.wait(self._tasks, timeout=self.settings.shutdown_grace_seconds)
        for task in late:
            task.cancel()
        await asyncio.gather(*late, return_exceptions=True)

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.heartbeat_seconds)
            try:
                await self._beat()
            except CALL_ERRORS:
                pass  # counted by the link; the lease covers a short outage

    def heartbeat_value(self) -> dict[str, Any]:
        snap = self.link.breaker.snapshot()
        return {
            "pid": os.getpid(), "host": socket.gethostname(), "started": self.started_at, "at": time.time(),
            "state": "stopping" if self.stopping else ("busy" if self.inflight else "idle"),
            "current": self.current, "done": self.jobs_done, "failed": self.jobs_failed,
            "breaker": snap.state.value, "trips": snap.trips, "spooled": self.spooled,
            "metrics": self.metrics.snapshot(self.link, spooled=self.spooled, inflight=len(self.inflight)),
        }

    async def _beat(self) -> None:
        """Heartbeat key (TTL = lease) and the registry entry, in one round trip."""
        value = json.dumps(self.heartbeat_value())
        now = time.time()

        async def beat(c: Any) -> Any:
            pipe = c.pipeline(transaction=False)
            pipe.set(self.keys.worker(self.worker_id), value, px=int(self.settings.lease_seconds * 1000))
            pipe.zadd(self.keys.workers, {self.worker_id: now})
            pipe.zremrangebyscore(self.keys.workers, "-inf", now - WORKER_REGISTRY_SECONDS)
            return await pipe.execute()

        await self.link.call(beat)

    async def _drop_heartbeat(self) -> None:
        """A clean exit leaves nothing; the registry entry stays while jobs are still held."""
        try:
            keys = (self.keys.worker(self.worker_id), self.processing, self.keys.workers)
            await asyncio.wait_for(self.link.client.eval(_DEREGISTER, 3, *keys, self.worker_id), 2)
        except (*CALL_ERRORS, asyncio.TimeoutError):
            pass  # it expires by itself

    async def _release_leftovers(self) -> None:
        """Put back at the head of the queue what we still hold, except jobs whose
        outcome is spooled (those wait for the spool replay, or for the reaper)."""
        spooled = {item.raw_bytes for item in self.spool.items()}
        try:
            async with asyncio.timeout(5):
                held = await self.link.client.lrange(self.processing, 0, -1)
                for raw in reversed(held):  # oldest first, so the queue keeps its order
                    if raw in spooled:
                        continue
                    await self.link.client.pipeline(transaction=True).lrem(self.processing, 1, raw).rpush(
                        self.keys.queue_list, raw).execute()
                    self.events.emit("job_requeued", worker=self.worker_id, reason="shutdown", job_id=job_id_of(raw))
        except (*CALL_ERRORS, TimeoutError) as exc:
            self.events.emit("requeue_failed", level="warning", worker=self.worker_id, error=describe_error(exc),
                             note="the jobs stay in the processing list for the reaper")

    async def _nap(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)
        except asyncio.TimeoutError:
            pass

    # -- background duties ---------------------------------------------------

    async def _reap_loop(self) -> None:
        interval = max(0.5, self.settings.lease_seconds / 2)
        while True:
            await asyncio.sleep(interval)
            if not self.link.breaker.available():
                continue
            try:
                report = await self.link.call(lambda c: self.reaper.run_once(c))
                self.metrics.inc("reaped_requeued", report.requeued)
                self.metrics.inc("reaped_poison", report.poisoned)
                await self._requeue_lost_claims()
            except CALL_ERRORS:
                pass

    async def _requeue_lost_claims(self) -> None:
        """Put back jobs we hold but never got: Redis moved them, the claim's reply was lost.

        A connection that drops after Redis ran the BLMOVE (or a claim ended by CLIENT
        UNBLOCK while a pause held it) leaves a job in our processing list that no task
        runs, and no reaper takes it while our heartbeat lives. One seen so in two
        checks in a row (a claim's reply takes milliseconds, checks are seconds apart)
        goes back to the queue, atomically.
        """
        held = Counter(await self.link.call(lambda c: c.lrange(self.processing, 0, -1)))
        known = Counter(self.inflight) + Counter(item.raw_bytes for item in self.spool.items())
        unknown = held - known
        lost = unknown & self._unknown_held
        self._unknown_held = unknown - lost
        for raw, count in lost.items():
            for _ in range(count):
                moved = await self.link.call(
                    lambda c: run_script(c, self._requeue_held_script, [self.processing, self.keys.queue_list], [raw]))
                if not moved:
                    break
                self.metrics.inc("claims_recovered")
                self.events.emit("job_requeued", level="warning", worker=self.worker_id, job_id=job_id_of(raw),
                                 reason="claim_reply_lost")

    async def _replay_loop(self) -> None:
        await self._adopt_orphaned_spools()
        while True:
            await asyncio.sleep(self.settings.heartbeat_seconds)
            if self.link.breaker.available():
                await self.replay_spool()

    async def _adopt_orphaned_spools(self) -> None:
        """Spools left by workers that died on this host: replay them as ours."""
        for other in orphaned_spools(self.spool.directory, self.spool.path):
            items = other.items()
            for item in items:
                self.spool.append(item)
            other.rewrite([])
            other.close()
            if items:
                self.events.emit("spool_adopted", worker=self.worker_id, items=len(items), file=str(other.path))
        await self.replay_spool()

    async def replay_spool(self) -> int:
        """Deliver spooled outcomes; returns how many are still waiting."""
        items = self.spool.items()
        if not items:
            return 0
        remaining = []
        for item in items:
            try:
                if not await self.link.call(lambda c: self._replay_one(c, item)):
                    remaining.append(item)
            except CALL_ERRORS:
                remaining.append(item)
        self.spool.rewrite(remaining)
        self.spooled = len(remaining)
        self.events.emit("spool_replayed", worker=self.worker_id, delivered=len(items) - len(remaining),
                         waiting=len(remaining))
        return len(remaining)

    async def _replay_one(self, client: Any, item: SpooledOutcome) -> bool:
        """Deliver one spooled outcome; False: not yet (its session may still come back)."""
        alive = await client.exists(self.keys.session(item.session)) if item.session else 0
        if not alive:
            # After an outage a live producer needs a heartbeat to re-announce its
            # session: only a session missing for longer than that is gone.
            first = self._session_missing.setdefault(item.job_id, time.monotonic())
            if time.monotonic() - first < 2 * session_ttl(self.settings.heartbeat_seconds):
                return False
        self._session_missing.pop(item.job_id, None)
        pipe = client.pipeline(transaction=True)
        if alive:
            pipe.rpush(item.result_key, item.result).expire(item.result_key, self.settings.worker_result_ttl_seconds)
            if item.dead_letter:
                self.dlq.add_to(pipe, DeadLetter.model_validate_json(item.dead_letter))
        else:
            entry = self._undelivered_entry(item)
            self.dlq.add_to(pipe, entry)
        pipe.lrem(item.processing, 1, item.raw_bytes)
        await pipe.execute()
        return True

    def _undelivered_entry(self, item: SpooledOutcome) -> DeadLetter:
        """The producer is gone: keep the computed result in dead letters, never drop it."""
        base = DeadLetter.model_validate_json(item.dead_letter) if item.dead_letter else None
        try:
            job = Job.from_json(item.raw_bytes).model_dump(mode="json")
        except ValueError:
            job = base.job if base else None
        return DeadLetter(id=item.job_id, reason=DeadReason.RESULT_PUSH_FAILED, job=job,
                          result=json.loads(item.result), session=item.session, worker=self.worker_id,
                          error_type=base.error_type if base else "", error="result could not be delivered: "
                          "the producer's session ended while Redis was unreachable",
                          attempts=base.attempts if base else 1)

    # -- claiming ----------------------------------------------------------

    async def _claim_loop(self) -> None:
        errors = 0
        while not self.stopping:
            await self._slot_free.wait()
            if self.stopping:
                break
            if not self.link.breaker.available():
                await self._nap(min(self.settings.blpop_timeout_seconds, max(0.05, self.link.breaker.snapshot().retry_in)))
                continue
            free = self.concurrency - len(self.inflight)
            try:
                raws = await self._claim(free)
                errors = 0
            except CALL_ERRORS as exc:
                errors += 1
                if errors == 1:
                    self.events.emit("claim_failed", level="warning", worker=self.worker_id, error=describe_error(exc))
                await self._nap(full_jitter(errors, self.settings.backoff_base_seconds, self.settings.backoff_cap_seconds,
                                            self.rng) + 0.01)
                continue
            if not raws:
                if self.burst:
                    break
                continue
            for raw in raws:
                self._start(raw)

    async def _claim(self, free: int) -> list[bytes]:
        """A batch (one script) when there is a backlog, else one blocking BLMOVE:
        an idle worker waits in Redis instead of asking twice per job."""
        if self.burst or (free > 1 and self._backlog > 0):
            left, *raws = await self.link.call(
                lambda c: run_script(c, self._claim_script, [self.keys.queue_list, self.processing], [free]),
                lane="claim")
            self._backlog = int(left)
            if raws or self.burst:
                return raws
        raw = await self.link.call(
            lambda c: c.execute_command("BLMOVE", self.keys.queue_list, self.processing, "RIGHT", "LEFT",
                                        self.settings.blpop_timeout_seconds),
            blocking=True, lane="claim")
        return [raw] if raw is not None else []

    def _start(self, raw: bytes) -> None:
        self.inflight[raw] = "?"
        if len(self.inflight) >= self.concurrency:
            self._slot_free.clear()
        task = asyncio.create_task(self._handle(raw))
        self._tasks.add(task)
        task.add_done_callback(lambda t: self._finished(t, raw))

    def _finished(self, task: asyncio.Task[None], raw: bytes) -> None:
        self._tasks.discard(task)
        self.inflight.pop(raw, None)
        self._slot_free.set()
        if not task.cancelled() and task.exception() is not None:
            self.events.emit("job_crashed", level="error", worker=self.worker_id, error=describe_error(task.exception()))

    # -- running -----------------------------------------------------------

    async def _handle(self, raw: bytes) -> None:
        job, problem = self._parse(raw)
        if job is None:
            await self._submit(self._raw_dead_letter(raw, problem))
            return
        self.inflight[raw] = job.id
        if job.handler not in self.registry:
            err = UnknownHandlerError(f"no handler registered as {job.handler!r} on worker {self.worker_id}")
            await self._submit(self._failure(raw, job, err, DeadReason.INVALID_PAYLOAD, job.attempt, job.failures, ""))
            return
        try:
            record = await self._run_attempts(raw, job)
        except asyncio.CancelledError:
            await self._requeue(raw, job)
            raise
        await self._submit(record)  # cancelled from here on, the outcome is still written

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

    async def _run_attempts(self, raw: bytes, job: Job) -> Record:
        attempt, failures = job.attempt, job.failures
        started = time.time()
        inline = self.registry.is_inline(job.handler)
        while True:
            ctx = JobContext(job.id, attempt, failures, self.worker_id)
            try:
                run = self.registry.run(job.handler, job.payload, ctx)
                # an inline handler cannot be interrupted anyway: spare it the timeout task
                value = await (run if inline else asyncio.wait_for(run, timeout=job.timeout))
                data = Result(job_id=job.id, outcome=Outcome.OK, value=value, attempts=attempt, worker=self.worker_id,
                              handler=job.handler, enqueued_at=job.enqueued_at, started_at=started).to_json()
            except asyncio.TimeoutError:
                error: BaseException = JobTimeoutError(f"handler {job.handler!r} ran past the job timeout of {job.timeout}s")
                tb = ""
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - a handler's error is data, not a crash
                error, tb = self._handler_error(exc)
            else:
                self.metrics.inc("succeeded")
                self.metrics.job_latency.add(max(0.0, time.time() - job.enqueued_at))
                self.metrics.results.mark()
                return Record(job.id, raw, job.result_key, data, session=job.session)
            failures += 1
            permanent = self.registry.is_permanent(job.handler, error) or isinstance(error, _NotSerializable)
            if attempt >= job.max_attempts or permanent:
                return self._failure(raw, job, error, DeadReason.HANDLER_FAILED, attempt, failures, tb)
            delay = full_jitter(attempt - 1, self.settings.backoff_base_seconds, self.settings.backoff_cap_seconds, self.rng)
            self.events.emit("job_retry", job_id=job.id, attempt=attempt, error=describe_error(error), delay=round(delay, 3))
            attempt += 1
            await asyncio.sleep(delay)

    @staticmethod
    def _handler_error(exc: BaseException) -> tuple[BaseException, str]:
        if isinstance(exc, (TypeError, ValueError)) and "serializ" in str(exc).lower():
            exc = _NotSerializable(f"result is not JSON-serializable: {str(exc).splitlines()[0]}")
        tb = "".join(traceback.format_exception(exc))[-TRACEBACK_MAX_CHARS:]
        return exc, tb

    def _failure(self, raw: bytes, job: Job, error: BaseException, reason: DeadReason, attempts: int, failures: int,
                 tb: str) -> Record:
        """Tell the producer (a failure Result) and keep the job (a dead letter)."""
        self.metrics.inc("failed")
        self.metrics.inc("dead_lettered")
        now = time.time()
        message = str(error)[:2000]
        result = Result(job_id=job.id, outcome=Outcome.ERROR, error_type=type(error).__name__, error=message,
                        attempts=attempts, worker=self.worker_id, handler=job.handler, enqueued_at=job.enqueued_at,
                        finished_at=now)
        kept = job.model_copy(update={"attempt": attempts, "failures": failures})
        entry = DeadLetter(id=job.id, reason=reason, job=kept.model_dump(mode="json"), error_type=type(error).__name__,
                           error=message, traceback=tb, attempts=attempts, first_failed_at=job.enqueued_at or now,
                           last_failed_at=now, worker=self.worker_id, session=job.session)
        self.events.emit("job_dead_lettered", level="warning", job_id=job.id, reason=reason.value,
                         error=describe_error(error), attempts=attempts)
        return Record(job.id, raw, job.result_key, result.to_json(), entry, session=job.session)

    def _raw_dead_letter(self, raw: bytes, error: str) -> Record:
        """Garbage on the queue: keep it (bounded) in dead letters and move on."""
        entry = DeadLetter.for_raw(raw, DeadReason.INVALID_PAYLOAD, error, worker=self.worker_id)
        self.metrics.inc("failed")
        self.metrics.inc("dead_lettered")
        self.events.emit("job_dead_lettered", level="warning", job_id=entry.id, reason=entry.reason.value, error=error,
                         bytes=len(raw))
        return Record(None, raw, dead_letter=entry)

    async def _requeue(self, raw: bytes, job: Job | None) -> None:
        """Shutdown cut a job short: back to the head of the queue, atomically."""
        try:
            async with asyncio.timeout(3):
                await self.link.client.pipeline(transaction=True).lrem(self.processing, 1, raw).rpush(
                    self.keys.queue_list, raw).execute()
            self.events.emit("job_requeued", worker=self.worker_id, job_id=job.id if job else None, reason="shutdown")
        except (*CALL_ERRORS, TimeoutError) as exc:
            self.events.emit("requeue_failed", level="warning", job_id=job.id if job else None,
                             error=describe_error(exc))

    # -- recording outcomes ------------------------------------------------

    async def _submit(self, record: Record) -> bool:
        """Hand an outcome to the writer and wait until it is recorded (or spooled)."""
        self._pending.append(record)
        self._pending_ready.set()
        return await asyncio.shield(record.done)

    async def _ack_loop(self) -> None:
        while True:
            await self._pending_ready.wait()
            self._pending_ready.clear()
            await self._flush_pending()

    async def _flush_pending(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            simple = [r for r in batch if r.simple]
            if simple:
                ok = await self._record(simple, lambda c, rs=simple: self._ack(c, rs), lane="ack")
                self._settle(simple, ok)
            for record in (r for r in batch if not r.simple):
                ok = await self._record([record], lambda c, r=record: self._write_failure(c, r))  # a MULTI: the pool
                self._settle([record], ok)

    def _settle(self, records: list[Record], ok: bool) -> None:
        if not ok:
            for r in records:
                self._spool(r)
        for r in records:
            if not r.done.done():
                r.done.set_result(ok)

    async def _ack(self, client: Any, records: list[Record]) -> None:
        keys = [self.processing, self.keys.queue_list, *(r.result_key for r in records)]
        args: list[Any] = [self.settings.worker_result_ttl_seconds]
        for r in records:
            args += [r.result, r.raw]
        self._backlog = int(await run_script(client, self._ack_script, keys, args))

    def _write_failure(self, client: Any, record: Record) -> Awaitable[Any]:
        pipe = client.pipeline(transaction=True)
        if record.result_key and record.result is not None:
            pipe.rpush(record.result_key, record.result).expire(record.result_key,
                                                                self.settings.worker_result_ttl_seconds)
        if record.dead_letter is not None:
            self.dlq.add_to(pipe, record.dead_letter)
        pipe.lrem(self.processing, 1, record.raw)
        return pipe.execute()

    def _spool(self, record: Record) -> None:
        """Redis is out of reach: the outcome goes to disk, the job stays claimed."""
        if record.result is None or record.result_key is None:
            return  # garbage with nowhere to report: it stays in the processing list for the reaper
        item = SpooledOutcome(
            job_id=record.job_id or "", session=record.session, result_key=record.result_key,
            result=record.result.decode(), processing=self.processing, raw=record.raw.decode("latin-1"),
            dead_letter=record.dead_letter.model_dump_json() if record.dead_letter else None,
        )
        self.spool.append(item)
        self.spooled += 1
        self.metrics.inc("spooled")
        self.events.emit("result_spooled", level="warning", job_id=record.job_id, worker=self.worker_id,
                         spool=str(self.spool.path))

    async def _record(self, records: list[Record], write: Callable[[Any], Awaitable[Any]],
                      lane: str | None = None) -> bool:
        """Run ``write`` (on ``lane``): retries with backoff, then one fresh fallback pool.

        Returns False (never raises) if the outcome could not be recorded.
        """
        job_ids = [r.job_id for r in records]
        last: BaseException | None = None
        tries = self.settings.enqueue_max_retries + 1
        for attempt in range(tries):
            try:
                await self.link.call(write, lane=lane)
                return True
            except (*OUTAGE_ERRORS, BreakerOpenError) as exc:
                last = exc
            except Exception as exc:  # noqa: BLE001 - e.g. a script error: not worth retrying
                last = exc
                break
            if attempt + 1 < tries:
                await asyncio.sleep(full_jitter(attempt, self.settings.backoff_base_seconds,
                                                self.settings.backoff_cap_seconds, self.rng))
        if await self._record_via_fallback(job_ids, write):
            return True
        self.metrics.inc("push_failed", len(records))
        for job_id in job_ids:
            self.events.emit("result_push_failed", level="error", job_id=job_id, worker=self.worker_id,
                             error=describe_error(last) if last else "", note="outcome spooled; job kept claimed")
        return False

    async def _record_via_fallback(self, job_ids: list[str | None], write: Callable[[Any], Awaitable[Any]]) -> bool:
        """One try through a freshly created pool (the primary may hold dead sockets)."""
        client = None
        try:
            client = self.client_factory(self.url, self.settings)
            self.metrics.inc("fallback_pools")
            self.events.emit("redis_pool_created", role="worker", pool="fallback", job_ids=job_ids[:5])
            async with asyncio.timeout(self.settings.redis_socket_timeout_seconds + 1):
                await write(client)
            self.link.breaker.record_success()
            return True
        except Exception as exc:  # noqa: BLE001 - creation or push failure: the caller reports it
            self.events.emit("fallback_push_failed", level="warning", job_ids=job_ids[:5], error=describe_error(exc))
            return False
        finally:
            await close_quietly(client)


class _NotSerializable(TypeError):
    """A handler returned something JSON cannot hold: retrying will not change that."""

