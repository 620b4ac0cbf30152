"""Orphaned result lists: results nobody will read.

A result list is orphaned when its session's heartbeat key is gone (the
producer died without cleaning up) or when it has no TTL (it would live
forever). Finding them is read only and cheap on a big database: SCAN with
MATCH in bounded steps (never KEYS), and one pipeline of TTL/LLEN/OBJECT
IDLETIME/EXISTS per step.

Cleaning up re-checks, atomically in Lua, that the session is still gone, so a
list whose session is alive is never touched, and running it twice is harmless.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from pydantic import ValidationError

from .deadletters import LUA_PRUNE, DeadLetter, DeadLetterStore, DeadReason
from .keys import Keys
from .models import Result

ADOPT_BATCH = 100       # results moved into dead letters per script call
ADOPT_ROUNDS = 1000     # script calls per list at most (100,000 results)


@dataclass(frozen=True)
class Orphan:
    key: str
    session: str
    length: int
    ttl: int            # seconds; -1: no TTL
    idle: int           # seconds since last touched; -1 if the server cannot say
    session_alive: bool


@dataclass
class CleanupReport:
    """What a cleanup did: lists handled, results in them, lists left alone and why."""

    lists: int = 0
    results: int = 0
    skipped: dict[str, str] = field(default_factory=dict)


# -- finding -------------------------------------------------------------------------


async def scan_orphans(
    client: Any,
    keys: Keys,
    *,
    count: int = 500,
    progress: Callable[[int, int], None] | None = None,
    cancel: asyncio.Event | None = None,
) -> list[Orphan]:
    """Every orphaned result list of this queue; read only.

    ``progress(examined, total)`` after each step: ``examined`` estimates the
    keys SCAN has stepped over, ``total`` is DBSIZE when the scan began. If
    ``cancel`` is set the scan stops after the current step and returns what
    it found so far.
    """
    total = int(await client.dbsize())
    found: list[Orphan] = []
    cursor, steps = 0, 0
    while True:
        cursor, batch = await client.scan(cursor, match=keys.results_pattern, count=count)
        steps += 1
        found += [o for o in await _inspect(client, keys, batch) if _is_orphan(o)]
        if progress:
            progress(total if cursor == 0 else min(steps * count, total), total)
        if cursor == 0 or (cancel is not None and cancel.is_set()):
            return found


async def count_orphans(client: Any, keys: Keys, **kw: Any) -> tuple[int, int]:
    """(orphaned lists, results in them): what a status line shows."""
    found = await scan_orphans(client, keys, **kw)
    return len(found), sum(o.length for o in found)


def _is_orphan(o: Orphan | None) -> bool:
    return o is not None and (not o.session_alive or o.ttl == -1)


async def _inspect(client: Any, keys: Keys, batch: list[Any]) -> list[Orphan | None]:
    """One pipeline for the whole SCAN step: TTL, LLEN, IDLETIME, session EXISTS."""
    names = [k.decode() if isinstance(k, bytes) else k for k in batch]
    named = [(n, keys.suffix_of(n, "results")) for n in names]
    named = [(n, s) for n, s in named if s]
    if not named:
        return []
    pipe = client.pipeline(transaction=False)
    for name, session in named:
        # idle = time since the newest result was written (its finished_at): OBJECT IDLETIME
        # would say "since the last read", and this very scan reads the list
        pipe.lindex(name, -1).ttl(name).llen(name).exists(keys.session(session))
    replies = await pipe.execute(raise_on_error=False)
    return [_orphan_of(name, session, replies[4 * i:4 * i + 4]) for i, (name, session) in enumerate(named)]


def _orphan_of(name: str, session: str, replies: list[Any]) -> Orphan | None:
    """None for a key that vanished meanwhile or is not a list (not ours to judge)."""
    newest, ttl, length, alive = replies
    if isinstance(ttl, Exception) or isinstance(length, Exception) or ttl == -2:
        return None
    idle_s = _age_of(newest)
    return Orphan(name, session, int(length), int(ttl), idle_s, bool(alive) and not isinstance(alive, Exception))


def _age_of(newest: Any) -> int:
    """Seconds since a result was written, from its own ``finished_at``; -1 if it has none."""
    if isinstance(newest, Exception) or not newest:
        return -1
    try:
        finished = float(json.loads(newest).get("finished_at") or 0)
    except (ValueError, AttributeError, TypeError):
        return -1
    return max(0, int(time.time() - finished)) if finished else -1


# -- cleaning up -----------------------------------------------------------------------

# KEYS: results list, its session key. ARGV: nothing.
# Returns the list's length deleted, or -1 if the session is alive.
_DELETE = """
if redis.call('EXISTS', KEYS[2]) == 1 then return -1 end
local n = redis.call('LLEN', KEYS[1])
redis.call('UNLINK', KEYS[1])
return n
"""

# KEYS: results list, session key, dlq zset, dlq hash, dlq stats.
# ARGV: now, ttl, max entries, n, sha1 of the first n elements, then n ids and
# n entry bodies. Moves the first n elements into dead letters only if the
# session is still gone and they are exactly the ones read; the list is
# deleted once empty. Returns elements left, -1 if the session is alive, -2
# if the head changed under us.
_ADOPT = LUA_PRUNE + """
if redis.call('EXISTS', KEYS[2]) == 1 then return -1 end
local now, ttl, max_entries, n = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local head = redis.call('LRANGE', KEYS[1], 0, n - 1)
if #head ~= n or redis.sha1hex(table.concat(head, '\\n')) ~= ARGV[5] then return -2 end
for i = 1, n do
  redis.call('ZADD', KEYS[3], now, ARGV[5 + i])
  redis.call('HSET', KEYS[4], ARGV[5 + i], ARGV[5 + n + i])
end
if n > 0 then
  redis.call('HINCRBY', KEYS[5], 'added', n)
  redis.call('LTRIM', KEYS[1], n, -1)
  prune(KEYS[3], KEYS[4], KEYS[5], now, ttl, max_entries)
end
local left = redis.call('LLEN', KEYS[1])
if left == 0 then redis.call('UNLINK', KEYS[1]) end
return left
"""


async def delete_orphans(client: Any, keys: Keys, orphans: list[Orphan]) -> CleanupReport:
    """Delete each list whose session is (still) gone; a live session's list is skipped."""
    report = CleanupReport()
    for o in orphans:
        n = int(await client.eval(_DELETE, 2, o.key, keys.session(o.session)))
        if n < 0:
            report.skipped[o.key] = f"session {o.session} is alive: its producer still reads this list"
        elif n > 0:
            report.lists += 1
            report.results += n
    return report


async def adopt_orphans(client: Any, keys: Keys, store: DeadLetterStore, orphans: list[Orphan],
                        now: float | None = None) -> CleanupReport:
    """Move each orphan's results into dead letters (``orphaned_result``), then delete the list."""
    report = CleanupReport()
    for o in orphans:
        moved, why = await _adopt_one(client, keys, store, o, now)
        if why:
            report.skipped[o.key] = why
        if moved:
            report.lists += 1
            report.results += moved
    return report


async def _adopt_one(client: Any, keys: Keys, store: DeadLetterStore, o: Orphan,
                     now: float | None) -> tuple[int, str]:
    """(results moved, why it stopped early or '') for one list, in bounded batches."""
    moved, changed = 0, 0
    for _ in range(ADOPT_ROUNDS):
        head = await client.lrange(o.key, 0, ADOPT_BATCH - 1)
        if not head:
            return moved, ""
        stamp = time.time() if now is None else now
        entries = [_entry_for(raw, o, stamp) for raw in head]
        left = int(await client.eval(_ADOPT, 5, o.key, keys.session(o.session), keys.dlq, keys.dlq_entries,
                                     keys.dlq_stats, repr(stamp), store.ttl_seconds, store.max_entries, len(head),
                                     hashlib.sha1(b"\n".join(head)).hexdigest(), *[e.id for e in entries],
                                     *[e.model_dump_json() for e in entries]))
        if left == -1:
            return moved, f"session {o.session} is alive: its producer still reads this list"
        if left == -2:
            changed += 1
            if changed > 3:
                return moved, "the list kept changing while being adopted: run again"
            continue
        moved += len(head)
        if left == 0:
            return moved, ""
    return moved, f"stopped after {moved} results: run again for the rest"


def _entry_for(raw: bytes, o: Orphan, now: float) -> DeadLetter:
    """A dead letter holding one undelivered result exactly as it was pushed."""
    why = f"session {o.session} is gone: nobody will read this result"
    try:
        result = Result.from_json(raw)
        data = json.loads(raw)
    except (ValidationError, ValueError):
        return DeadLetter.for_raw(raw, DeadReason.ORPHANED_RESULT, why, session=o.session, error_type="OrphanedResult",
                                  first_failed_at=now, last_failed_at=now)
    return DeadLetter(id=f"result-{result.job_id}", reason=DeadReason.ORPHANED_RESULT, result=data,
                      error_type="OrphanedResult", error=why, attempts=result.attempts, worker=result.worker,
                      session=o.session, first_failed_at=result.finished_at or now, last_failed_at=now)
