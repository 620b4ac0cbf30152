"""The console's engine side: producer, polling, worker subprocesses.

It never touches a widget. Everything it learns goes to the app as a message
(``post``), batched to about ten a second so a flood of results cannot flood
the screen. All Redis calls happen here, in background tasks.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from textual.message import Message

from engine.breaker import BreakerOpenError, BreakerSnapshot, BreakerState
from engine.connection import OUTAGE_ERRORS, describe_error
from engine.errors import SeawallError
from engine.events import Event, EventLog
from engine.monitor import read_depths
from engine.procs import ProcState, WorkerProcess
from engine.producer import JobOutcome, Producer
from engine.runtime import Runtime

from . import messages as m

FLUSH_SECONDS = 0.1
POLL_SECONDS = 1.0
ORPHAN_SCAN_SECONDS = 15.0


@dataclass
class LaunchedWorker:
    """A worker subprocess this console started, and what we last heard of it."""

    worker_id: str
    process: WorkerProcess
    launched_at: float = field(default_factory=time.time)

    @property
    def state(self) -> str:
        p = self.process
        if p.state is ProcState.EXITED:
            return f"exited {p.returncode}"
        if p.state is ProcState.KILLED:
            return "killed"
        return p.state.value

    @property
    def last_line(self) -> str:
        return self.process.lines[-1] if self.process.lines else ""


class ConsoleBackend:
    def __init__(
        self,
        runtime: Runtime,
        post: Callable[[Message], Any],
        *,
        session_id: str | None = None,
        events: EventLog | None = None,
    ) -> None:
        self.runtime = runtime
        self.post = post
        self.events = events or EventLog(None, "debug", runtime.redactor)
        self.events.subscribe(self._on_event)
        self.producer = Producer(runtime.settings, runtime.url, self.events, session_id=session_id)
        self.producer.link.breaker.subscribe(self._on_breaker)
        self.workers: dict[str, LaunchedWorker] = {}
        self._outcomes: list[JobOutcome] = []
        self._events: list[Event] = []
        self._workers_dirty: set[str] = set()
        self._tasks: list[asyncio.Task[Any]] = []
        self._notes_total = 0
        self._notes_done = 0
        self._notes_ids: set[str] = set()
        self._started = False
        self.closed = False

    @property
    def session_id(self) -> str:
        return self.producer.session_id

    @property
    def breaker(self) -> BreakerSnapshot:
        return self.producer.link.breaker.snapshot()

    # -- lifecycle -----------------------------------------------------------

    async def start(self) -> None:
        """Connect in the background: the console opens even if Redis is down."""
        self._tasks.append(asyncio.create_task(self._flush_loop(), name="console-flush"))
        self._tasks.append(asyncio.create_task(self._connect_then_run(), name="console-engine"))

    async def _connect_then_run(self) -> None:
        delay = 0.5
        while not self._started:
            try:
                await self.producer.start()
                self._started = True
            except SeawallError as exc:
                self.events.emit("console_connect_failed", level="warning", error=str(exc), retry_in=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.runtime.settings.breaker_reset_seconds)
        self.post(m.Connected(self.producer.server_version))
        self._tasks.append(asyncio.create_task(self._collect_loop(), name="console-collect"))
        self._tasks.append(asyncio.create_task(self._poll_loop(), name="console-poll"))
        self._tasks.append(asyncio.create_task(self._orphan_loop(), name="console-orphans"))

    async def shutdown(self, stop_workers: bool = True) -> None:
        """Stop launched workers (unless kept), then close the producer as the engine does."""
        if self.closed:
            return
        self.closed = True
        if stop_workers:
            grace = self.runtime.settings.shutdown_grace_seconds + self.runtime.settings.blpop_timeout_seconds + 2
            await asyncio.gather(*(w.process.stop(grace) for w in self.workers.values() if w.process.alive),
                                 return_exceptions=True)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._started:
            await self.producer.close()
        else:
            await self.producer.link.close()

    # -- loops ---------------------------------------------------------------

    async def _collect_loop(self) -> None:
        while True:
            outcomes = await self.producer.collect()
            if outcomes:
                self._outcomes.extend(outcomes)
                self._count_notes(outcomes)

    async def _poll_loop(self) -> None:
        keys = self.producer.keys
        while True:
            started = time.perf_counter()
            try:
                depths = await self.producer.link.call(lambda c: read_depths(c, keys))
                latency = (time.perf_counter() - started) * 1000
                self.post(m.DepthsRead(depths, "", latency))
            except (*OUTAGE_ERRORS, BreakerOpenError) as exc:
                self.post(m.DepthsRead(None, describe_error(exc), None))
            except Exception as exc:  # noqa: BLE001 - a bad reply must not end the polling
                self.post(m.DepthsRead(None, describe_error(exc), None))
            await asyncio.sleep(POLL_SECONDS)

    async def _orphan_loop(self) -> None:
        try:
            from engine.orphans import scan_orphans  # noqa: PLC0415 - optional until that module lands
        except ImportError:
            return
        keys = self.producer.keys
        while True:
            try:
                found = await self.producer.link.call(lambda c: scan_orphans(c, keys))
                self.post(m.OrphansCounted(len(found)))
            except Exception:  # noqa: BLE001 - counted by the link when it is Redis
                self.post(m.OrphansCounted(None))
            await asyncio.sleep(ORPHAN_SCAN_SECONDS)

    async def _flush_loop(self) -> None:
        """About ten batches a second, whatever the rate of results and events."""
        while True:
            await asyncio.sleep(FLUSH_SECONDS)
            if self._outcomes:
                batch, self._outcomes = self._outcomes, []
                self.post(m.OutcomesArrived(batch))
            if self._events:
                batch_e, self._events = self._events, []
                self.post(m.EngineEvents(batch_e))
            if self._workers_dirty:
                self._workers_dirty.clear()
                self.post(m.WorkersChanged())
            if self._notes_total:
                self.post(m.NotesProgress(self._notes_done, self._notes_total))
                if self._notes_done >= self._notes_total:
                    self._notes_total = self._notes_done = 0

    # -- engine callbacks (sync, from engine code) ------------------------------

    def _on_event(self, event: Event) -> None:
        self._events.append(event)
        if len(self._events) > 2000:  # a flood: keep the newest, the log file has all
            del self._events[:1000]

    def _on_breaker(self, snap: BreakerSnapshot, previous: BreakerState) -> None:
        self.post(m.BreakerChanged(snap, previous))

    # -- actions ---------------------------------------------------------------

    async def submit(self, handler: str, payload: Any, count: int) -> None:
        try:
            if count == 1:
                jobs = [await self.producer.submit(handler, payload)]
            else:
                jobs = await self.producer.submit_many(handler, [payload] * count)
            self.post(m.JobsSubmitted(jobs))
        except SeawallError as exc:
            self.post(m.SubmitFailed(str(exc)))

    async def submit_notes(self, folder: Path) -> None:
        from engine.notes import note_payload  # noqa: PLC0415

        files = sorted(p for p in folder.rglob("*.md") if p.is_file())
        if not files:
            self.post(m.SubmitFailed(f"no .md notes under {folder}"))
            return
        payloads, names = [], []
        for path in files:
            rel = path.relative_to(folder).as_posix()
            try:
                payloads.append(await asyncio.to_thread(note_payload, path, rel))
                names.append(rel)
            except OSError as exc:
                self.events.emit("note_unreadable", level="warning", path=rel, error=exc.strerror)
        try:
            jobs = await self.producer.submit_many("notes.cards", payloads, names=names)
        except SeawallError as exc:
            self.post(m.SubmitFailed(str(exc)))
            return
        self._notes_ids = {j.id for j in jobs}
        self._notes_total, self._notes_done = len(jobs), 0
        self.post(m.JobsSubmitted(jobs))

    def _count_notes(self, outcomes: list[JobOutcome]) -> None:
        if self._notes_total:
            self._notes_done += sum(1 for o in outcomes if o.job_id in self._notes_ids)

    async def launch_worker(self) -> LaunchedWorker:
        worker_id = f"console-{self.session_id}-{len(self.workers) + 1}"
        proc = WorkerProcess(self.runtime, "--worker-id", worker_id, capture=True, log_level="info",
                             on_line=lambda p, line: self._workers_dirty.add(worker_id))
        launched = LaunchedWorker(worker_id, proc)
        self.workers[worker_id] = launched
        await proc.start()
        self.events.emit("worker_launched", worker=worker_id, pid=proc.pid)
        asyncio.create_task(self._watch_exit(launched))
        self._workers_dirty.add(worker_id)
        return launched

    async def _watch_exit(self, launched: LaunchedWorker) -> None:
        code = await launched.process.wait()
        self.events.emit("worker_exited", worker=launched.worker_id, pid=launched.process.pid, code=code,
                         state=launched.state)
        self._workers_dirty.add(launched.worker_id)

    def stop_worker(self, worker_id: str) -> None:
        w = self.workers.get(worker_id)
        if w:
            w.process.terminate()
            self._workers_dirty.add(worker_id)

    def kill_worker(self, worker_id: str) -> None:
        w = self.workers.get(worker_id)
        if w:
            w.process.kill()
            self._workers_dirty.add(worker_id)

    @property
    def running_workers(self) -> list[LaunchedWorker]:
        return [w for w in self.workers.values() if w.process.alive]
