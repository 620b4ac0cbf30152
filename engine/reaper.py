"""The reaper: jobs held by a worker that died go back on the queue.

A worker is dead when its heartbeat key (TTL ``lease_seconds``) is gone. Its
processing list is then emptied one job at a time by a Lua script that checks
the heartbeat in the same atomic step, so a slow but live worker is never
robbed, and two reapers never requeue the same job twice.

Each requeue counts a lost delivery (``lost:<job>``). A job lost more than
``max_lost`` times is poison: it killed its worker each time. It is moved to
the reaper's own processing list and dead-lettered as ``worker_lost`` from
there, so even a reaper that dies mid-way loses nothing. A reaper without a
processing list of its own (the console) leaves poison jobs for a worker.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from .deadletters import DeadLetter, DeadLetterStore, DeadReason
from .events import EventLog
from .keys import LOST_COUNT_SECONDS, WORKER_REGISTRY_SECONDS, Keys
from .models import Job, Outcome, Result, job_id_of

DEFAULT_MAX_LOST = 3

# KEYS: heartbeat of the dead worker, its processing list, the queue, the holder's list (absent: no holder)
# ARGV: lost-key prefix, max_lost, lost ttl
# -> {0}: worker alive; {-1}: list empty; {1, raw, n}: requeued; {2, raw, n}: poison, moved to holder;
#    {3, raw, n}: poison, no holder: left in place
_REAP_ONE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return {0} end
local raw = redis.call('LINDEX', KEYS[2], -1)
if not raw then return {-1} end
local ok, job = pcall(cjson.decode, raw)
local n = 1
if ok and type(job) == 'table' and type(job['id']) == 'string' then
  local lost_key = ARGV[1] .. job['id']
  n = redis.call('INCR', lost_key)
  redis.call('EXPIRE', lost_key, tonumber(ARGV[3]))
end
if n > tonumber(ARGV[2]) then
  if KEYS[4] == nil then return {3, raw, n} end
  redis.call('LMOVE', KEYS[2], KEYS[4], 'RIGHT', 'LEFT')
  return {2, raw, n}
end
redis.call('LMOVE', KEYS[2], KEYS[3], 'RIGHT', 'RIGHT')
return {1, raw, n}
"""


@dataclass
class ReapReport:
    dead_workers: list[str] = field(default_factory=list)
    requeued: int = 0
    poisoned: int = 0
    left_poison: int = 0
    pruned: int = 0

    @property
    def acted(self) -> bool:
        return bool(self.requeued or self.poisoned or self.pruned)


class Reaper:
    """Finds dead workers in the registry and recovers what they held."""

    def __init__(self, keys: Keys, store: DeadLetterStore, events: EventLog, *, holder: str | None = None,
                 max_lost: int = DEFAULT_MAX_LOST, reaper_id: str = "", result_ttl: int = 3600) -> None:
        self.keys = keys
        self.store = store
        self.events = events
        self.holder = holder  # our own processing list, for poison jobs
        self.max_lost = max_lost
        self.reaper_id = reaper_id
        self.result_ttl = result_ttl

    async def run_once(self, client: Any, *, now: float | None = None) -> ReapReport:
        now = time.time() if now is None else now
        report = ReapReport()
        registry = await client.zrange(self.keys.workers, 0, -1, withscores=True)
        for raw_id, last_seen in registry:
            worker_id = raw_id.decode() if isinstance(raw_id, bytes) else str(raw_id)
            if self.holder and self.keys.processing(worker_id) == self.holder:
                continue
            await self._reap_worker(client, worker_id, float(last_seen), now, report)
        if report.acted:
            self.events.emit("reaper_ran", level="warning", reaper=self.reaper_id, dead=report.dead_workers,
                             requeued=report.requeued, poisoned=report.poisoned, pruned=report.pruned)
        return report

    async def _reap_worker(self, client: Any, worker_id: str, last_seen: float, now: float, report: ReapReport) -> None:
        # no holder: three keys only (an empty key name would fall outside an ACL key pattern)
        keys = [self.keys.worker(worker_id), self.keys.processing(worker_id), self.keys.queue_list]
        keys += [self.holder] if self.holder else []
        args = [self.keys.lost(""), self.max_lost, LOST_COUNT_SECONDS]
        first = True
        while True:
            reply = await client.eval(_REAP_ONE, len(keys), *keys, *args)
            status = int(reply[0])
            if status == 0:
                return  # alive
            if status == -1:
                if first:
                    await self._prune(client, worker_id, last_seen, now, report)
                return
            if first:
                report.dead_workers.append(worker_id)
                first = False
            raw, lost = reply[1], int(reply[2])
            if status == 1:
                report.requeued += 1
                self.events.emit("job_redelivered", level="warning", worker=worker_id, lost=lost,
                                 job_id=job_id_of(raw))
            elif status == 2:
                await self._dead_letter(client, raw, worker_id, lost)
                report.poisoned += 1
            else:
                report.left_poison += 1
                return  # no holder: a worker's reaper will take it

    async def _prune(self, client: Any, worker_id: str, last_seen: float, now: float, report: ReapReport) -> None:
        """A dead worker with nothing held leaves the registry (after a grace, so a restart can re-beat)."""
        if now - last_seen > 60 or now - last_seen > WORKER_REGISTRY_SECONDS:
            removed = await client.eval(_PRUNE, 3, self.keys.worker(worker_id), self.keys.processing(worker_id),
                                        self.keys.workers, worker_id)
            report.pruned += int(removed or 0)

    async def _dead_letter(self, client: Any, raw: bytes, worker_id: str, lost: int) -> None:
        """A poison job, now in our own list: dead-letter it and drop it from the list, atomically."""
        pipe = client.pipeline(transaction=True)
        try:
            job = Job.from_json(raw)
        except ValueError:
            entry = DeadLetter.for_raw(raw, DeadReason.WORKER_LOST, f"lost with dead worker {worker_id} {lost} times",
                                       worker=worker_id)
        else:
            error = f"its worker died while running it, {lost} times (last: {worker_id})"
            entry = DeadLetter(id=job.id, reason=DeadReason.WORKER_LOST, job=job.model_dump(mode="json"),
                               error_type="WorkerLost", attempts=job.attempt, worker=worker_id, session=job.session,
                               error=error)
            # the producer hears of it now, not at its deadline
            failure = Result(job_id=job.id, outcome=Outcome.ERROR, error_type="WorkerLost", error=error,
                             attempts=job.attempt, worker=worker_id, handler=job.handler, enqueued_at=job.enqueued_at)
            pipe.rpush(job.result_key, failure.to_json()).expire(job.result_key, self.result_ttl)
        self.store.add_to(pipe, entry)
        pipe.lrem(self.holder, 1, raw)
        await pipe.execute()
        self.events.emit("job_dead_lettered", level="warning", job_id=entry.id, reason=entry.reason.value,
                         error=entry.error, attempts=lost)


_PRUNE = """
if redis.call('EXISTS', KEYS[1]) == 0 and redis.call('LLEN', KEYS[2]) == 0 then
  return redis.call('ZREM', KEYS[3], ARGV[1])
end
return 0
"""
