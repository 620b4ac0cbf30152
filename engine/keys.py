"""Every Redis key Seawall writes is named here, and nowhere else.

All keys of one queue share the hash tag ``{<queue>}`` so that every multi-key
command (BLMOVE, the MULTI that pushes a result and acknowledges its job, the
dead-letter scripts) touches a single Redis Cluster slot.

What bounds each key:

==========================  =======  ==============================================
key                         type     bound
==========================  =======  ==============================================
``queue``                   list     drained by workers (bounded by producers)
``processing:<worker>``     list     at most the worker's concurrency
``results:<session>``       list     TTL ``result_queue_ttl_seconds`` /
                                     ``worker_result_ttl_seconds``; deleted on
                                     producer shutdown
``taken:<session>``         list     results the producer took and has not yet
                                     handed out (at most a drain batch + 1);
                                     TTL ``result_queue_ttl_seconds``, set in the
                                     write that fills it; deleted on shutdown
``session:<session>``       string   TTL ``3 * heartbeat_seconds``
``worker:<worker>``         string   TTL ``lease_seconds``
``workers``                 zset     worker ids by last heartbeat; ids silent for
                                     ``WORKER_REGISTRY_SECONDS`` are pruned
``lost:<job>``              string   TTL ``LOST_COUNT_SECONDS``: deliveries of a job
                                     lost with a dead worker (poison detection)
``dlq`` / ``dlq:entries``   zset /   ``dlq_max_entries`` entries and
                            hash     ``dlq_ttl_seconds`` of age
``dlq:stats``               hash     a fixed handful of counters
==========================  =======  ==============================================
"""

from __future__ import annotations

from dataclasses import dataclass


#: How long a silent worker stays in the ``workers`` registry (so its
#: processing list can still be found and reaped), before it is pruned.
WORKER_REGISTRY_SECONDS = 24 * 3600
#: How long the count of a job's lost deliveries is remembered.
LOST_COUNT_SECONDS = 24 * 3600


def session_ttl(heartbeat_seconds: float) -> int:
    """A session key outlives three missed heartbeats, no more."""
    return max(2, int(3 * heartbeat_seconds + 0.999))


@dataclass(frozen=True, slots=True)
class Keys:
    """Key names of one queue under one namespace."""

    namespace: str
    queue: str

    @property
    def prefix(self) -> str:
        return f"{self.namespace}:{{{self.queue}}}"

    @property
    def queue_list(self) -> str:
        return f"{self.prefix}:queue"

    def processing(self, worker_id: str) -> str:
        return f"{self.prefix}:processing:{worker_id}"

    @property
    def processing_pattern(self) -> str:
        return f"{self.prefix}:processing:*"

    def results(self, session_id: str) -> str:
        return f"{self.prefix}:results:{session_id}"

    @property
    def results_pattern(self) -> str:
        return f"{self.prefix}:results:*"

    def taken(self, session_id: str) -> str:
        return f"{self.prefix}:taken:{session_id}"

    def session(self, session_id: str) -> str:
        return f"{self.prefix}:session:{session_id}"

    def worker(self, worker_id: str) -> str:
        return f"{self.prefix}:worker:{worker_id}"

    @property
    def workers(self) -> str:
        return f"{self.prefix}:workers"

    def lost(self, job_id: str) -> str:
        return f"{self.prefix}:lost:{job_id}"

    @property
    def dlq(self) -> str:
        return f"{self.prefix}:dlq"

    @property
    def dlq_entries(self) -> str:
        return f"{self.prefix}:dlq:entries"

    @property
    def dlq_stats(self) -> str:
        return f"{self.prefix}:dlq:stats"

    @property
    def namespace_pattern(self) -> str:
        """Every key of every queue in this namespace."""
        return f"{self.namespace}:*"

    def suffix_of(self, key: str, kind: str) -> str | None:
        """The id part of ``<prefix>:<kind>:<id>``, or None for another key."""
        head = f"{self.prefix}:{kind}:"
        return key[len(head):] if key.startswith(head) else None
