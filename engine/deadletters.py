"""The dead-letter store: where every job that cannot end as a result goes.

Bounded by count (``dlq_max_entries``, oldest dropped first) and by age
(``dlq_ttl_seconds``, pruned on every write): a sorted set of ids by failure
time, a hash of entries, and a small hash of counters. Writes are one Lua call,
so the three never disagree.
"""

from __future__ import annotations

import time
import uuid
from enum import Enum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from .keys import Keys

RAW_MAX_BYTES = 64 * 1024
TRACEBACK_MAX_CHARS = 4000


class DeadReason(str, Enum):
    HANDLER_FAILED = "handler_failed"
    INVALID_PAYLOAD = "invalid_payload"
    RESULT_PUSH_FAILED = "result_push_failed"
    RESULT_TIMEOUT = "result_timeout"
    WORKER_LOST = "worker_lost"
    ORPHANED_RESULT = "orphaned_result"


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


_ADD = """
local zset, hash, stats = KEYS[1], KEYS[2], KEYS[3]
local id, body, now = ARGV[1], ARGV[2], tonumber(ARGV[3])
local max_entries, ttl = tonumber(ARGV[4]), tonumber(ARGV[5])
local old = redis.call('ZRANGEBYSCORE', zset, '-inf', '(' .. (now - ttl), 'LIMIT', 0, 1000)
if #old > 0 then
  redis.call('ZREM', zset, unpack(old))
  redis.call('HDEL', hash, unpack(old))
  redis.call('HINCRBY', stats, 'dropped_age', #old)
end
redis.call('ZADD', zset, now, id)
redis.call('HSET', hash, id, body)
redis.call('HINCRBY', stats, 'added', 1)
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
return redis.call('ZCARD', zset)
"""


class DeadLetterStore:
    """Bounded dead letters of one queue. Methods take the redis client to use."""

    def __init__(self, keys: Keys, max_entries: int, ttl_seconds: int) -> None:
        self.keys = keys
        self.max_entries = max_entries
        self.ttl_seconds = ttl_seconds

    def _key_args(self) -> list[str]:
        return [self.keys.dlq, self.keys.dlq_entries, self.keys.dlq_stats]

    def _add_args(self, entry: DeadLetter, now: float | None) -> list[Any]:
        stamp = time.time() if now is None else now
        return [_ADD, 3, *self._key_args(), entry.id, entry.model_dump_json(), repr(stamp), self.max_entries, self.ttl_seconds]

    async def add(self, client: Any, entry: DeadLetter, now: float | None = None) -> int:
        """Store one entry; returns how many the store holds now."""
        return int(await client.eval(*self._add_args(entry, now)))

    def add_to(self, pipe: Any, entry: DeadLetter, now: float | None = None) -> Any:
        """Queue the same write on a MULTI pipeline, beside the job's acknowledgement."""
        return pipe.eval(*self._add_args(entry, now))

    async def count(self, client: Any) -> int:
        return int(await client.zcard(self.keys.dlq))

    async def stats(self, client: Any) -> dict[str, int]:
        raw = await client.hgetall(self.keys.dlq_stats)
        return {k.decode(): int(v) for k, v in raw.items()}

    async def get(self, client: Any, entry_id: str) -> DeadLetter | None:
        body = await client.hget(self.keys.dlq_entries, entry_id)
        return DeadLetter.model_validate_json(body) if body else None

    async def newest(self, client: Any, limit: int = 50, offset: int = 0) -> list[DeadLetter]:
        ids = await client.zrevrange(self.keys.dlq, offset, offset + limit - 1)
        if not ids:
            return []
        bodies = await client.hmget(self.keys.dlq_entries, ids)
        return [DeadLetter.model_validate_json(b) for b in bodies if b]
