"""Fixed data for console snapshots: the same pixels on every run."""

from __future__ import annotations

import json
import uuid
from types import SimpleNamespace

from engine.breaker import BreakerSnapshot, BreakerState
from engine.events import Event
from engine.models import Job, JobState, Outcome, Result
from engine.monitor import Depths, WorkerBeat
from engine.procs import ProcState, WorkerProcess
from engine.producer import JobOutcome
from tui.app import SeawallApp, build_app
from tui.backend import LaunchedWorker
from tui.changes import Changes

from .console_support import runtime_for

NOW = 1_767_225_600.0  # 2026-01-01 00:00:00 UTC
SESSION = "s0123456789ab"


def fixed_clock() -> float:
    return NOW


def make_app() -> SeawallApp:
    runtime = runtime_for("redis://:hunter2@redis.internal:6379/0")
    return build_app(runtime, session_id=SESSION, clock=fixed_clock, autostart=False, notes_dir="examples/vault")


def _job(i: int, handler: str, payload: object, name: str | None = None) -> Job:
    uid = uuid.UUID(int=i).hex
    return Job(id=f"{SESSION}-{name or handler}-{uid}", session=SESSION, result_key=f"seawall:{{default}}:results:{SESSION}",
               handler=handler, payload=payload, enqueued_at=NOW - 30 + i)


def populate(app: SeawallApp) -> None:
    """Jobs in every state, results, depths, events, a breaker that tripped once, one worker."""
    state = app.state
    state.server_version = "7.0.15"
    jobs = [_job(i, "echo", {"n": i}) for i in range(1, 9)]
    jobs += [_job(9, "fail", {}), _job(10, "sleep", {"seconds": 30}), _job(11, "notes.cards", {}, "lang_python.md"),
             _job(12, "echo", {"n": 12})]
    rows = state.add_jobs(jobs)
    outcomes = []
    for i, job in enumerate(jobs[:8], start=1):
        r = Result(job_id=job.id, outcome=Outcome.OK, value=job.payload, attempts=1, worker="w1", finished_at=NOW)
        outcomes.append(JobOutcome(job, JobState.DONE, r, 0.004 + i / 1000))
    fail = Result(job_id=jobs[8].id, outcome=Outcome.ERROR, error_type="HandlerFailure", error="failed on purpose",
                  attempts=3, finished_at=NOW)
    outcomes.append(JobOutcome(jobs[8], JobState.FAILED, fail, 0.321))
    outcomes.append(JobOutcome(jobs[10], JobState.TIMED_OUT, None, 20.0))
    state.apply_outcomes(outcomes)
    state.mark_running({jobs[9].id})
    for i, v in enumerate([0, 0, 3, 8, 12, 20, 18, 9, 4, 10, 0, 2, 6, 14, 22, 30, 12, 5, 1, 0] * 3):
        state.throughput.append(float(v))
        state.latency_ms.append(0.2 + (i % 7) / 10)
    beat = WorkerBeat("console-s0123456789ab-1", True, 1, state="busy", done=9, failed=1, pid=4242,
                      current=(jobs[9].id,), age=1.0, breaker="closed")
    state.depths = Depths(queued=1, processing=1, dead=2, workers=(beat,), at=NOW)
    state.orphans = 1
    state.breaker = BreakerSnapshot(BreakerState.CLOSED, 0, 5, 1, 0.0, "")
    state.total_results = 10
    lines = [
        {"ts": NOW, "level": "info", "event": "redis_pool_created", "role": "worker", "url": "redis://:***@redis.internal:6379/0"},
        {"ts": NOW, "level": "info", "event": "worker_started", "worker": beat.worker_id, "concurrency": 1},
        {"ts": NOW, "level": "warning", "event": "job_dead_lettered", "job_id": jobs[8].id, "reason": "handler_failed"},
    ]
    proc = WorkerProcess(app.runtime)
    proc.proc = SimpleNamespace(pid=4242, returncode=None)  # shown, never started
    proc.state = ProcState.RUNNING
    proc.lines.extend(json.dumps(line) for line in lines)
    app.backend.workers[beat.worker_id] = LaunchedWorker(beat.worker_id, proc, launched_at=NOW - 60)
    events = [
        Event("redis_pool_created", "info", NOW - 20, {"role": "producer", "url": "redis://:***@redis.internal:6379/0"}),
        Event("breaker_opened", "warning", NOW - 15, {"role": "producer", "errors": 5, "threshold": 5, "trips": 1,
                                                      "last_error": "ConnectionError: Connection refused."}),
        Event("breaker_half_open", "info", NOW - 5, {"role": "producer", "trips": 1}),
        Event("breaker_closed", "info", NOW - 5, {"role": "producer", "trips": 1}),
        Event("job_dead_lettered", "warning", NOW - 1, {"job_id": jobs[8].id, "reason": "handler_failed"}),
    ]
    app.state_events.extend(events)
    app.screen.sync(Changes.all())
    app.screen.sync(Changes(outcomes=outcomes))
    del rows
