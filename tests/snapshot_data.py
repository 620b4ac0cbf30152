"""Fixed data for console snapshots: the same pixels on every run."""

from __future__ import annotations

import json
import uuid
from types import SimpleNamespace

from engine.breaker import BreakerSnapshot, BreakerState
from engine.deadletters import DeadLetter, DeadReason
from engine.events import Event
from engine.models import Job, JobState, Outcome, Result
from engine.monitor import Depths, WorkerBeat
from engine.orphans import Orphan
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
    if app.current_mode in ("deadletters", "orphans"):  # the counts agree with what those screens list
        state.depths = Depths(queued=1, processing=1, dead=len(dead_letters()), workers=(beat,), at=NOW)
        state.orphans = len(orphans())
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
    populate_dead_letters(app)
    populate_orphans(app)
    app.screen.sync(Changes.all())
    app.screen.sync(Changes(outcomes=outcomes))
    del rows


TRACEBACK = """Traceback (most recent call last):
  File "engine/worker.py", line 480, in _run
    value = await self.registry.run(job.handler, job.payload, ctx)
  File "engine/handlers.py", line 140, in flaky
    raise HandlerFailure(f"flaky: failure {ctx.failures + 1} of {fail_times}")
engine.handlers.HandlerFailure: flaky: failure 3 of 4"""


def dead_letters() -> list[DeadLetter]:
    """One of each kind an operator meets, newest first, with fixed ids and times."""
    def job_entry(i: int, handler: str, payload: object, reason: DeadReason, **kw) -> DeadLetter:
        job = _job(100 + i, handler, payload).model_copy(update={"attempt": 3, "failures": 3})
        return DeadLetter(id=job.id, reason=reason, job=job.model_dump(mode="json"), session=SESSION,
                          worker="console-s0123456789ab-1", first_failed_at=NOW - 120 - 60 * i,
                          last_failed_at=NOW - 90 - 60 * i, **kw)

    entries = [
        job_entry(1, "flaky", {"fail_times": 4, "n": 1}, DeadReason.HANDLER_FAILED, error_type="HandlerFailure",
                  error="flaky: failure 3 of 4", traceback=TRACEBACK, attempts=3),
        job_entry(2, "flaky", {"fail_times": 4, "n": 2}, DeadReason.HANDLER_FAILED, error_type="HandlerFailure",
                  error="flaky: failure 3 of 4", traceback=TRACEBACK, attempts=3),
        job_entry(3, "sleep", {"seconds": 30}, DeadReason.RESULT_TIMEOUT, error_type="ResultTimeout",
                  error="no result before the producer's deadline"),
        job_entry(4, "echo", {"n": 4}, DeadReason.WORKER_LOST, error_type="WorkerLost",
                  error="its worker died while running it, 4 times (last: w7)", attempts=1),
        DeadLetter(id=f"raw-{uuid.UUID(int=205).hex}", reason=DeadReason.INVALID_PAYLOAD, raw="not json at all",
                   raw_bytes=15, error_type="JSONDecodeError", error="job is not JSON: Expecting value",
                   worker="console-s0123456789ab-1", first_failed_at=NOW - 400, last_failed_at=NOW - 400),
        DeadLetter(id=f"result-sGone-echo-{uuid.UUID(int=206).hex}", reason=DeadReason.ORPHANED_RESULT,
                   result={"job_id": f"sGone-echo-{uuid.UUID(int=206).hex}", "outcome": "ok", "value": {"n": 6},
                           "handler": "echo"},
                   error_type="OrphanedResult", error="session sGone is gone: nobody will read this result",
                   attempts=1, session="sGone", worker="w2", first_failed_at=NOW - 7200, last_failed_at=NOW - 3600),
    ]
    return entries


def populate_dead_letters(app: SeawallApp) -> None:
    """The first (and only) page of a store of six entries, with one entry marked."""
    view = app.state.dead
    entries = dead_letters()
    view.apply_page(view.request, entries, 0, None, len(entries), len(entries), NOW)
    view.toggle_mark(entries[1])


def orphans() -> list[Orphan]:
    return [
        Orphan("seawall:{default}:results:sDead0a1b2c3", "sDead0a1b2c3", 3, 5400, 720, False),
        Orphan("seawall:{default}:results:sNoTtl9f8e7d", "sNoTtl9f8e7d", 12, -1, 86400, True),
    ]


def populate_orphans(app: SeawallApp) -> None:
    view = app.state.orphan_scan
    view.start()
    view.progress(20_000, 20_000)
    view.finish(orphans(), False, "", NOW - 5)
