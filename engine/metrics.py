"""Health metrics: counters and rolling latency windows, kept by producers and workers.

Each process keeps its own; each publishes a snapshot in its heartbeat key
(TTL'd, bounded), so ``seawall metrics`` can show the whole fleet from one
place, as JSON or in Prometheus' text exposition format.
"""

from __future__ import annotations

import json
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any, Iterable

WINDOW = 1024  # samples kept per latency window


def percentile(samples: Iterable[float], q: float) -> float | None:
    ordered = sorted(samples)
    if not ordered:
        return None
    index = min(len(ordered) - 1, max(0, int(round(q * (len(ordered) - 1)))))
    return ordered[index]


@dataclass
class Window:
    """The last WINDOW samples of a duration, in seconds."""

    samples: deque[float] = field(default_factory=lambda: deque(maxlen=WINDOW))

    def add(self, seconds: float) -> None:
        self.samples.append(seconds)

    def summary(self) -> dict[str, float | None]:
        s = list(self.samples)
        ms = lambda v: None if v is None else round(v * 1000, 3)  # noqa: E731
        return {"p50_ms": ms(percentile(s, 0.5)), "p95_ms": ms(percentile(s, 0.95)),
                "p99_ms": ms(percentile(s, 0.99)), "samples": len(s)}


@dataclass
class Rate:
    """Events per second over the last ``span`` seconds."""

    span: float = 10.0
    stamps: deque[float] = field(default_factory=lambda: deque(maxlen=100_000))

    def mark(self, n: int = 1, now: float | None = None) -> None:
        t = time.monotonic() if now is None else now
        self.stamps.extend([t] * n)

    def per_second(self, now: float | None = None) -> float:
        t = time.monotonic() if now is None else now
        while self.stamps and self.stamps[0] < t - self.span:
            self.stamps.popleft()
        return round(len(self.stamps) / self.span, 3)


@dataclass
class Metrics:
    """One process's counters; ``snapshot()`` is what its heartbeat publishes."""

    role: str
    counters: Counter[str] = field(default_factory=Counter)
    redis_latency: Window = field(default_factory=Window)
    job_latency: Window = field(default_factory=Window)
    results: Rate = field(default_factory=Rate)

    def inc(self, name: str, n: int = 1) -> None:
        self.counters[name] += n

    def snapshot(self, link: Any = None, **gauges: Any) -> dict[str, Any]:
        out: dict[str, Any] = {"role": self.role, "counters": dict(self.counters), "gauges": dict(gauges),
                               "job_latency": self.job_latency.summary(),
                               "results_per_second": self.results.per_second()}
        if link is not None:
            snap = link.breaker.snapshot()
            window = Window()
            window.samples.extend(link.latencies)
            out["redis"] = {"errors": dict(link.errors), "breaker": snap.state.value, "trips": snap.trips,
                            "consecutive_errors": snap.errors, "latency": window.summary()}
        return out


# -- Prometheus text exposition --------------------------------------------------

_HELP = {
    "seawall_queue_depth": ("gauge", "Jobs in a queue structure, by state (queued, processing, dead, orphaned)."),
    "seawall_jobs_total": ("counter", "Jobs by outcome, per process (submitted, succeeded, failed, timed_out, ...)."),
    "seawall_redis_errors_total": ("counter", "Redis errors by kind (connection, timeout, response)."),
    "seawall_breaker_open": ("gauge", "1 while the circuit breaker is open or half-open."),
    "seawall_breaker_trips_total": ("counter", "Times the circuit breaker opened."),
    "seawall_redis_latency_seconds": ("gauge", "Redis round-trip latency over a rolling window, by quantile."),
    "seawall_job_latency_seconds": ("gauge", "End-to-end job latency (enqueue to result) by quantile."),
    "seawall_results_per_second": ("gauge", "Results delivered per second over the last 10 s."),
    "seawall_spool_size": ("gauge", "Outcomes waiting in a worker's local spool."),
    "seawall_workers": ("gauge", "Workers with a live heartbeat."),
    "seawall_ping_seconds": ("gauge", "Round trip of one PING from the metrics reader."),
}


def _labels(labels: dict[str, Any]) -> str:
    if not labels:
        return ""
    body = ",".join(f'{k}="{_escape(str(v))}"' for k, v in sorted(labels.items()))
    return "{" + body + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def prometheus(fleet: dict[str, Any]) -> str:
    """The snapshot of ``collect_fleet`` as Prometheus text (version 0.0.4)."""
    rows: dict[str, list[str]] = {name: [] for name in _HELP}

    def put(name: str, labels: dict[str, Any], value: float | int | None) -> None:
        if value is not None:
            rows[name].append(f"{name}{_labels(labels)} {float(value)!r}")

    base = {"namespace": fleet["namespace"], "queue": fleet["queue"]}
    for state, n in fleet["depths"].items():
        put("seawall_queue_depth", base | {"state": state}, n)
    put("seawall_workers", base, fleet["workers_alive"])
    put("seawall_ping_seconds", base, fleet["ping_seconds"])
    for proc in fleet["processes"]:
        who = base | {"role": proc["role"], "id": proc["id"]}
        for outcome, n in proc["counters"].items():
            put("seawall_jobs_total", who | {"outcome": outcome}, n)
        put("seawall_results_per_second", who, proc.get("results_per_second"))
        for q in ("p50", "p95", "p99"):
            v = proc["job_latency"].get(f"{q}_ms")
            put("seawall_job_latency_seconds", who | {"quantile": f"0.{q[1:]}"}, None if v is None else v / 1000)
        redis = proc.get("redis") or {}
        for kind, n in (redis.get("errors") or {}).items():
            put("seawall_redis_errors_total", who | {"kind": kind}, n)
        if redis:
            put("seawall_breaker_open", who, 0 if redis["breaker"] == "closed" else 1)
            put("seawall_breaker_trips_total", who, redis["trips"])
            for q in ("p50", "p95", "p99"):
                v = redis["latency"].get(f"{q}_ms")
                put("seawall_redis_latency_seconds", who | {"quantile": f"0.{q[1:]}"}, None if v is None else v / 1000)
        if "spooled" in proc.get("gauges", {}):
            put("seawall_spool_size", who, proc["gauges"]["spooled"])
    lines = []
    for name, (kind, text) in _HELP.items():
        if rows[name]:
            lines += [f"# HELP {name} {text}", f"# TYPE {name} {kind}", *rows[name]]
    return "\n".join(lines) + "\n"


# -- the fleet, read from heartbeats ------------------------------------------------


async def collect_fleet(client: Any, keys: Any, *, orphans: bool = True) -> dict[str, Any]:
    """Depths, live workers and every live process's published metrics, for one queue."""
    from .monitor import read_depths  # noqa: PLC0415
    from .orphans import count_orphans  # noqa: PLC0415

    started = time.perf_counter()
    await client.ping()
    ping = time.perf_counter() - started
    depths = await read_depths(client, keys)
    processes: list[dict[str, Any]] = []
    worker_keys = [keys.worker(w.worker_id) for w in depths.workers if w.alive]
    session_keys = [k async for k in client.scan_iter(match=keys.session("*"), count=500)]
    bodies = await client.mget(worker_keys + session_keys) if worker_keys or session_keys else []
    for key, body in zip(worker_keys + session_keys, bodies):
        if not body:
            continue
        try:
            info = json.loads(body)
        except ValueError:
            continue
        metrics = info.get("metrics")
        if isinstance(metrics, dict):
            name = key.decode() if isinstance(key, bytes) else key
            processes.append(metrics | {"id": name.rsplit(":", 1)[-1]})
    orphaned = (await count_orphans(client, keys))[0] if orphans else None
    return {
        "namespace": keys.namespace, "queue": keys.queue, "at": time.time(), "ping_seconds": round(ping, 6),
        "depths": {"queued": depths.queued, "processing": depths.processing, "dead": depths.dead,
                   **({"orphaned": orphaned} if orphaned is not None else {})},
        "workers_alive": sum(1 for w in depths.workers if w.alive), "processes": processes,
    }
