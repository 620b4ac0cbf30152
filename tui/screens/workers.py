"""Screen 2: worker subprocesses launched from the console, and their output."""

from __future__ import annotations

import time

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import DataTable, Label, RichLog

from tui.changes import Changes
from tui.screens.base import ConsoleScreen


class WorkersScreen(ConsoleScreen):
    BINDINGS = [
        Binding("x", "app.stop_worker", "Stop", id="stop-worker"),
        Binding("K", "app.kill_worker", "Kill", id="kill-worker"),
    ]
    BUSY_FOOTER = True  # its keys and the app's fill 80 columns: ctrl+p still works, `?` lists it
    DEFAULT_CSS = """
    WorkersScreen #workers { height: 2fr; }
    WorkersScreen #worker-log-title { height: 1; padding: 0 1; color: $text-muted; }
    WorkersScreen #worker-log { height: 3fr; border-top: hkey $primary; }
    WorkersScreen #no-workers { padding: 1 2; color: $text-muted; }
    """

    def body(self) -> ComposeResult:
        with Vertical():
            yield Label("No workers launched yet: press w to launch one.", id="no-workers")
            yield DataTable(id="workers", cursor_type="row")
            yield Label("output of the selected worker", id="worker-log-title")
            yield RichLog(max_lines=500, wrap=False, markup=False, highlight=False, id="worker-log")

    def on_mount(self) -> None:
        table = self.query_one("#workers", DataTable)
        table.add_column("worker", key="id")
        table.add_column("pid", key="pid", width=7)
        table.add_column("state", key="state", width=10)
        table.add_column("done", key="done", width=6)
        table.add_column("beat", key="beat", width=6)
        table.add_column("last log line", key="last")
        table.focus()

    @property
    def selected_worker(self) -> str | None:
        table = self.query_one("#workers", DataTable)
        if table.row_count == 0:
            return None
        key, _ = table.coordinate_to_cell_key(table.cursor_coordinate)
        return key.value

    def sync_body(self, changes: Changes) -> None:
        if not (changes.workers or changes.everything or changes.status):
            return
        app = self.console
        table = self.query_one("#workers", DataTable)
        beats = {w.worker_id: w for w in (app.state.depths.workers if app.state.depths else ())}
        launched = app.backend.workers
        self.query_one("#no-workers").display = not launched
        for worker_id, w in launched.items():
            beat = beats.get(worker_id)
            state = w.state
            if state == "running":
                if beat and beat.alive:
                    state = beat.state
                else:
                    young = time.time() - w.launched_at < app.runtime.settings.lease_seconds
                    state = "starting" if young else "no beat"
            cells = {
                "id": worker_id.removeprefix(f"console-{app.session_id}-").join(["worker ", ""]),
                "pid": str(w.process.pid or ""),
                "state": state,
                "done": str(beat.done) if beat else "0",
                "beat": f"{beat.age:.0f}s" if beat and beat.alive and beat.age is not None else "-",
                "last": _short_line(w.last_line),
            }
            if worker_id in table.rows:
                for col, value in cells.items():
                    table.update_cell(worker_id, col, value)
            else:
                table.add_row(*cells.values(), key=worker_id)
        self._show_log()

    @on(DataTable.RowHighlighted, "#workers")
    def _row_changed(self) -> None:
        self._show_log()

    def _show_log(self) -> None:
        log = self.query_one("#worker-log", RichLog)
        worker_id = self.selected_worker
        backend = self.console.backend
        w = backend.workers.get(worker_id) if worker_id else None
        if w is None:
            return
        lines = list(w.process.lines)
        if getattr(log, "_shown_for", None) != (worker_id, len(lines), lines[-1] if lines else ""):
            log.clear()
            for line in lines[-200:]:
                log.write(_short_line(line, 300))
            log._shown_for = (worker_id, len(lines), lines[-1] if lines else "")  # type: ignore[attr-defined]
        self.query_one("#worker-log-title", Label).update(f"output of {worker_id} (pid {w.process.pid})")


def _short_line(line: str, limit: int = 80) -> str:
    """A worker's JSON log line, as 'event key=value …' for a narrow column."""
    import json

    try:
        data = json.loads(line)
    except ValueError:
        return line[:limit]
    if not isinstance(data, dict):
        return line[:limit]
    data.pop("ts", None)
    level = data.pop("level", "")
    name = data.pop("event", "")
    rest = " ".join(f"{k}={v}" for k, v in data.items())
    prefix = f"{level} " if level in ("warning", "error") else ""
    return f"{prefix}{name} {rest}"[:limit]
