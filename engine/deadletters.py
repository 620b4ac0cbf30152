"""The dead-letter store: where every job that cannot end as a result goes.

Bounded by count (``dlq_max_entries``, oldest dropped first) and by age
(``dlq_ttl_seconds``, pruned on every write and every read): a sorted set of ids
by failure time, a hash of entries, and a small hash of counters. Every write is
one Lua call, so the three never disagree, and every operator action (retry,
delete, purge) is atomic: two operators retrying one entry requeue it once.

Reads never load the whole store: pages come from rank windows of the sorted
set, and a filtered listing scans bounded windows until its page is full.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Callable, Iterable, Iterator

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import SeawallError
from .keys import Keys
from .models import Job, describe_validation_error

RAW_MAX_BYTES = 64 * 1024
TRACEBACK_MAX_CHARS = 4000
FILTER_CHUNK = 200      # ids examined per round trip by a filtered listing
SCAN_MAX = 5000         # ids one filtered listing call examines at most
RETRY_BATCH = 200       # entries per retry script call
RETRY_BYTES = 4 * 1024 * 1024  # job bytes per retry script call, about
RETRY_ROUNDS = 3        # re-reads of an entry that changed under a retry
STAT_FIELDS = ("added", "dropped_count", "dropped_age", "retried", "deleted")


class DeadReason(str, Enum):
    HANDLER_FAILED = "handler_failed"
    INVALID_PAYLOAD = "invalid_payload"
    RESULT_PUSH_FAILED = "result_push_failed"
    RESULT_TIMEOUT = "result_timeout"
    WORKER_LOST = "worker_lost"
    ORPHANED_RESULT = "orphaned_result"


class UnknownDeadLetterError(SeawallError):
    """An operator named an id the store does not hold."""


class DeadLetter(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str
    reason: DeadReason
    job: dict[str, Any] | None = None
    raw: str | None = None
    raw_bytes: int = 0
    error_type: str = ""
    error: str = ""
    traceback: str = ""
    attempts: int = 0
    first_failed_at: float = Field(default_factory=time.time)
    last_failed_at: float = Field(default_factory=time.time)
    worker: str = ""
    session: str = ""
    result: dict[str, Any] | None = None

    @classmethod
    def for_raw(cls, raw: bytes, reason: DeadReason, error: str, **kw: Any) -> "DeadLetter":
        """Garbage from the queue: keep a bounded, printable copy of the bytes."""
        text = raw[:RAW_MAX_BYTES].decode("utf-8", errors="backslashreplace")
        return cls(id=f"raw-{uuid.uuid4().hex}", reason=reason, raw=text, raw_bytes=len(raw), error=error, **kw)

    @classmethod
    def parse(cls, entry_id: str, body: bytes | str) -> "DeadLetter":
        """An entry from its stored JSON; an unreadable one stays visible (and deletable)."""
        try:
            return cls.model_validate_json(body)
        except (ValidationError, ValueError) as exc:
            data = body.encode() if isinstance(body, str) else body
            bad = cls.for_raw(data, DeadReason.INVALID_PAYLOAD, "the stored dead-letter entry is unreadable")
            detail = describe_validation_error(exc) if isinstance(exc, ValidationError) else str(exc)[:200]
            return bad.model_copy(update={"id": entry_id, "error_type": "UnreadableEntry", "traceback": detail})

    @property
    def handler(self) -> str:
        source = self.job or self.result or {}
        return str(source.get("handler", ""))

    @property
    def retryable(self) -> bool:
        """Only an entry that kept its job can go back on the queue."""
        return self.job is not None

    def age(self, now: float | None = None) -> float:
        return max(0.0, (time.time() if now is None else now) - self.last_failed_at)

    def matches(self, text: str | None) -> bool:
        """Case-insensitive substring of the fields an operator reads (not the traceback)."""
        if not text:
            return True
        payload = self.job.get("payload") if self.job else self.result
        parts = [self.id, self.reason.value, self.handler, self.error_type, self.error, self.session, self.worker,
                 self.raw or "", json.dumps(payload, ensure_ascii=False, separators=(",", ":"))]
        return text.lower() in "\n".join(parts).lower()

    def summary(self, now: float | None = None) -> dict[str, Any]:
        """One listing row: what a table or a script needs, without the bulky parts."""
        return {"id": self.id, "reason": self.reason.value, "handler": self.handler, "attempts": self.attempts,
                "error_type": self.error_type, "error": self.error[:200], "session": self.session,
                "worker": self.worker, "last_failed_at": self.last_failed_at, "age_seconds": round(self.age(now), 3),
                "retryable": self.retryable, "raw_bytes": self.raw_bytes}


@dataclass(frozen=True)
class Page:
    """One page of a listing, newest first. Pass ``next_offset`` back for the next one."""

    entries: list[DeadLetter]
    total: int                 # entries in the whole store, filter or not
    next_offset: int | None    # None: the store has no more to examine
    scanned: int               # ids examined to fill this page


@dataclass
class RetryReport:
    """What a retry did, per id: requeued, requeued to the retrying session, kept, or gone."""

    retried: list[str] = field(default_factory=list)
    rebound: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    jobs: dict[str, Job] = field(default_factory=dict)   # id -> the job exactly as requeued

    @property
    def count(self) -> int:
        return len(self.retried)


@dataclass(frozen=True)
class _Window:
    total: int
    examined: int
    last: tuple[str, str] | None           # (score, id) of the last id examined
    hits: list[tuple[int, str, bytes]]     # (rank, id, body) that passed the prefilter


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


@dataclass(frozen=True)
class _Read:
    """An entry as read, with its exact bytes: the retry script checks they did not change."""

    id: str
    body: bytes | None
    entry: DeadLetter | None

    @classmethod
    def of(cls, entry_id: str, body: bytes | None) -> "_Read":
        return cls(entry_id, body, DeadLetter.parse(entry_id, body) if body else None)

    @property
    def sha1(self) -> str:
        return hashlib.sha1(self.body or b"").hexdigest()


# -- Lua ---------------------------------------------------------------------------

# Shared by every script that writes or reads (orphans.py too): drop what is past its age (a
# bounded batch per call) and what is past the count bound, counting both.
LUA_PRUNE = """
local function prune(zset, hash, stats, now, ttl, max_entries)
  local old = redis.call('ZRANGEBYSCORE', zset, '-inf', '(' .. (now - ttl), 'LIMIT', 0, 1000)
  if #old > 0 then
    redis.call('ZREM', zset, unpack(old))
    redis.call('HDEL', hash, unpack(old))
    redis.call('HINCRBY', stats, 'dropped_age', #old)
  end
  local extra = redis.call('ZCARD', zset) - max_entries
  while extra > 0 do
    local batch = math.min(extra, 1000)
    local popped = redis.call('ZPOPMIN', zset, batch)
    local ids = {}
    for i = 1, #popped, 2 do ids[#ids + 1] = popped[i] end
    redis.call('HDEL', hash, unpack(ids))
    redis.call('HINCRBY', stats, 'dropped_count', #ids)
    extra = extra - batch
  end
end
"""

_ADD = LUA_PRUNE + """
local zset, hash, stats = KEYS[1], KEYS[2], KEYS[3]
local id, body, now = ARGV[1], ARGV[2], tonumber(ARGV[3])
local max_entries, ttl = tonumber(ARGV[4]), tonumber(ARGV[5])
redis.call('ZADD', zset, now, id)
redis.call('HSET', hash, id, body)
redis.call('HINCRBY', stats, 'added', 1)
prune(zset, hash, stats, now, ttl, max_entries)
return redis.call('ZCARD', zset)
"""

# A rank window, newest first, with a cheap substring prefilter. Ranks count
# either from the top, or (``below`` given) from just under a (score, id)
# cursor: entries newer than it, and ties at its score with an id >= it, are
# skipped, so a sweep goes on where it stopped whatever others add or remove.
# Returns {total, ids examined, last score, last id, rank, id, body, ...}.
_WINDOW = LUA_PRUNE + """
local zset, hash, stats = KEYS[1], KEYS[2], KEYS[3]
local now, ttl, max_entries = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local start, count = tonumber(ARGV[5]), tonumber(ARGV[6])
local reason_needle, text_needle, below, after = ARGV[7], ARGV[8], ARGV[9], ARGV[10]
if ARGV[4] == '1' then prune(zset, hash, stats, now, ttl, max_entries) end
local total = redis.call('ZCARD', zset)
local out = {total, 0, '', ''}
if count <= 0 then return out end
local skip = 0
if below ~= '' then
  skip = redis.call('ZCOUNT', zset, '(' .. below, '+inf')
  if after ~= '' then
    for _, m in ipairs(redis.call('ZRANGEBYSCORE', zset, below, below)) do
      if m >= after then skip = skip + 1 end
    end
  end
end
local ids = redis.call('ZREVRANGE', zset, skip + start, skip + start + count - 1, 'WITHSCORES')
if #ids == 0 then return out end
local n = #ids / 2
out[2], out[3], out[4] = n, ids[2 * n], ids[2 * n - 1]
local names = {}
for i = 1, n do names[i] = ids[2 * i - 1] end
local bodies = redis.call('HMGET', hash, unpack(names))
for i, id in ipairs(names) do
  local body = bodies[i]
  if body and (reason_needle == '' or string.find(body, reason_needle, 1, true))
      and (text_needle == '' or string.find(string.lower(body), text_needle, 1, true)) then
    out[#out + 1] = start + i - 1
    out[#out + 1] = id
    out[#out + 1] = body
  end
end
return out
"""

_GET = LUA_PRUNE + """
prune(KEYS[1], KEYS[2], KEYS[3], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]))
return redis.call('HGET', KEYS[2], ARGV[4])
"""

# KEYS: zset, hash, stats, queue, then the job's own session key per item.
# ARGV: per item id, sha1 of the body read, the job to push, and the job bound
# to the retrying session ('' if none) used when the own session key is gone.
# Per item: 1 requeued, 2 requeued to the retrying session, 0 gone, -1 changed.
_RETRY = """
local zset, hash, stats, queue = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local out, retried = {}, 0
for i = 1, #ARGV / 4 do
  local id, sha, own, rebound = ARGV[4 * i - 3], ARGV[4 * i - 2], ARGV[4 * i - 1], ARGV[4 * i]
  local body = redis.call('HGET', hash, id)
  if not body then
    out[i] = 0
  elseif redis.sha1hex(body) ~= sha then
    out[i] = -1
  else
    local job, code = own, 1
    if rebound ~= '' and redis.call('EXISTS', KEYS[4 + i]) == 0 then job, code = rebound, 2 end
    redis.call('LPUSH', queue, job)
    redis.call('ZREM', zset, id)
    redis.call('HDEL', hash, id)
    retried = retried + 1
    out[i] = code
  end
end
if retried > 0 then redis.call('HINCRBY', stats, 'retried', retried) end
return out
"""

_DELETE = """
local out, gone = {}, 0
for i, id in ipairs(ARGV) do
  out[i] = redis.call('ZREM', KEYS[1], id)
  redis.call('HDEL', KEYS[2], id)
  gone = gone + out[i]
end
if gone > 0 then redis.call('HINCRBY', KEYS[3], 'deleted', gone) end
return out
"""

_PURGE = """
local n = redis.call('ZCARD', KEYS[1])
redis.call('UNLINK', KEYS[1], KEYS[2])
if n > 0 then redis.call('HINCRBY', KEYS[3], 'deleted', n) end
return n
"""


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def _by_bytes(items: list[tuple[str, str, list[Any]]], budget: int) -> Iterator[list[tuple[str, str, list[Any]]]]:
    """Split retry items so one script call carries about ``budget`` bytes of jobs at most."""
    batch: list[tuple[str, str, list[Any]]] = []
    size = 0
    for item in items:
        weight = sum(len(a) for a in item[2])
        if batch and size + weight > budget:
            yield batch
            batch, size = [], 0
        batch.append(item)
        size += weight
    if batch:
        yield batch


def _text_needle(text: str | None) -> str:
    """A Lua prefilter only where it cannot miss: ASCII with nothing JSON escapes."""
    if not text or not text.isascii() or any(c in text for c in '"\\') or not text.isprintable():
        return ""
    return text.lower()


def _reason_needle(reason: DeadReason | None) -> str:
    return f'"reason":"{reason.value}"' if reason else ""


class DeadLetterStore:
    """Bounded dead letters of one queue. Methods take the redis client to use."""

    def __init__(self, keys: Keys, max_entries: int, ttl_seconds: int) -> None:
        self.keys = keys
        self.max_entries = max_entries
        self.ttl_seconds = ttl_seconds

    @classmethod
    def for_settings(cls, settings: Any) -> "DeadLetterStore":
        return cls(Keys(settings.namespace, settings.queue), settings.dlq_max_entries, settings.dlq_ttl_seconds)

    def _key_args(self) -> list[str]:
        return [self.keys.dlq, self.keys.dlq_entries, self.keys.dlq_stats]

    def _bounds(self, now: float | None) -> list[Any]:
        return [repr(time.time() if now is None else now), self.ttl_seconds, self.max_entries]

    # -- writing (the worker's path) ------------------------------------------------

    def _add_args(self, entry: DeadLetter, now: float | None) -> list[Any]:
        stamp = time.time() if now is None else now
        return [_ADD, 3, *self._key_args(), entry.id, entry.model_dump_json(), repr(stamp), self.max_entries, self.ttl_seconds]

    async def add(self, client: Any, entry: DeadLetter, now: float | None = None) -> int:
        """Store one entry; returns how many the store holds now."""
        return int(await client.eval(*self._add_args(entry, now)))

    def add_to(self, pipe: Any, entry: DeadLetter, now: float | None = None) -> Any:
        """Queue the same write on a MULTI pipeline, beside the job's acknowledgement."""
        return pipe.eval(*self._add_args(entry, now))

    # -- reading (each read prunes first) -------------------------------------------

    async def _window(self, client: Any, start: int, count: int, *, prune: bool, reason: DeadReason | None = None,
                      text: str | None = None, below: tuple[str, str] | None = None,
                      now: float | None = None) -> _Window:
        cursor = below or ("", "")
        reply = await client.eval(_WINDOW, 3, *self._key_args(), *self._bounds(now), "1" if prune else "0", start,
                                  count, _reason_needle(reason), _text_needle(text), *cursor)
        hits = [(int(reply[i]), reply[i + 1].decode(), reply[i + 2]) for i in range(4, len(reply), 3)]
        last = (_text(reply[2]), _text(reply[3])) if int(reply[1]) else None
        return _Window(int(reply[0]), int(reply[1]), last, hits)

    async def count(self, client: Any, now: float | None = None) -> int:
        """Entries held, after pruning what is past its age."""
        return (await self._window(client, 0, 0, prune=True, now=now)).total

    async def stats(self, client: Any, now: float | None = None) -> dict[str, int]:
        """The counters (pruned first, so they are current), every known field present."""
        await self.count(client, now)
        raw = await client.hgetall(self.keys.dlq_stats)
        found = {k.decode(): int(v) for k, v in raw.items()}
        return {name: found.get(name, 0) for name in STAT_FIELDS} | found

    async def get(self, client: Any, entry_id: str, now: float | None = None) -> DeadLetter | None:
        body = await client.eval(_GET, 3, *self._key_args(), *self._bounds(now), entry_id)
        return DeadLetter.parse(entry_id, body) if body else None

    async def require(self, client: Any, entry_id: str) -> DeadLetter:
        """``get``, or one clear line for an unknown id."""
        entry = await self.get(client, entry_id)
        if entry is None:
            raise UnknownDeadLetterError(
                f"no dead letter with id {entry_id!r} in queue {self.keys.queue!r}: "
                "run 'seawall dlq list' to see the ids")
        return entry

    async def unknown(self, client: Any, ids: Iterable[str]) -> list[str]:
        """Which of these ids the store does not hold (one ZMSCORE)."""
        wanted = list(dict.fromkeys(ids))
        if not wanted:
            return []
        await self.count(client)  # an entry past its age is gone, not retryable
        scores = await client.zmscore(self.keys.dlq, wanted)
        return [i for i, score in zip(wanted, scores) if score is None]

    async def page(self, client: Any, *, limit: int = 50, offset: int = 0, reason: DeadReason | None = None,
                   text: str | None = None, scan_max: int = SCAN_MAX, now: float | None = None) -> Page:
        """Up to ``limit`` entries, newest first, from rank ``offset`` on.

        Unfiltered: one window of ``limit`` ids. Filtered: windows of
        ``FILTER_CHUNK`` ids until the page is full, the store ends, or
        ``scan_max`` ids were examined (then ``next_offset`` says where to go on).
        """
        filtered = reason is not None or bool(text)
        chunk = max(limit, FILTER_CHUNK) if filtered else limit
        entries: list[DeadLetter] = []
        pos, scanned, total = offset, 0, 0
        while scanned < max(scan_max, limit):
            want = min(chunk, max(scan_max, limit) - scanned)
            window = await self._window(client, pos, want, prune=scanned == 0, reason=reason, text=text, now=now)
            total, examined = window.total, window.examined
            for rank, entry_id, body in window.hits:
                entry = DeadLetter.parse(entry_id, body)
                if (reason is None or entry.reason is reason) and entry.matches(text):
                    entries.append(entry)
                    if len(entries) == limit:
                        return Page(entries, total, rank + 1, scanned + rank + 1 - pos)
            scanned += examined
            pos += examined
            if examined < want:
                return Page(entries, total, None, scanned)
        return Page(entries, total, pos, scanned)

    async def newest(self, client: Any, limit: int = 50, offset: int = 0) -> list[DeadLetter]:
        return (await self.page(client, limit=limit, offset=offset)).entries

    # -- retrying ---------------------------------------------------------------------

    async def retry(self, client: Any, ids: Iterable[str], *, session_id: str | None = None,
                    result_key: str | None = None, now: float | None = None) -> RetryReport:
        """Requeue these entries' jobs, each atomically; see ``_retry_round``.

        ``session_id``/``result_key`` name the retrying session: a job whose own
        session is gone is rebound to it, so its result still has a reader.
        """
        report = RetryReport()
        pending = list(dict.fromkeys(ids))
        for _ in range(RETRY_ROUNDS):
            stale: list[str] = []
            for chunk in _chunks(pending, RETRY_BATCH):
                bodies = await client.hmget(self.keys.dlq_entries, chunk)
                reads = [_Read.of(i, b) for i, b in zip(chunk, bodies)]
                stale += await self._retry_round(client, reads, report, session_id, result_key, now)
            pending = stale
            if not pending:
                break
        for entry_id in pending:
            report.skipped[entry_id] = "it changed while being retried: try again"
        return report

    async def retry_matching(self, client: Any, *, reason: DeadReason | None = None, text: str | None = None,
                             session_id: str | None = None, result_key: str | None = None,
                             batch: int = RETRY_BATCH, now: float | None = None,
                             progress: Callable[[int, int], None] | None = None) -> RetryReport:
        """Retry every entry that matches (all, without a filter), in bounded batches.

        Only entries stored before this call began count (newer than both the
        newest entry then and this clock are left out, whatever a worker's
        clock says), so a job that fails again meanwhile is not retried twice.
        Walks newest to oldest by a (score, id) cursor, so other operators'
        retries and deletes, and pruning, never make it skip an entry.
        ``progress(examined, total)`` after each batch.
        """
        report = RetryReport()
        total = await self.count(client, now)
        top = await client.zrevrange(self.keys.dlq, 0, 0, withscores=True)
        until = max([time.time() if now is None else now, *(score for _, score in top)])
        cursor, examined_all = (repr(until), ""), 0
        for _ in range(total // max(1, batch) + 10):
            window = await self._window(client, 0, batch, prune=False, reason=reason, text=text, below=cursor,
                                        now=now)
            reads = [r for _, i, b in window.hits if (r := _Read.of(i, b)).entry
                     and (reason is None or r.entry.reason is reason) and r.entry.matches(text)]
            stale = await self._retry_round(client, reads, report, session_id, result_key, now)
            if stale:
                self._merge(report, await self.retry(client, stale, session_id=session_id, result_key=result_key,
                                                     now=now))
            examined_all += window.examined
            if progress:
                progress(min(examined_all, total), total)
            if window.last is None or window.examined < batch:
                break
            cursor = window.last
        return report

    @staticmethod
    def _merge(into: RetryReport, other: RetryReport) -> None:
        into.retried += other.retried
        into.rebound += other.rebound
        into.skipped |= other.skipped
        into.missing += other.missing
        into.jobs |= other.jobs

    async def _retry_round(self, client: Any, reads: list[_Read], report: RetryReport,
                           session_id: str | None, result_key: str | None, now: float | None) -> list[str]:
        """Script calls for these entries (bounded in bytes); returns the ids that changed under us."""
        stamp = time.time() if now is None else now
        items: list[tuple[str, str, list[Any]]] = []
        for read in reads:
            if read.entry is None:
                report.missing.append(read.id)
                continue
            prepared = self._requeued_jobs(read.entry, session_id, result_key, stamp)
            if isinstance(prepared, str):
                report.skipped[read.id] = prepared
                continue
            own, rebound, job_session = prepared
            items.append((read.id, self.keys.session(job_session), [read.id, read.sha1, own, rebound]))
        stale: list[str] = []
        for batch in _by_bytes(items, RETRY_BYTES):
            stale += await self._retry_script(client, batch, report)
        return stale

    async def _retry_script(self, client: Any, items: list[tuple[str, str, list[Any]]],
                            report: RetryReport) -> list[str]:
        keys = [self.keys.dlq, self.keys.dlq_entries, self.keys.dlq_stats, self.keys.queue_list]
        keys += [session_key for _, session_key, _ in items]
        argv = [arg for _, _, args in items for arg in args]
        codes = await client.eval(_RETRY, len(keys), *keys, *argv)
        stale = []
        for (entry_id, _, args), code in zip(items, codes):
            if code > 0:
                report.retried.append(entry_id)
                report.jobs[entry_id] = Job.from_json(args[2] if code == 1 else args[3])
                if code == 2:
                    report.rebound.append(entry_id)
            elif code == 0:
                report.missing.append(entry_id)
            else:
                stale.append(entry_id)
        return stale

    def _requeued_jobs(self, entry: DeadLetter, session_id: str | None, result_key: str | None,
                       now: float) -> tuple[bytes, bytes, str] | str:
        """(job as requeued, same bound to the retrying session or b'', its own session), or why not."""
        if entry.job is None:
            return f"it has no job to requeue ({entry.reason.value}: only its raw bytes or result were kept)"
        try:
            job = Job.model_validate(entry.job)
        except ValidationError as exc:
            return f"its job is not valid ({describe_validation_error(exc)})"
        fresh = {"attempt": 1, "retries": job.retries + 1, "enqueued_at": now}
        own = job.model_copy(update=fresh).to_json()
        rebound = b""
        if session_id and session_id != job.session:
            target = result_key or self.keys.results(session_id)
            rebound = job.model_copy(update=fresh | {"session": session_id, "result_key": target}).to_json()
        return own, rebound, job.session

    # -- deleting ---------------------------------------------------------------------

    async def delete(self, client: Any, ids: Iterable[str]) -> tuple[list[str], list[str]]:
        """Remove these entries: (deleted, not found)."""
        deleted: list[str] = []
        missing: list[str] = []
        for chunk in _chunks(list(dict.fromkeys(ids)), RETRY_BATCH):
            codes = await client.eval(_DELETE, 3, *self._key_args(), *chunk)
            for entry_id, code in zip(chunk, codes):
                (deleted if code else missing).append(entry_id)
        return deleted, missing

    async def purge(self, client: Any) -> int:
        """Remove every entry (the counters stay); returns how many went."""
        return int(await client.eval(_PURGE, 3, *self._key_args()))
