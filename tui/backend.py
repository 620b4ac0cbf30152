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
from typing import Any, Awaitable, Callable, Coroutine

from textual.message import Message

from engine.breaker import BreakerOpenError, BreakerSnapshot, BreakerState
from engine.connection import OUTAGE_ERRORS, describe_error
from engine.deadletters import DeadReason, RetryReport
from engine.errors import SeawallError
from engine.events import Event, EventLog
from engine.monitor import read_depths
from engine.orphans import Orphan, adopt_orphans, delete_orphans, scan_orphans
from engine.procs import ProcState, WorkerProcess
from engine.producer import JobOutcome, Producer
from engine.reaper import Reaper
from engine.runtime import Runtime

from . import messages as m
from .state import plural

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
        read_only: bool = False,
    ) -> None:
        self.runtime = runtime
        self.read_only = read_only
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
        self._init_operations()

    @property
    def session_id(self) -> str:
        return self.producer.session_id

    @property
    def breaker(self) -> BreakerSnapshot:
        return self.producer.link.breaker.snapshot()

    # -- lifecycle -----------------------------------------------------------

    async def start(self) -> None:
        """Connect in the background: the console opens even if Redis is down."""
        self.live = True
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
        if not self.read_only:
            self._tasks.append(asyncio.create_task(self._reaper_loop(), name="console-reaper"))

    async def shutdown(self, stop_workers: bool = True) -> None:
        """Stop launched workers (unless kept), then close the producer as the engine does."""
        if self.closed:
            return
        self.closed = True
        if stop_workers:
            grace = self.runtime.settings.shutdown_grace_seconds + self.runtime.settings.blpop_timeout_seconds + 2
            await asyncio.gather(*(w.process.stop(grace) for w in self.workers.values() if w.process.alive),
                                 return_exceptions=True)
        self._cancel_operations()
        for task in self._tasks:
            task.cancel()
        pending = [t for t in (*self._tasks, *self._ops) if not t.done()]
        if pending:
            # bounded: a task that swallowed its cancel (redis-py can turn one into an error) must not hang quit
            _, stuck = await asyncio.wait(pending, timeout=self.runtime.settings.redis_socket_timeout_seconds + 1)
            for task in stuck:
                self.events.emit("console_task_stuck", level="warning", task=task.get_name())
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


    # -- screens 3 and 4: dead letters and orphaned result lists ---------------------
    #
    # Each method below starts one background task and returns at once; the task
    # posts its answer as a message (tui/messages.py). Nothing here touches state
    # or widgets. An offline backend (never started, as in snapshots) does nothing.

    def _init_operations(self) -> None:
        self.live = False
        self.dlq = self.producer.dlq
        self._ops: set[asyncio.Task[Any]] = set()
        self._orphan_cancel: asyncio.Event | None = None
        self._orphan_task: asyncio.Task[Any] | None = None
        self.reaper: Reaper | None = None
        self.reaper_runs = 0

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None] | None:
        if not self.live or self.closed:
            coro.close()
            return None
        task = asyncio.create_task(coro, name=name)
        self._ops.add(task)
        task.add_done_callback(self._ops.discard)
        return task

    def _cancel_operations(self) -> None:
        if self._orphan_cancel is not None:
            self._orphan_cancel.set()
        for task in self._ops:
            task.cancel()

    async def _call(self, fn: Callable[[Any], Awaitable[Any]]) -> Any:
        return await self.producer.link.call(fn)

    def _refuse(self, what: str) -> bool:
        """A mutation asked of a read-only console: refused, and said so."""
        if self.read_only:
            self.post(m.DeadLettersActed(what, f"not {what}: the console is read-only", [], ok=False))
        return self.read_only

    # dead letters ---------------------------------------------------------------

    def load_dead_letters(self, request: int, *, offset: int, limit: int, reason: str | None,
                          text: str | None) -> bool:
        """One page (DeadLetterStore.page: a rank window, never the whole store)."""
        return self._spawn(self._load_dead_letters(request, offset, limit, reason, text), "console-dlq-page") is not None

    async def _load_dead_letters(self, request: int, offset: int, limit: int, reason: str | None,
                                 text: str | None) -> None:
        why = DeadReason(reason) if reason else None
        try:
            page = await self._call(lambda c: self.dlq.page(c, limit=limit, offset=offset, reason=why, text=text))
        except Exception as exc:  # noqa: BLE001 - outage, breaker open, or a bad reply: shown on the screen
            self.post(m.DeadLettersPage(request, None, offset, describe_error(exc)))
            return
        self.post(m.DeadLettersPage(request, page, offset))

    def count_dead_matching(self, request: int, reason: str | None, text: str | None) -> bool:
        """How many entries ``R`` would retry, so its confirm can say so."""
        return self._spawn(self._count_dead_matching(request, reason, text), "console-dlq-count") is not None

    async def _count_dead_matching(self, request: int, reason: str | None, text: str | None) -> None:
        why = DeadReason(reason) if reason else None

        async def count(c: Any) -> tuple[int, int]:
            if why is None and not text:
                total = await self.dlq.count(c)
                return total, total  # retryable unknown without reading: the retry report says
            found = retryable = offset = 0
            for _ in range(MAX_COUNT_PAGES):
                page = await self.dlq.page(c, limit=COUNT_PAGE, offset=offset, reason=why, text=text)
                found += len(page.entries)
                retryable += sum(1 for e in page.entries if e.retryable)
                if page.next_offset is None or page.next_offset >= page.total:
                    break
                offset = page.next_offset
            return found, retryable

        try:
            found, retryable = await self._call(count)
        except Exception as exc:  # noqa: BLE001
            self.post(m.DeadLettersMatched(request, reason, text, None, error=describe_error(exc)))
            return
        self.post(m.DeadLettersMatched(request, reason, text, found, retryable))

    def retry_dead_letters(self, ids: list[str]) -> bool:
        if self._refuse("retried"):
            return False
        return self._spawn(self._retry(lambda c: self.dlq.retry(
            c, ids, session_id=self.session_id, result_key=self.producer.result_key)), "console-dlq-retry") is not None

    def retry_dead_matching(self, reason: str | None, text: str | None) -> bool:
        if self._refuse("retried"):
            return False
        why = DeadReason(reason) if reason else None
        return self._spawn(self._retry(lambda c: self.dlq.retry_matching(
            c, reason=why, text=text, session_id=self.session_id, result_key=self.producer.result_key)),
            "console-dlq-retry-all") is not None

    async def _retry(self, fn: Callable[[Any], Awaitable[RetryReport]]) -> None:
        try:
            report = await self._call(fn)
        except Exception as exc:  # noqa: BLE001
            self.post(m.DeadLettersActed("retried", f"retry failed: {describe_error(exc)}", [], ok=False))
            return
        # Only jobs whose results come to us: one whose own session is alive reports there.
        ours = [j for j in report.jobs.values() if j.result_key == self.producer.result_key]
        if ours:
            self.producer.expect(ours)
            self.post(m.JobsSubmitted(ours))
        self.events.emit("dead_letters_retried", retried=report.count, rebound=len(report.rebound),
                         skipped=len(report.skipped), missing=len(report.missing), awaited=len(ours))
        self.post(m.DeadLettersActed("retried", retry_summary(report, len(ours)), list(report.retried)))

    def delete_dead_letters(self, ids: list[str]) -> bool:
        if self._refuse("deleted"):
            return False
        return self._spawn(self._delete(ids), "console-dlq-delete") is not None

    async def _delete(self, ids: list[str]) -> None:
        try:
            deleted, missing = await self._call(lambda c: self.dlq.delete(c, ids))
        except Exception as exc:  # noqa: BLE001
            self.post(m.DeadLettersActed("deleted", f"delete failed: {describe_error(exc)}", [], ok=False))
            return
        self.events.emit("dead_letters_deleted", deleted=len(deleted), missing=len(missing))
        summary = f"deleted {plural(len(deleted), 'entry')}"
        if missing:
            summary += f"; {len(missing):,} already gone (retried or deleted by someone else)"
        self.post(m.DeadLettersActed("deleted", summary, [*deleted, *missing]))

    # orphaned result lists --------------------------------------------------------

    @property
    def orphan_scan_running(self) -> bool:
        return self._orphan_task is not None and not self._orphan_task.done()

    def scan_orphans_now(self) -> bool:
        """A full SCAN for orphaned result lists, with progress; cancel_orphan_scan() stops it."""
        if self.orphan_scan_running:
            return False
        cancel = asyncio.Event()
        task = self._spawn(self._scan_orphans(cancel), "console-orphan-scan")
        if task is None:
            return False
        self._orphan_cancel, self._orphan_task = cancel, task
        return True

    def cancel_orphan_scan(self) -> bool:
        if not self.orphan_scan_running or self._orphan_cancel is None:
            return False
        self._orphan_cancel.set()
        return True

    async def _scan_orphans(self, cancel: asyncio.Event) -> None:
        last = 0.0

        def progress(examined: int, total: int) -> None:
            nonlocal last
            now = time.monotonic()
            if now - last >= FLUSH_SECONDS:  # about ten a second, however many SCAN steps
                last = now
                self.post(m.OrphanScanProgress(examined, total))

        try:
            found = await self._call(lambda c: scan_orphans(c, self.producer.keys, progress=progress, cancel=cancel))
        except Exception as exc:  # noqa: BLE001
            self.post(m.OrphansScanned([], error=describe_error(exc)))
            return
        self.post(m.OrphansScanned(found, cancelled=cancel.is_set()))

    def adopt_orphans(self, orphans: list[Orphan]) -> bool:
        if self.read_only:
            self.post(m.OrphansCleaned("adopted", "not adopted: the console is read-only", ok=False))
            return False
        return self._spawn(self._clean_orphans("adopted", orphans), "console-orphan-adopt") is not None

    def delete_orphans(self, orphans: list[Orphan]) -> bool:
        if self.read_only:
            self.post(m.OrphansCleaned("deleted", "not deleted: the console is read-only", ok=False))
            return False
        return self._spawn(self._clean_orphans("deleted", orphans), "console-orphan-delete") is not None

    async def _clean_orphans(self, verb: str, orphans: list[Orphan]) -> None:
        keys = self.producer.keys
        try:
            if verb == "adopted":
                report = await self._call(lambda c: adopt_orphans(c, keys, self.dlq, orphans))
            else:
                report = await self._call(lambda c: delete_orphans(c, keys, orphans))
        except Exception as exc:  # noqa: BLE001
            self.post(m.OrphansCleaned(verb, f"not {verb}: {describe_error(exc)}", ok=False))
            return
        self.events.emit(f"orphans_{verb}", lists=report.lists, results=report.results, skipped=len(report.skipped))
        where = " into dead letters" if verb == "adopted" else ""
        summary = (f"{verb} {plural(report.lists, 'orphaned result list')} "
                   f"({plural(report.results, 'result')}){where}")
        for key, why in list(report.skipped.items())[:3]:
            summary += f"; left {key}: {why}"
        self.post(m.OrphansCleaned(verb, summary))

    # the reaper (issue 5): jobs of dead workers go back on the queue -----------------

    async def _reaper_loop(self) -> None:
        """Requeue what dead workers held. No holder: poison jobs are left for a worker's reaper."""
        settings = self.runtime.settings
        self.reaper = Reaper(self.producer.keys, self.dlq, self.events, holder=None,
                             reaper_id=f"console-{self.session_id}", result_ttl=settings.worker_result_ttl_seconds)
        reaper = self.reaper
        interval = max(1.0, settings.lease_seconds / 2)
        while True:
            try:
                await self.producer.link.call(lambda c: reaper.run_once(c))
                self.reaper_runs += 1
            except Exception as exc:  # noqa: BLE001 - counted by the link when it is Redis; next round retries
                self.events.emit("reaper_failed", level="debug", error=describe_error(exc))
            await asyncio.sleep(interval)


COUNT_PAGE = 1000       # entries per page while counting what a filter matches
MAX_COUNT_PAGES = 1000  # a bound on that walk (a store holds dlq_max_entries at most)


def retry_summary(report: RetryReport, awaited: int) -> str:
    """One line: ``retried 37 entries; 37 results come to this console; 2 kept: ...``."""
    summary = f"retried {plural(report.count, 'entry')}"
    if report.count:
        summary += f"; {awaited:,} {'result comes' if awaited == 1 else 'results come'} to this console"
        if awaited < report.count:
            summary += f", {report.count - awaited:,} to their own live session"
    if report.skipped:
        first = next(iter(report.skipped.values()))
        summary += f"; {len(report.skipped):,} kept in dead letters ({first})"
    if report.missing:
        summary += f"; {len(report.missing):,} already gone (retried or deleted by someone else)"
    return summary
