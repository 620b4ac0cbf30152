"""The Seawall console: a Textual app over the engine.

Engine news arrives as messages from the backend; only the ``@on`` handlers
here change state and widgets. ``build_app`` makes the app for tests with an
injected clock and session id.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections import deque
from pathlib import Path
from typing import Callable, Iterable

from textual import on
from textual.app import App, ScreenStackError, SystemCommand
from textual.binding import Binding
from textual.screen import Screen

from engine.breaker import BreakerState
from engine.events import Event, EventLog
from engine.handlers import default_registry
from engine.models import new_session_id
from engine.runtime import Runtime

from . import messages as m
from .backend import ConsoleBackend
from .changes import Changes
from .screens.base import MUTATING_ACTIONS, ConsoleScreen
from .screens.dashboard import DashboardScreen
from .screens.deadletters import DEAD_ACTIONS, DeadLettersScreen
from .screens.dialogs import ConfirmDialog, HelpScreen, NotesDialog, SubmitDialog, SubmitRequest
from .screens.events import EventsScreen
from .screens.orphans import ORPHAN_ACTIONS, OrphansScreen
from .screens.workers import WorkersScreen
from .state import DEAD_PAGE_SIZE, MAX_EVENTS, ConsoleState

SCREENS_BY_KEY = {
    "1": ("dashboard", "Dashboard"),
    "2": ("workers", "Workers"),
    "3": ("deadletters", "Dead letters"),
    "4": ("orphans", "Orphaned keys"),
    "5": ("events", "Events"),
}

ACTIONS_HELP = {
    "submit": "submit jobs (handler, payload, count)",
    "notes": "submit every note of a folder",
    "launch_worker": "launch a worker subprocess",
    "pause": "pause / resume the live tables",
    "help": "this help",
    "quit": "quit (asks about running workers)",
    "stop_worker": "stop the selected worker (SIGTERM)",
    "kill_worker": "kill the selected worker (SIGKILL, asks first)",
    **DEAD_ACTIONS,
    **ORPHAN_ACTIONS,
}


class SeawallApp(App[int]):
    TITLE = "Seawall"
    ENABLE_COMMAND_PALETTE = True
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (120, "-wide")]
    MODES = {
        "dashboard": DashboardScreen,
        "workers": WorkersScreen,
        "deadletters": DeadLettersScreen,
        "orphans": OrphansScreen,
        "events": EventsScreen,
    }
    DEFAULT_MODE = "dashboard"
    BINDINGS = [
        *(Binding(k, f"show('{mode}')", title, id=f"screen-{mode}", show=False) for k, (mode, title) in SCREENS_BY_KEY.items()),
        Binding("s", "submit", "Submit", id="submit"),
        Binding("n", "notes", "Notes", id="notes"),
        Binding("w", "launch_worker", "Worker+", id="launch-worker"),
        Binding("p", "pause", "Pause", id="pause"),
        Binding("question_mark,f1", "help", "Help", id="help", key_display="?"),
        Binding("q", "quit", "Quit", id="quit"),
    ]

    def __init__(
        self,
        runtime: Runtime,
        *,
        session_id: str | None = None,
        clock: Callable[[], float] = time.time,
        events: EventLog | None = None,
        autostart: bool = True,
        notes_dir: str | None = None,
        read_only: bool = False,
    ) -> None:
        super().__init__()
        self.runtime = runtime
        self.read_only = read_only
        self.session_id = session_id or new_session_id()
        self.state = ConsoleState(clock=clock)
        self.state_events: deque[Event] = deque(maxlen=MAX_EVENTS)
        self.handlers = default_registry().names()
        self.notes_dir = notes_dir if notes_dir is not None else ("examples/vault" if Path("examples/vault").is_dir() else ".")
        self.autostart = autostart
        self.backend = ConsoleBackend(runtime, self.post_message, session_id=self.session_id, events=events,
                                      read_only=read_only)
        self.state.breaker = self.backend.breaker
        self._quitting = False

    # -- lifecycle -----------------------------------------------------------

    async def on_mount(self) -> None:
        self._trap_signals(True)
        if self.autostart:
            self.set_interval(1.0, self._tick)
            await self.backend.start()
        self._sync(Changes.all())

    async def quit_now(self, stop_workers: bool = True) -> None:
        """Clean up as the engine does (result list deleted), then exit. No questions."""
        if self._quitting:
            return
        self._quitting = True
        await self.backend.shutdown(stop_workers=stop_workers)
        self.exit(0)

    async def on_unmount(self) -> None:
        self._trap_signals(False)
        if not self.backend.closed:
            await self.backend.shutdown(stop_workers=True)

    def _trap_signals(self, on: bool) -> None:
        """A lost terminal (SIGHUP) or SIGTERM cleans up like ``q``, without asking."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGHUP, signal.SIGTERM):
            try:
                if on:
                    loop.add_signal_handler(sig, lambda: self.call_later(self.quit_now, True))
                else:
                    loop.remove_signal_handler(sig)
            except (NotImplementedError, RuntimeError, ValueError):
                pass

    def _tick(self) -> None:
        self.state.breaker = self.backend.breaker
        self.state.tick(self._last_latency)
        self._last_latency = None
        self._sync(Changes(status=True, workers=True))

    _last_latency: float | None = None

    def _sync(self, changes: Changes) -> None:
        try:
            screen = self.screen
        except ScreenStackError:
            return  # starting up, switching modes or shutting down
        if isinstance(screen, ConsoleScreen):
            screen.sync(changes)

    # -- messages from the backend --------------------------------------------

    @on(m.Connected)
    def _connected(self, msg: m.Connected) -> None:
        self.state.server_version = msg.server_version
        self._sync(Changes(status=True))

    @on(m.JobsSubmitted)
    def _submitted(self, msg: m.JobsSubmitted) -> None:
        rows = self.state.add_jobs(msg.jobs)
        self._sync(Changes(added=rows))

    @on(m.SubmitFailed)
    def _submit_failed(self, msg: m.SubmitFailed) -> None:
        self.notify(msg.error, title="Not submitted", severity="error", timeout=8)

    @on(m.OutcomesArrived)
    def _outcomes(self, msg: m.OutcomesArrived) -> None:
        changed = self.state.apply_outcomes(msg.outcomes)
        self._sync(Changes(changed=changed, outcomes=msg.outcomes))

    @on(m.DepthsRead)
    def _depths(self, msg: m.DepthsRead) -> None:
        if msg.depths is not None:
            self.state.depths = msg.depths
            self._last_latency = msg.latency_ms
            changed = self.state.mark_running(msg.depths.running_jobs)
            self.state.depths_error = ""
            if (self.current_mode == "deadletters" and not self.state.paused
                    and self.state.dead.needs_refresh(msg.depths.dead, self.state.clock())):
                self.load_dead_letters()  # workers added (or others removed) entries: at most once a second
        else:
            changed = []
            self.state.depths_error = msg.error
        self._sync(Changes(status=True, changed=changed, workers=True))

    @on(m.OrphansCounted)
    def _orphans(self, msg: m.OrphansCounted) -> None:
        if msg.count is not None:
            self.state.orphans = msg.count

    @on(m.BreakerChanged)
    def _breaker(self, msg: m.BreakerChanged) -> None:
        self.state.breaker = msg.snapshot
        snap = msg.snapshot
        severity = {BreakerState.OPEN: "error", BreakerState.HALF_OPEN: "warning"}.get(snap.state, "information")
        detail = f"{snap.errors}/{snap.threshold} errors, trips {snap.trips}"
        if snap.last_error and snap.state is not BreakerState.CLOSED:
            detail += f"\n{snap.last_error}"
        self.notify(detail, title=f"Redis breaker {snap.state.label}", severity=severity, timeout=6)
        self._sync(Changes(status=True))

    @on(m.EngineEvents)
    def _events(self, msg: m.EngineEvents) -> None:
        self.state_events.extend(msg.events)
        self._sync(Changes(events=msg.events))

    @on(m.WorkersChanged)
    def _workers_changed(self, msg: m.WorkersChanged) -> None:
        self._sync(Changes(workers=True))

    @on(m.NotesProgress)
    def _notes_progress(self, msg: m.NotesProgress) -> None:
        self.state.notes = (msg.done, msg.total)
        if msg.total and msg.done >= msg.total:
            self.notify(f"all {msg.total} notes have a result", title="Notes done")
        self._sync(Changes(status=True))

    # -- screens 3 and 4: messages ------------------------------------------------------

    @on(m.DeadLettersPage)
    def _dead_page(self, msg: m.DeadLettersPage) -> None:
        view, now = self.state.dead, self.state.clock()
        if msg.page is None:
            applied = view.apply_error(msg.request, msg.error, now)
        else:
            p = msg.page
            applied = view.apply_page(msg.request, p.entries, msg.offset, p.next_offset, p.total, p.scanned, now)
            if applied and not p.entries and view.starts and not view.filtered:
                self.load_dead_letters(view.starts.pop())  # the last page emptied: step back
        if applied:
            self._sync(Changes(dead=True, status=True))

    @on(m.DeadLettersMatched)
    def _dead_matched(self, msg: m.DeadLettersMatched) -> None:
        screen = self.screen
        if isinstance(screen, DeadLettersScreen) and msg.request == self._count_request:
            screen.matching_counted(msg)

    @on(m.DeadLettersActed)
    def _dead_acted(self, msg: m.DeadLettersActed) -> None:
        self.state.dead.unmark(msg.gone)
        self.notify(msg.summary, title=f"Dead letters {msg.verb}" if msg.ok else "Dead letters",
                    severity="information" if msg.ok else "error", timeout=8)
        self.load_dead_letters()

    @on(m.OrphanScanProgress)
    def _orphan_progress(self, msg: m.OrphanScanProgress) -> None:
        self.state.orphan_scan.progress(msg.examined, msg.total)
        self._sync(Changes(orphans=True))

    @on(m.OrphansScanned)
    def _orphans_scanned(self, msg: m.OrphansScanned) -> None:
        view = self.state.orphan_scan
        view.finish(msg.orphans, msg.cancelled, msg.error, self.state.clock())
        if not msg.error and not msg.cancelled:
            self.state.orphans = len(msg.orphans)
        self._sync(Changes(orphans=True, status=True))

    @on(m.OrphansCleaned)
    def _orphans_cleaned(self, msg: m.OrphansCleaned) -> None:
        self.notify(msg.summary, title=f"Orphans {msg.verb}" if msg.ok else "Orphans",
                    severity="information" if msg.ok else "error", timeout=8)
        self.state.orphan_scan.marked.clear()
        self.scan_orphans()

    # -- screens 3 and 4: asking the backend ----------------------------------------------

    _count_request = 0

    def load_dead_letters(self, offset: int | None = None) -> None:
        """(Re)read one page: ``offset`` None is the page asked for last."""
        view = self.state.dead
        view.requested_offset = view.requested_offset if offset is None else offset
        view.request += 1
        if self.backend.load_dead_letters(view.request, offset=view.requested_offset, limit=DEAD_PAGE_SIZE,
                                          reason=view.reason, text=view.text):
            view.loading = True
            self._sync(Changes(status=True))

    def filter_dead_letters(self, text: str) -> None:
        view = self.state.dead
        view.filter_text = text.strip()
        view.starts.clear()
        self.load_dead_letters(0)
        self._sync(Changes(dead=True))

    def turn_dead_page(self, step: int) -> None:
        view = self.state.dead
        if step > 0 and view.has_next and view.next_offset is not None:
            view.starts.append(view.requested_offset)
            self.load_dead_letters(view.next_offset)
        elif step < 0 and view.starts:
            self.load_dead_letters(view.starts.pop())

    def count_dead_matching(self) -> None:
        view = self.state.dead
        self._count_request += 1
        if self.backend.count_dead_matching(self._count_request, view.reason, view.text) and view.filtered:
            self.notify("counting the entries that match…", title="Retry all", timeout=2)

    def scan_orphans(self) -> None:
        if self.backend.scan_orphans_now():
            self.state.orphan_scan.start()
            self._sync(Changes(orphans=True))

    # -- actions -----------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """``--read-only``: every mutating action is hidden (footer, help, palette) and refused."""
        return not (self.read_only and action in MUTATING_ACTIONS)

    def action_show(self, mode: str) -> None:
        if self.current_mode != mode:
            self.switch_mode(mode)

    def action_submit(self) -> None:
        if self.read_only:
            return

        def done(req: SubmitRequest | None) -> None:
            if req:
                self.run_worker(self.backend.submit(req.handler, req.payload, req.count), group="submit")

        self.push_screen(SubmitDialog(self.handlers), done)

    def action_notes(self) -> None:
        if self.read_only:
            return

        def done(folder: Path | None) -> None:
            if folder:
                self.run_worker(self.backend.submit_notes(folder), group="submit")

        self.push_screen(NotesDialog(self.notes_dir), done)

    async def action_launch_worker(self) -> None:
        if self.read_only:
            return
        w = await self.backend.launch_worker()
        self.notify(f"{w.worker_id} (pid {w.process.pid})", title="Worker launched")

    def _selected_worker(self) -> str | None:
        screen = self.screen
        return screen.selected_worker if isinstance(screen, WorkersScreen) else None

    def action_stop_worker(self) -> None:
        worker_id = self._selected_worker()
        if worker_id and not self.read_only:
            self.backend.stop_worker(worker_id)
            self.notify(f"SIGTERM sent to {worker_id}", title="Stopping worker")

    def action_kill_worker(self) -> None:
        worker_id = self._selected_worker()
        if not worker_id or self.read_only:
            return

        def done(choice: str) -> None:
            if choice == "yes":
                self.backend.kill_worker(worker_id)
                self.notify(f"SIGKILL sent to {worker_id}", title="Killed worker", severity="warning")

        self.push_screen(ConfirmDialog(f"Kill {worker_id} with SIGKILL? Its job goes back to the queue only "
                                       "when a reaper finds it.", [("no", "No"), ("yes", "Kill")], "no"), done)

    def action_pause(self) -> None:
        self.state.paused = not self.state.paused
        self._sync(Changes.all() if not self.state.paused else Changes(status=True))

    def action_help(self) -> None:
        screen = self.screen

        def hidden(b: Binding) -> bool:  # what --read-only hides
            return self.read_only and b.action.removeprefix("app.") in MUTATING_ACTIONS

        rows = [(b.key_display or b.key, ACTIONS_HELP.get(b.action.removeprefix("app."), b.description))
                for b in getattr(screen, "BINDINGS", []) if isinstance(b, Binding) and not hidden(b)]
        rows += [("1-5", "switch screen: " + ", ".join(f"{k} {t}" for k, (_, t) in SCREENS_BY_KEY.items()))]
        rows += [(b.key_display or b.key.split(",")[0], ACTIONS_HELP.get(b.action, b.description))
                 for b in self.BINDINGS if isinstance(b, Binding) and b.show and not hidden(b)]
        rows += [("ctrl+p", "command palette: every action by name")]
        title = next((t for _, (mode, t) in SCREENS_BY_KEY.items() if mode == self.current_mode), "")
        if self.read_only:
            title += ", read-only: actions that change anything are hidden"
        self.push_screen(HelpScreen(title, rows))

    async def action_quit(self) -> None:
        running = self.backend.running_workers
        if not running:
            await self.quit_now(True)
            return

        async def done(choice: str) -> None:
            if choice in ("stop", "keep"):
                await self.quit_now(stop_workers=choice == "stop")

        self.push_screen(ConfirmDialog(f"{len(running)} launched worker(s) still running. Stop them before quitting?",
                                       [("stop", "Stop them"), ("keep", "Keep running"), ("cancel", "Cancel")],
                                       "cancel"), done)

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for key, (mode, title) in SCREENS_BY_KEY.items():
            yield SystemCommand(f"Show {title}", f"switch to screen {key}", lambda mode=mode: self.action_show(mode))
        commands: list[tuple[str, str, Callable[[], object]]] = [
            ("Submit jobs", "submit", self.action_submit),
            ("Submit notes", "notes", self.action_notes),
            ("Launch worker", "launch_worker", self.action_launch_worker),
            ("Pause / resume", "pause", self.action_pause),
            ("Stop selected worker", "stop_worker", self.action_stop_worker),
            ("Kill selected worker", "kill_worker", self.action_kill_worker),
        ]
        if isinstance(screen, DeadLettersScreen):
            commands += [
                ("Filter dead letters", "filter", screen.action_filter),
                ("Clear the dead-letter filter", "clear_filter", screen.action_clear_filter),
                ("Mark / unmark dead letter", "mark", screen.action_mark),
                ("Retry selected or marked dead letters", "retry", screen.action_retry),
                ("Retry all dead letters matching the filter", "retry_all", screen.action_retry_all),
                ("Delete selected or marked dead letters", "delete", screen.action_delete),
                ("Next page of dead letters", "next_page", screen.action_next_page),
                ("Previous page of dead letters", "prev_page", screen.action_prev_page),
            ]
        if isinstance(screen, OrphansScreen):
            commands += [
                ("Mark / unmark orphaned list", "mark_orphan", screen.action_mark_orphan),
                ("Adopt orphaned lists into dead letters", "adopt", screen.action_adopt),
                ("Delete orphaned lists", "delete_orphans", screen.action_delete_orphans),
                ("Rescan for orphaned keys", "rescan", screen.action_rescan),
                ("Cancel the orphan scan", "cancel_scan", screen.action_cancel_scan),
            ]
        for title, action, callback in commands:
            if not (self.read_only and action in MUTATING_ACTIONS):
                yield SystemCommand(title, ACTIONS_HELP[action], callback)
        yield SystemCommand("Quit Seawall", ACTIONS_HELP["quit"], self.action_quit)


def build_app(runtime: Runtime, **kw) -> SeawallApp:
    """The factory tests use: inject ``session_id``, ``clock``; ``autostart=False`` stays offline;
    ``read_only=True`` hides every mutating action (``seawall tui --read-only``)."""
    return SeawallApp(runtime, **kw)


def run_console(runtime: Runtime, *, read_only: bool = False, log_file: str | None = None) -> int:
    events = runtime.event_log("debug" if log_file else "info", log_file) if log_file else EventLog(None, "debug", runtime.redactor)
    app = build_app(runtime, events=events, read_only=read_only)
    code = app.run()
    return code or 0
