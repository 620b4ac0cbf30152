"""The producer: submits jobs and collects their results from its own result list.

Results come back by BLMOVE from ``results:<session>`` (into ``taken:<session>``,
see ``_fetch``) with a short timeout, in a loop, so a dead Redis or a lost
worker can never make a caller wait forever:
every pending job has a deadline, and passing it is an outcome of its own.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import socket
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Iterable

from pydantic import ValidationError
from redis.exceptions import OutOfMemoryError, RedisError

from .backoff import full_jitter
from .breaker import BreakerOpenError
from .config import Settings
from .connection import OUTAGE_ERRORS, ClientFactory, RedisLink, describe_error, failure_message, make_client
from .errors import PayloadError, RedisUnavailableError, SubmitError
from .deadletters import DeadLetter, DeadLetterStore, DeadReason
from .events import EventLog
from .metrics import Metrics
from .keys import Keys, session_ttl
from .lane import run_script
from .redact import redact_url
from .models import Job, JobState, Result, make_job_id, new_session_id

DRAIN_BATCH = 256
MAX_REMEMBERED = 10_000  # timed-out jobs whose late result we still recognise

# KEYS: results list, taken list; ARGV: how many. Moves up to that many results into
# taken (kept until the next fetch) and returns them. It runs right after a fetch
# write whose BLMOVE filled taken and whose EXPIRE gave it its TTL.
_DRAIN = """
local v = redis.call('LRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1)
if #v > 0 then
  redis.call('LTRIM', KEYS[1], #v, -1)
  redis.call('RPUSH', KEYS[2], unpack(v))
end
return v
"""


@dataclass
class Pending:
    job: Job
    submitted: float
    deadline: float


@dataclass(frozen=True, slots=True)
class JobOutcome:
    """What happened to one submitted job, as its caller sees it (once)."""

    job: Job
    state: JobState
    result: Result | None
    latency: float

    @property
    def job_id(self) -> str:
        return self.job.id

    @property
    def ok(self) -> bool:
        return self.state is JobState.DONE


async def _settle_acquire(acquire: asyncio.Future[bool]) -> bool:
    """End a lock acquisition we may no longer want; True if it holds the lock."""
    if not acquire.done():
        acquire.cancel()  # Lock.acquire passes a lock granted meanwhile on to the next waiter
        await asyncio.wait([acquire])
    return not acquire.cancelled()


class Producer:
    """Submit jobs, collect outcomes. Use as ``async with Producer(...) as p``."""

    def __init__(
        self,
        settings: Settings,
        url: str,
        events: EventLog,
        *,
        session_id: str | None = None,
        client_factory: ClientFactory = make_client,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        self.url = url
        self.events = events
        self.session_id = session_id or new_session_id()
        self.keys = Keys(settings.namespace, settings.queue)
        self.result_key = self.keys.results(self.session_id)
        self.taken_key = self.keys.taken(self.session_id)
        self.clock = clock
        self.rng = rng or random.Random()
        self.link = RedisLink(url, settings, events, client_factory=client_factory, clock=clock, role="producer")
        self.pending: dict[str, Pending] = {}
        self.metrics = Metrics("producer")
        self.server_version = ""
        self.run_id = ""
        self.dlq = DeadLetterStore(self.keys, settings.dlq_max_entries, settings.dlq_ttl_seconds)
        # jobs we reported as timed out: a late result still finds its job (bounded)
        self._timed_out: OrderedDict[str, Job] = OrderedDict()
        self._unrecorded: list[DeadLetter] = []  # result_timeout entries waiting for Redis
        self._heartbeat: asyncio.Task[None] | None = None
        self._collect_lock = asyncio.Lock()
        self._drain_script = self.link.client.register_script(_DRAIN)
        self._taken_dirty = False  # taken holds results already handed out: the next fetch deletes them
        self._taken_unsure = False  # a fetch failed: taken may hold results not handed out yet
        self._oom_reported = False
        self._waiters: dict[str, asyncio.Future[JobOutcome]] = {}  # jobs a run() call awaits
        self._ready: list[JobOutcome] = []  # outcomes for collect(), gathered while a run() collected
        self._closed = False

    @property
    def delivered(self) -> int:
        return self.metrics.counters["succeeded"] + self.metrics.counters["failed"]

    @property
    def duplicates(self) -> int:
        return self.metrics.counters["duplicates"]

    @property
    def resubmitted(self) -> int:
        return self.metrics.counters["resubmitted"]

    @property
    def enqueue_retries(self) -> int:
        return self.metrics.counters["enqueue_retries"]

    # -- lifecycle ---------------------------------------------------------

    async def __aenter__(self) -> "Producer":
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self) -> None:
        """PING, then announce the session; a clear error if Redis is unreachable."""
        try:
            info = await self.link.call(lambda c: c.info("server"))
        except Exception as exc:  # noqa: BLE001 - every failure here is one line for the user
            await self.link.close()
            raise RedisUnavailableError(failure_message(exc, redact_url(self.url))) from None
        self.server_version = str(info.get("redis_version", ""))
        self.run_id = str(info.get("run_id", ""))
        try:
            await self._beat()
        except RedisError as exc:  # answered, but refused: out of memory, an ACL, a read-only replica
            await self.link.close()
            raise RedisUnavailableError(failure_message(exc, redact_url(self.url))) from None
        self._heartbeat = asyncio.create_task(self._heartbeat_loop(), name=f"seawall-heartbeat-{self.session_id}")

    async def close(self) -> None:
        """Delete this session's result list and session key; close the pool."""
        if self._closed:
            return
        self._closed = True
        if self._heartbeat:
            self._heartbeat.cancel()
            await asyncio.wait([self._heartbeat], timeout=self.settings.redis_socket_timeout_seconds + 1)
        try:
            async with asyncio.timeout(self.settings.redis_socket_timeout_seconds + 1):
                await self._record_timeouts()  # a short-lived producer leaves its timeouts recorded too
        except (*OUTAGE_ERRORS, BreakerOpenError, RedisError, TimeoutError) as exc:
            self.events.emit("timeouts_unrecorded", level="warning", count=len(self._unrecorded),
                             error=describe_error(exc))
        try:
            async with asyncio.timeout(self.settings.redis_socket_timeout_seconds + 1):
                left, _ = await self.link.client.pipeline(transaction=True).llen(self.result_key).delete(
                    self.result_key, self.taken_key, self.keys.session(self.session_id)
                ).execute()
            self.events.emit(
                "result_queue_deleted", key=self.result_key, session=self.session_id,
                unread=int(left), pending=len(self.pending),
            )
        except (*OUTAGE_ERRORS, TimeoutError, Exception) as exc:  # noqa: BLE001 - shutdown must finish
            self.events.emit(
                "result_queue_delete_failed", level="warning", key=self.result_key,
                error=describe_error(exc), note="the list expires by its TTL",
            )
        await self.link.close()

    async def _beat(self) -> None:
        """Session key, result-list TTL and a server check, in one round trip.

        A new ``run_id`` with our session key gone means Redis restarted without
        its data: every job we still await is submitted again (same ids; a
        duplicate result is dropped on delivery), so nothing is silently forgotten.
        """
        value = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "at": time.time(),
                            "metrics": self.metrics.snapshot(self.link, pending=len(self.pending))})
        session_key = self.keys.session(self.session_id)

        async def beat(c: Any) -> list[Any]:
            pipe = c.pipeline(transaction=False)
            pipe.exists(session_key)
            pipe.set(session_key, value, ex=session_ttl(self.settings.heartbeat_seconds))
            pipe.expire(self.result_key, self.settings.result_queue_ttl_seconds)
            pipe.info("server")
            return await pipe.execute()

        had_session, _, _, info = await self.link.call(beat)
        run_id = str(info.get("run_id", ""))
        if self.run_id and run_id != self.run_id:
            self.events.emit("redis_restarted", level="warning", data_lost=not had_session, pending=len(self.pending))
            if not had_session:
                await self._resubmit_pending()
        self.run_id = run_id
        await self._record_timeouts()

    async def _heartbeat_loop(self) -> None:
        while not self._closed:
            await asyncio.sleep(self.settings.heartbeat_seconds)
            try:
                await self._beat()
            except (*OUTAGE_ERRORS, BreakerOpenError, RedisError, SubmitError):
                pass  # counted by the link; the breaker shows it

    async def _resubmit_pending(self) -> None:
        jobs = [p.job for p in self.pending.values()]
        for start in range(0, len(jobs), 500):
            batch = jobs[start:start + 500]
            await self._enqueue([self.encode(j) for j in batch], f"{len(batch)} resubmitted jobs")
        self.metrics.inc("resubmitted", len(jobs))
        self.events.emit("jobs_resubmitted", level="warning", count=len(jobs), reason="redis data lost")

    async def _record_timeouts(self) -> None:
        """Timed-out jobs become ``result_timeout`` dead letters once Redis is there."""
        while self._unrecorded:
            entry = self._unrecorded[0]
            await self.link.call(lambda c: self.dlq.add(c, entry))
            self._unrecorded.pop(0)
            self.metrics.inc("dead_lettered")

    # -- submitting --------------------------------------------------------

    def build_job(
        self,
        handler: str,
        payload: Any,
        name: str | None = None,
        *,
        max_attempts: int | None = None,
        timeout: float | None = None,
    ) -> Job:
        job = Job(
            id=make_job_id(self.session_id, name or handler),
            session=self.session_id,
            result_key=self.result_key,
            handler=handler,
            payload=payload,
            max_attempts=max_attempts or self.settings.max_attempts,
            timeout=timeout or self.settings.job_timeout_seconds,
        )
        return job

    def encode(self, job: Job) -> bytes:
        """The job's wire form; refused if over ``max_payload_bytes``."""
        try:
            data = job.to_json()
        except (ValidationError, ValueError, TypeError) as exc:
            raise PayloadError(f"payload of job {job.id} is not JSON-serializable: {exc}") from None
        if len(data) > self.settings.max_payload_bytes:
            raise PayloadError(
                f"job {job.id} is {len(data):,} bytes, over max_payload_bytes = {self.settings.max_payload_bytes:,}:"
                " send a reference (a path or URL) instead, or raise max_payload_bytes"
            )
        return data

    async def submit(
        self,
        handler: str,
        payload: Any = None,
        name: str | None = None,
        *,
        wait_seconds: float | None = None,
        max_attempts: int | None = None,
        timeout: float | None = None,
    ) -> Job:
        """Enqueue one job (retries with backoff and full jitter); track its deadline."""
        job = self.build_job(handler, payload, name, max_attempts=max_attempts, timeout=timeout)
        data = self.encode(job)
        await self._enqueue([data], job.id)
        self._track([job], wait_seconds)
        return job

    async def submit_many(
        self, handler: str, payloads: Iterable[Any], *, names: Iterable[str] | None = None,
        wait_seconds: float | None = None,
    ) -> list[Job]:
        """Many jobs in one LPUSH: one round trip, same guarantees."""
        payload_list = list(payloads)
        name_list = list(names) if names is not None else [handler] * len(payload_list)
        jobs = [self.build_job(handler, p, n) for p, n in zip(payload_list, name_list, strict=True)]
        if not jobs:
            return []
        await self._enqueue([self.encode(j) for j in jobs], f"{len(jobs)} jobs")
        self._track(jobs, wait_seconds)
        return jobs

    async def run(
        self,
        handler: str,
        payload: Any = None,
        name: str | None = None,
        *,
        wait_seconds: float | None = None,
        max_attempts: int | None = None,
        timeout: float | None = None,
    ) -> JobOutcome:
        """Submit one job and wait for its outcome: done, failed, or timed out at its deadline.

        With nobody else collecting, the LPUSH and a BLMOVE for the result go out in
        one write, so the BLMOVE already waits in Redis when the result is pushed.
        Outcomes of other jobs seen meanwhile go to their own callers, or to ``collect``.
        """
        job = self.build_job(handler, payload, name, max_attempts=max_attempts, timeout=timeout)
        data = self.encode(job)
        waiter: asyncio.Future[JobOutcome] = asyncio.get_running_loop().create_future()
        self._waiters[job.id] = waiter
        try:
            if self._collect_lock.locked():
                await self._enqueue([data], job.id)
                self._track([job], wait_seconds)
            else:
                async with self._collect_lock:
                    raws = await self._enqueue_and_fetch(data, job.id)
                    self._track([job], wait_seconds)
                    self._deliver(raws)
            while not waiter.done():
                await self._collect_for(waiter)
            return waiter.result()
        finally:
            self._waiters.pop(job.id, None)

    async def _collect_for(self, waiter: asyncio.Future[JobOutcome]) -> None:
        """One collect round for a run() call, or, while another task collects (and
        routes our outcome to us), wait until ours arrives or the collector is free."""
        acquire = asyncio.ensure_future(self._collect_lock.acquire())
        try:
            await asyncio.wait([waiter, acquire], return_when=asyncio.FIRST_COMPLETED)
        except BaseException:
            if await _settle_acquire(acquire):
                self._collect_lock.release()
            raise
        if not await _settle_acquire(acquire):
            return
        try:
            if not waiter.done():
                self._deliver(await self._fetch(self.settings.blpop_timeout_seconds))
        finally:
            self._collect_lock.release()

    def expect(self, jobs: Iterable[Job], wait_seconds: float | None = None) -> None:
        """Await results of jobs submitted elsewhere on our behalf (a dead-letter retry)."""
        self._track(list(jobs), wait_seconds)

    def _track(self, jobs: list[Job], wait_seconds: float | None) -> None:
        now = self.clock()
        wait = wait_seconds or self.settings.job_timeout_seconds
        for job in jobs:
            self.pending[job.id] = Pending(job, now, now + wait)
        self.metrics.inc("submitted", len(jobs))

    async def _enqueue(self, items: list[bytes], what: str) -> None:
        await self._with_retries(
            lambda: self.link.call(lambda c: c.execute_command("LPUSH", self.keys.queue_list, *items), lane="submit"),
            what)

    async def _enqueue_and_fetch(self, item: bytes, what: str) -> list[bytes]:
        """LPUSH one job and wait for results in the same write (the caller holds the collect lock).

        If that write fails, the job goes through the plain enqueue and its retries
        (its LPUSH may have landed already: at least once, like any retried enqueue).
        """
        replayed = await self._replay_taken()
        if self._taken_unsure:  # taken could not be re-read: just submit
            await self._enqueue([item], what)
            return []
        try:
            pushed, *fetched = await self.link.call(
                lambda c: c.pipeline([("LPUSH", self.keys.queue_list, item), *self._fetch_commands(
                    self.settings.blpop_timeout_seconds)], raise_on_error=False), blocking=True, lane="collect")
        except BreakerOpenError as exc:
            raise SubmitError(f"not submitted ({what}): {exc}") from None
        except OUTAGE_ERRORS as exc:
            self._taken_unsure = True
            self.metrics.inc("enqueue_retries")
            self.events.emit("enqueue_retry", level="warning", what=what, attempt=1, delay=0, error=describe_error(exc))
            await self._enqueue([item], what)
            return replayed
        if isinstance(pushed, RedisError):  # Redis refused the job (out of memory, say)
            raise SubmitError(f"not submitted ({what}): {failure_message(pushed)}")
        try:
            hit = self._took(fetched)
        except RedisError as exc:  # the job is in; this round just got nothing
            self._taken_unsure = True
            self.events.emit("collect_failed", level="debug", error=describe_error(exc))
            return replayed
        return [*replayed, hit] if hit is not None else replayed

    async def _with_retries(self, push: Callable[[], Awaitable[Any]], what: str) -> Any:
        """Run ``push`` until Redis answers it, with backoff and full jitter; its reply."""
        last: BaseException | None = None
        tries = self.settings.enqueue_max_retries + 1
        for attempt in range(tries):
            try:
                return await push()
            except BreakerOpenError as exc:
                raise SubmitError(f"not submitted ({what}): {exc}") from None
            except OUTAGE_ERRORS as exc:
                last = exc
            except RedisError as exc:  # answered and refused (out of memory, say): retrying will not help
                raise SubmitError(f"not submitted ({what}): {failure_message(exc)}") from None
            if attempt + 1 < tries:
                self.metrics.inc("enqueue_retries")
                delay = full_jitter(attempt, self.settings.backoff_base_seconds, self.settings.backoff_cap_seconds, self.rng)
                self.events.emit("enqueue_retry", level="warning", what=what, attempt=attempt + 1,
                                 delay=round(delay, 3), error=describe_error(last))
                await asyncio.sleep(delay)
        raise SubmitError(f"not submitted ({what}) after {tries} attempts: {describe_error(last)}")

    # -- collecting --------------------------------------------------------

    async def collect(self, block: float | None = None) -> list[JobOutcome]:
        """One round: wait up to ``block`` seconds for results; report expired jobs.

        Never raises for a Redis outage: the breaker counts it, and the caller
        just gets the timeouts that came due.
        """
        block = self.settings.blpop_timeout_seconds if block is None else block
        if not self._ready:
            async with self._collect_lock:
                self._deliver(await self._fetch(block))
        outcomes, self._ready = self._ready, []
        return outcomes

    def _deliver(self, raws: list[bytes]) -> None:
        """Match results and expire deadlines: each outcome to the run() call awaiting it, else for collect()."""
        outcomes = [o for o in map(self._match, raws) if o is not None]
        outcomes.extend(self._expire())
        for outcome in outcomes:
            waiter = self._waiters.get(outcome.job_id)
            if waiter is not None and not waiter.done():
                waiter.set_result(outcome)
            else:
                self._ready.append(outcome)

    async def _fetch(self, block: float) -> list[bytes]:
        """Wait up to ``block`` seconds for results; never raises.

        A result is moved, not popped: BLMOVE (and the drain script) put it in
        ``taken:<session>``, which the next fetch's write deletes, once what it
        held has been handed out. If a reply is lost on the way (a connection
        dropped after Redis moved the result), the next fetch reads ``taken``
        again first: a result is never lost between Redis and this process, and
        one seen twice is dropped as a duplicate.
        """
        if not self.link.breaker.available():
            await asyncio.sleep(min(block, max(0.05, self.link.breaker.snapshot().retry_in)))
            return []
        raws = await self._replay_taken()
        if self._taken_unsure:  # taken could not be re-read: nothing is taken until it is
            await asyncio.sleep(min(block, 0.2))
            return []
        try:
            hit = self._took(await self.link.call(
                lambda c: c.pipeline(self._fetch_commands(block), raise_on_error=False), blocking=True, lane="collect"))
            self._oom_reported = False
            if hit is None:
                return raws
            raws.append(hit)
            if len(self.pending) > 1:  # more awaited: drain what else is there, in one script
                raws += await self.link.call(lambda c: run_script(
                    c, self._drain_script, [self.result_key, self.taken_key], [DRAIN_BATCH]), lane="collect")
        except OutOfMemoryError as exc:
            self._taken_unsure = True
            return await self._pop_while_full(exc, block, raws)
        except (*OUTAGE_ERRORS, BreakerOpenError, RedisError) as exc:
            self._taken_unsure = True
            return await self._fetch_failed(exc, block, raws)
        return raws

    async def _pop_while_full(self, exc: OutOfMemoryError, block: float, raws: list[bytes]) -> list[bytes]:
        """Redis is full (maxmemory, noeviction) and refuses BLMOVE, which may add to a list;
        BLPOP only removes. Reading results is what frees memory, so this round pops."""
        if not self._oom_reported:
            self._oom_reported = True
            self.events.emit("collect_popping", level="warning", error=describe_error(exc),
                             note="Redis is out of memory: results are popped until it is not")
        try:
            hit = await self.link.call(lambda c: c.execute_command("BLPOP", self.result_key, block),
                                       blocking=True, lane="collect")
        except (*OUTAGE_ERRORS, BreakerOpenError, RedisError) as again:
            return await self._fetch_failed(again, block, raws)
        return [*raws, hit[1]] if hit else raws

    async def _fetch_failed(self, exc: BaseException, block: float, raws: list[bytes]) -> list[bytes]:
        """An outage, or a blocked call ended by the server (CLIENT UNBLOCK ... ERROR, CLIENT KILL):
        a short pause, and the next round retries. What was re-read from taken is still returned
        (this round's DEL may have run)."""
        self.events.emit("collect_failed", level="debug", error=describe_error(exc))
        await asyncio.sleep(min(block, 0.2))
        return raws

    def _fetch_commands(self, block: float) -> list[tuple[Any, ...]]:
        """Delete what the last fetch took (handed out by now), then wait for one more result."""
        clear = [("DEL", self.taken_key)] if self._taken_dirty and not self._taken_unsure else []
        return [*clear, ("BLMOVE", self.result_key, self.taken_key, "LEFT", "RIGHT", block),
                ("EXPIRE", self.taken_key, self.settings.result_queue_ttl_seconds)]

    def _took(self, replies: list[Any]) -> bytes | None:
        """The result a fetch write got (or None); its first error reply is raised."""
        for reply in replies:
            if isinstance(reply, RedisError):
                raise reply
        hit = replies[-2]  # BLMOVE's
        self._taken_dirty = hit is not None
        return hit

    async def _replay_taken(self) -> list[bytes]:
        """After a failed fetch: what ``taken`` holds, read (not removed) before anything else."""
        if not self._taken_unsure:
            return []
        try:
            raws = await self.link.call(lambda c: c.execute_command("LRANGE", self.taken_key, 0, -1), lane="collect")
        except (*OUTAGE_ERRORS, BreakerOpenError, RedisError) as exc:
            self.events.emit("collect_failed", level="debug", error=describe_error(exc))
            return []
        self._taken_unsure = False
        self._taken_dirty = True
        if raws:
            self.events.emit("results_reread", count=len(raws), key=self.taken_key)
        return list(raws)

    def _match(self, raw: bytes) -> JobOutcome | None:
        try:
            result = Result.from_json(raw)
        except (ValidationError, ValueError) as exc:
            self.events.emit("result_invalid", level="warning", key=self.result_key, error=str(exc)[:200])
            return None
        pending = self.pending.pop(result.job_id, None)
        if pending is None:
            self._late_or_duplicate(result)
            return None
        state = JobState.DONE if result.ok else JobState.FAILED
        latency = self.clock() - pending.submitted
        self.metrics.inc("succeeded" if result.ok else "failed")
        self.metrics.job_latency.add(latency)
        self.metrics.results.mark()
        return JobOutcome(pending.job, state, result, latency)

    def _late_or_duplicate(self, result: Result) -> None:
        job = self._timed_out.pop(result.job_id, None)
        if job is None:
            self.metrics.inc("duplicates")
            self.events.emit("result_duplicate", level="debug", job_id=result.job_id)
            return
        # Too late for its caller, but computed: keep it with the job's dead letter.
        self._unrecorded.append(self._timeout_entry(job, result))
        self.events.emit("result_late", level="warning", job_id=result.job_id, note="kept in dead letters")

    def _timeout_entry(self, job: Job, result: Result | None = None) -> DeadLetter:
        now = time.time()
        return DeadLetter(id=job.id, reason=DeadReason.RESULT_TIMEOUT, job=job.model_dump(mode="json"),
                          error_type="ResultTimeout", error="no result before the producer's deadline",
                          attempts=result.attempts if result else 0, first_failed_at=now, last_failed_at=now,
                          session=job.session, worker=result.worker if result else "",
                          result=result.model_dump(mode="json") if result else None)

    def _expire(self) -> list[JobOutcome]:
        now = self.clock()
        late = [jid for jid, p in self.pending.items() if p.deadline <= now]
        outcomes = []
        for jid in late:
            p = self.pending.pop(jid)
            self.events.emit("job_timed_out", level="warning", job_id=jid, waited=round(now - p.submitted, 3))
            outcomes.append(JobOutcome(p.job, JobState.TIMED_OUT, None, now - p.submitted))
            self.metrics.inc("timed_out")
            self._timed_out[jid] = p.job
            self._unrecorded.append(self._timeout_entry(p.job))
        while len(self._timed_out) > MAX_REMEMBERED:
            self._timed_out.popitem(last=False)
        if len(self._unrecorded) > MAX_REMEMBERED:
            dropped = len(self._unrecorded) - MAX_REMEMBERED
            del self._unrecorded[:dropped]
            self.events.emit("timeouts_unrecorded", level="error", dropped=dropped)
        return outcomes

    async def wait_all(self, on_outcome: Callable[[JobOutcome], None] | None = None) -> list[JobOutcome]:
        """Collect until nothing is pending (every job has a deadline, so this ends)."""
        done: list[JobOutcome] = []
        while self.pending or self._ready:
            for outcome in await self.collect():
                done.append(outcome)
                if on_outcome:
                    on_outcome(outcome)
        return done
