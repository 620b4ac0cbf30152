"""Screen 4: orphaned result lists (their session is gone, or they have no TTL).

The backend finds them with SCAN in bounded steps (never KEYS), posting its
progress; Escape stops a scan. Adopting moves their results into dead letters
(``orphaned_result``); deleting drops them. Both ask first (default No), and
both re-check in Redis that the session is still gone.
"""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Label, ProgressBar

from engine.orphans import Orphan
from tui.changes import Changes
from tui.screens.base import ConsoleScreen, quiet_app_keys
from tui.screens.deadletters import age_text, when_text
from tui.screens.dialogs import ConfirmDialog
from tui.state import OrphansView, plural

ORPHAN_ACTIONS = {
    "mark_orphan": "mark / unmark the selected list",
    "adopt": "adopt the marked lists, or the selected one, into dead letters (asks first)",
    "delete_orphans": "delete the marked lists, or the selected one (asks first)",
    "rescan": "scan again for orphaned result lists (also F5)",
    "cancel_scan": "stop a running scan (what it found so far stays)",
}


def ttl_text(ttl: int) -> str:
    return "none" if ttl < 0 else age_text(ttl)


class OrphansScreen(ConsoleScreen):
    BUSY_FOOTER = True
    BINDINGS = [
        Binding("space", "mark_orphan", "Mark", id="orphans-mark", key_display="space"),
        Binding("a", "adopt", "Adopt", id="orphans-adopt"),
        Binding("d", "delete_orphans", "Delete", id="orphans-delete"),
        Binding("g,f5", "rescan", "Rescan", id="orphans-rescan", key_display="g/F5"),
        Binding("escape", "cancel_scan", "Cancel scan", id="orphans-cancel", key_display="esc"),
        *quiet_app_keys("orphans"),
    ]
    DEFAULT_CSS = """
    OrphansScreen #orphans-summary { width: 1fr; height: auto; max-height: 2; padding: 0 1; color: $text-muted; }
    OrphansScreen #orphans-summary.-error { color: $error; text-style: bold; }
    OrphansScreen #orphans-progress { height: 1; padding: 0 1; display: none; }
    OrphansScreen.-scanning #orphans-progress { display: block; }
    OrphansScreen #orphans-table { height: 1fr; }
    OrphansScreen #orphans-empty { padding: 1 2; color: $text-muted; height: auto; display: none; }
    OrphansScreen.-empty #orphans-empty { display: block; }
    OrphansScreen.-empty #orphans-table { display: none; }
    OrphansScreen #orphans-hint { width: 1fr; height: auto; padding: 0 1; color: $text-muted; border-top: hkey $primary; }
    OrphansScreen.-empty #orphans-hint { display: none; }
    """

    def body(self) -> ComposeResult:
        yield Label("", id="orphans-summary")
        with Horizontal(id="orphans-progress"):
            yield ProgressBar(total=1, show_eta=False, id="orphans-bar")
        with Vertical():
            yield Label("", id="orphans-empty")
            yield DataTable(id="orphans-table", cursor_type="row")
            yield Label("", id="orphans-hint")

    def on_mount(self) -> None:
        table = self.query_one("#orphans-table", DataTable)
        table.zebra_stripes = False
        table.add_column("*", key="mark", width=1)
        table.add_column("key", key="key", width=24)
        table.add_column("length", key="length", width=6)
        table.add_column("TTL", key="ttl", width=5)
        table.add_column("idle", key="idle", width=4)
        table.add_column("session", key="session", width=14)
        table.add_column("alive", key="alive", width=5)
        table.focus()

    def on_screen_resume(self) -> None:
        super().on_screen_resume()
        view = self.view
        if view.scanned_at is None and not view.scanning:
            self.console.scan_orphans()  # the first visit scans; g rescans

    @property
    def view(self) -> OrphansView:
        return self.console.state.orphan_scan

    @property
    def prefix(self) -> str:
        return self.console.backend.producer.keys.prefix + ":"

    @property
    def selected(self) -> Orphan | None:
        table = self.query_one("#orphans-table", DataTable)
        if table.row_count == 0:
            return None
        key, _ = table.coordinate_to_cell_key(table.cursor_coordinate)
        return self.view.orphan(key.value)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "cancel_scan":
            return self.view.scanning
        return super().check_action(action, parameters)

    # -- drawing ------------------------------------------------------------------

    def sync_body(self, changes: Changes) -> None:
        if changes.everything or changes.orphans:
            self.refresh_bindings()
            self._show_progress()
            self._rebuild()

    def _rebuild(self) -> None:
        view = self.view
        table = self.query_one("#orphans-table", DataTable)
        keep = self.selected.key if self.selected else None
        row = table.cursor_row
        table.clear()
        for o in view.orphans:
            table.add_row("*" if o.key in view.marked else "", o.key.removeprefix(self.prefix), f"{o.length:,}",
                          ttl_text(o.ttl), "?" if o.idle < 0 else age_text(o.idle), o.session,
                          "alive" if o.session_alive else "gone", key=o.key)
        if table.row_count:
            keys = [o.key for o in view.orphans]
            table.move_cursor(row=keys.index(keep) if keep in keys else min(row, table.row_count - 1), animate=False)
        self.set_class(not view.orphans, "-empty")
        if view.orphans and self.focused is None:
            table.focus()  # it was hidden while the list was empty
        self._show_hint()
        if view.scanning:
            empty = "Scanning…"
        elif view.scanned_at is None:
            empty = "Not scanned yet: g scans."
        else:
            empty = ("No orphaned result lists: every result list has a live session and a TTL. "
                     "g scans again.")
        self.query_one("#orphans-empty", Label).update(empty)

    @on(DataTable.RowHighlighted, "#orphans-table")
    def _show_hint(self) -> None:
        o = self.selected
        if o is None:
            return
        if o.session_alive:
            text = (f"Orphaned: it has no TTL, so it would never expire. Its session {o.session} is alive, so "
                    "adopt and delete leave it alone while its producer reads it.")
        else:
            ttl = "; and it has no TTL" if o.ttl < 0 else ""
            text = (f"Orphaned: session {o.session} is gone, nobody will read its {plural(o.length, 'result')}{ttl}."
                    " a adopts the list into dead letters (orphaned_result), d deletes it.")
        self.query_one("#orphans-hint", Label).update(text)

    def _show_progress(self) -> None:
        view = self.view
        self.set_class(view.scanning, "-scanning")
        label = self.query_one("#orphans-summary", Label)
        label.set_class(bool(view.error), "-error")
        where = f"keys under {self.prefix}"
        if view.scanning:
            pct = f" ({100 * view.examined // view.total_keys}%)" if view.total_keys else ""
            text = f"scanning {view.examined:,} of {view.total_keys:,} keys{pct}, read only; esc stops"
            self.query_one("#orphans-bar", ProgressBar).update(total=max(view.total_keys, 1), progress=view.examined)
        else:
            results = sum(o.length for o in view.orphans)
            text = f"{plural(len(view.orphans), 'orphaned result list')} ({plural(results, 'result')})"
            if view.scanned_at is not None:
                text += f", scanned at {when_text(view.scanned_at)[11:]}"
            if view.cancelled:
                text += f", scan stopped at {view.examined:,} of {view.total_keys:,} keys: found so far"
            if view.marked:
                text += f"; {len(view.marked):,} marked"
            if view.error:
                text = f"scan failed: {view.error}" + (f"; last scan: {text}" if view.scanned_at else "")
            text += f"  ({where})"
        label.update(text)

    # -- actions ------------------------------------------------------------------

    def action_rescan(self) -> None:
        self.console.scan_orphans()

    def action_cancel_scan(self) -> None:
        self.console.backend.cancel_orphan_scan()

    def action_mark_orphan(self) -> None:
        o = self.selected
        if o is None:
            return
        marks = self.view.marked
        marks.symmetric_difference_update({o.key})
        table = self.query_one("#orphans-table", DataTable)
        table.update_cell(o.key, "mark", "*" if o.key in marks else "")
        if table.cursor_row < table.row_count - 1:
            table.move_cursor(row=table.cursor_row + 1, animate=False)
        self._show_progress()

    def _targets(self) -> list[Orphan]:
        view = self.view
        if view.marked:
            return [o for o in view.orphans if o.key in view.marked]
        return [self.selected] if self.selected else []

    def _words(self, targets: list[Orphan]) -> str:
        results = sum(o.length for o in targets)
        words = f"{plural(len(targets), 'orphaned result list')} ({plural(results, 'result')})"
        sessions = {o.session for o in targets}
        if len(sessions) == 1:
            words += f" of session {next(iter(sessions))}"
        return words

    @staticmethod
    def _alive_note(targets: list[Orphan]) -> str:
        alive = sum(1 for o in targets if o.session_alive)
        if not alive:
            return ""
        if alive == len(targets):
            return " Its session is alive, so it will be left alone." if alive == 1 else \
                " Their sessions are alive, so they will be left alone."
        return f" {alive:,} of them belong to a live session and will be left alone."

    def action_adopt(self) -> None:
        targets = self._targets()
        if not targets:
            self.notify("No orphaned list selected.", title="Nothing to adopt")
            return
        question = (f"Adopt {self._words(targets)} into dead letters as orphaned_result? The lists are then "
                    f"deleted; a list whose session came back is left alone.{self._alive_note(targets)}")

        def done(choice: str) -> None:
            if choice == "yes":
                self.console.backend.adopt_orphans(targets)

        self.app.push_screen(ConfirmDialog(question, [("no", "No"), ("yes", "Adopt")], "no"), done)

    def action_delete_orphans(self) -> None:
        targets = self._targets()
        if not targets:
            self.notify("No orphaned list selected.", title="Nothing to delete")
            return
        question = (f"Delete {self._words(targets)}? The results are gone for good; a list whose session "
                    f"came back is left alone.{self._alive_note(targets)}")

        def done(choice: str) -> None:
            if choice == "yes":
                self.console.backend.delete_orphans(targets)

        self.app.push_screen(ConfirmDialog(question, [("no", "No"), ("yes", "Delete")], "no"), done)
