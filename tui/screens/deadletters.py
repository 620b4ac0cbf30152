"""Screen 3: dead letters, a page at a time, with the selected entry in full.

The table holds one page (``DEAD_PAGE_SIZE`` entries) read by the backend with
``DeadLetterStore.page``; the store itself can hold 100,000. Every mutation
asks first (the default is No) and says exactly what it will do.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import DataTable, Input, Label, Static

from engine.deadletters import DeadLetter
from tui import messages as m
from tui.changes import Changes
from tui.screens.base import ConsoleScreen, quiet_app_keys
from tui.screens.dialogs import ConfirmDialog
from tui.state import DeadLettersView, describe_dead_filter, plural, short_dead_id

PAGE = Binding.Group("Page", compact=True)
PAYLOAD_CHARS = 2000
RAW_CHARS = 1000

#: What each action of this screen does, for ``?`` and the command palette.
DEAD_ACTIONS = {
    "filter": "filter by reason or text (Enter applies, Escape clears)",
    "clear_filter": "clear the filter",
    "mark": "mark / unmark the selected entry",
    "retry": "retry the marked entries, or the selected one (asks first)",
    "retry_all": "retry every entry that matches the filter (asks first)",
    "delete": "delete the marked entries, or the selected one (asks first)",
    "prev_page": "previous page (also PageUp)",
    "next_page": "next page (also PageDown)",
}


def age_text(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f}s"
    if seconds < 3600:
        return f"{seconds // 60:.0f}m"
    if seconds < 86400:
        return f"{seconds // 3600:.0f}h"
    return f"{seconds // 86400:.0f}d"


def when_text(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))


def _json(value: Any, limit: int) -> str:
    text = json.dumps(value, ensure_ascii=False, separators=(", ", ": "))
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text):,} characters in all)"


def detail_text(entry: DeadLetter, now: float) -> Text:
    """Everything an operator needs about one entry, in words (reads under NO_COLOR)."""
    t = Text()

    def row(name: str, value: str, style: str = "") -> None:
        t.append(f"{name:<10}", style="bold")
        t.append(value + "\n", style=style)

    t.append(f" {entry.reason.value} ", style="bold reverse")
    t.append("  retryable: r puts its job back on the queue\n" if entry.retryable
             else "  not retryable: no job was kept (only its raw bytes or its result)\n")
    row("id", entry.id)
    error = f"{entry.error_type}: {entry.error}" if entry.error_type else entry.error
    row("error", error or "-", "bold")
    job = entry.job or {}
    history = f"{entry.attempts}"
    if job:
        history += (f" of {job.get('max_attempts', '?')}; history: {plural(int(job.get('failures', 0)), 'failed try')}"
                    f", {plural(int(job.get('retries', 0)), 'retry')} from dead letters")
    row("attempts", history)
    first, last = when_text(entry.first_failed_at), when_text(entry.last_failed_at)
    last = last[11:] if last[:10] == first[:10] else last
    row("failed", f"first {first}, last {last} ({age_text(entry.age(now))} ago)")
    row("session", entry.session or "-")
    row("worker", entry.worker or "-")
    row("handler", entry.handler or "-")
    if entry.job is not None:
        row("payload", _json(job.get("payload"), PAYLOAD_CHARS))
    if entry.result is not None:
        row("result", _json(entry.result, PAYLOAD_CHARS))
    if entry.raw is not None:
        row("raw", f"{entry.raw_bytes:,} bytes, first {min(len(entry.raw), RAW_CHARS):,} shown: "
                   f"{entry.raw[:RAW_CHARS]}")
    if entry.traceback:
        t.append("traceback\n", style="bold")
        t.append(entry.traceback.rstrip() + "\n")
    return t


class DeadLettersTable(DataTable):
    """PageUp / PageDown turn pages of the store, not rows of this one page."""

    DEFAULT_CSS = """
    DeadLettersTable { height: 1fr; }
    """

    def action_page_down(self) -> None:
        self.screen.action_next_page()  # type: ignore[attr-defined]

    def action_page_up(self) -> None:
        self.screen.action_prev_page()  # type: ignore[attr-defined]


class DeadLettersScreen(ConsoleScreen):
    BUSY_FOOTER = True
    BINDINGS = [
        Binding("slash", "filter", "Filter", id="dlq-filter", key_display="/"),
        Binding("space", "mark", "Mark", id="dlq-mark", key_display="space"),
        Binding("r", "retry", "Retry", id="dlq-retry"),
        Binding("R", "retry_all", "Retry all", id="dlq-retry-all"),
        Binding("d", "delete", "Delete", id="dlq-delete"),
        Binding("left_square_bracket", "prev_page", "Previous page", id="dlq-prev-page", key_display="[",
                group=PAGE),
        Binding("right_square_bracket", "next_page", "Next page", id="dlq-next-page", key_display="]",
                group=PAGE),
        Binding("escape", "clear_filter", "Clear filter", id="dlq-clear-filter", key_display="esc"),
        *quiet_app_keys("dlq"),
    ]
    DEFAULT_CSS = """
    DeadLettersScreen #dlq-filter-row { height: 1; padding: 0 1; }
    DeadLettersScreen #dlq-filter-label { width: auto; color: $text-muted; }
    DeadLettersScreen #dlq-filter { width: 1fr; background: $boost; }
    DeadLettersScreen #dlq-summary { height: 1; padding: 0 1; color: $text-muted; }
    DeadLettersScreen #dlq-summary.-error { color: $error; text-style: bold; }
    DeadLettersScreen #dlq-summary.-loading { text-style: italic; }
    DeadLettersScreen #dlq-main { height: 1fr; }
    DeadLettersScreen #dlq-empty { padding: 1 2; color: $text-muted; height: auto; display: none; }
    DeadLettersScreen.-empty #dlq-empty { display: block; }
    DeadLettersScreen.-empty DeadLettersTable { display: none; }
    DeadLettersScreen #dlq-detail { height: 1fr; border-top: hkey $primary; padding: 0 1; }
    DeadLettersScreen.-empty #dlq-detail { display: none; }
    DeadLettersScreen #dlq-detail-text { height: auto; }
    """

    def body(self) -> ComposeResult:
        with Horizontal(id="dlq-filter-row"):
            yield Label("/ filter ", id="dlq-filter-label")
            yield Input(placeholder="a reason (handler_failed, invalid_payload, …) and/or text", id="dlq-filter",
                        compact=True)
        yield Label("reading dead letters…", id="dlq-summary")
        with Vertical(id="dlq-main"):
            yield Label("", id="dlq-empty")
            yield DeadLettersTable(id="dlq-table", cursor_type="row")
            with VerticalScroll(id="dlq-detail"):
                yield Static("", id="dlq-detail-text")

    def on_mount(self) -> None:
        table = self.query_one(DeadLettersTable)
        table.zebra_stripes = False
        table.add_column("*", key="mark", width=1)
        table.add_column("id", key="id", width=24)
        table.add_column("reason", key="reason", width=18)
        table.add_column("handler", key="handler", width=11)
        table.add_column("att", key="att", width=3)
        table.add_column("age", key="age", width=4)
        box = self.query_one("#dlq-filter", Input)
        box.cursor_blink = False
        box.can_focus = False
        table.focus()

    def on_screen_resume(self) -> None:
        super().on_screen_resume()
        self.console.load_dead_letters()  # fresh on every visit: one page, a few milliseconds

    @property
    def view(self) -> DeadLettersView:
        return self.console.state.dead

    @property
    def selected(self) -> DeadLetter | None:
        table = self.query_one(DeadLettersTable)
        if table.row_count == 0:
            return None
        key, _ = table.coordinate_to_cell_key(table.cursor_coordinate)
        return self.view.entry(key.value)

    # -- drawing ------------------------------------------------------------------

    def sync_body(self, changes: Changes) -> None:
        if changes.everything or changes.dead:
            box = self.query_one("#dlq-filter", Input)
            if not box.has_focus and box.value.strip() != self.view.filter_text.strip():
                box.value = self.view.filter_text
            self.refresh_bindings()
            self._rebuild()
            self._show_summary()
            self._show_detail()
        elif changes.status:
            self._show_summary()
            self._refresh_ages()

    def _refresh_ages(self) -> None:
        """Once a second (with the status): ages move on between page reads."""
        table = self.query_one(DeadLettersTable)
        now = self.console.state.clock()
        for e in self.view.entries:
            if e.id in table.rows:
                table.update_cell(e.id, "age", age_text(e.age(now)))

    def _rebuild(self) -> None:
        view = self.view
        table = self.query_one(DeadLettersTable)
        keep = self.selected.id if self.selected else None
        row = table.cursor_row
        now = self.console.state.clock()
        table.clear()
        for e in view.entries:
            table.add_row("*" if e.id in view.marked else "", short_dead_id(e.id, e.session), e.reason.value,
                          e.handler or "-", str(e.attempts), age_text(e.age(now)), key=e.id)
        if table.row_count:
            ids = [e.id for e in view.entries]
            target = ids.index(keep) if keep in ids else min(row, table.row_count - 1)
            table.move_cursor(row=max(0, target), animate=False)
        self.set_class(not view.entries and view.loaded_at is not None, "-empty")
        self.query_one("#dlq-empty", Label).update(self._empty_text())
        if view.entries and self.focused is None:
            table.focus()  # it was hidden while the page was empty

    def _empty_text(self) -> str:
        view = self.view
        if view.filtered:
            more = f" (examined {view.scanned:,} of {view.total or 0:,}: ] looks further)" if view.has_next else ""
            return f"Nothing matches {view.filter_text.strip()!r} on this page{more}. Escape clears the filter."
        if view.offset:
            return "No more entries: [ goes back."
        return ("No dead letters. Jobs that fail every attempt, garbage found on the queue and results nobody "
                "could receive land here.")

    def _summary_text(self) -> str:
        view = self.view
        if view.loaded_at is None:
            return view.error and f"could not read dead letters: {view.error}" or "reading dead letters…"
        total = view.total or 0
        n = len(view.entries)
        if view.filtered:
            text = f"page {view.page_number}: {n:,} matching, {view.scanned:,} examined of {total:,}"
        elif n:
            text = f"page {view.page_number}: {view.offset + 1:,}–{view.offset + n:,} of {plural(total, 'entry')}"
        else:
            text = f"{plural(total, 'entry')}"
        if view.has_next:
            text += "  ] next"
        if view.starts:
            text += "  [ previous"
        if view.marked:
            text += f"  {len(view.marked):,} marked"
        if view.loading:
            text += "  reading…"
        if view.error:
            text += f"  could not refresh: {view.error}"
        return text

    def _show_summary(self) -> None:
        label = self.query_one("#dlq-summary", Label)
        view = self.view
        label.update(self._summary_text())
        label.set_class(bool(view.error), "-error")
        label.set_class(view.loading, "-loading")

    def _show_detail(self) -> None:
        entry = self.selected
        text = detail_text(entry, self.console.state.clock()) if entry else Text("")
        self.query_one("#dlq-detail-text", Static).update(text)

    @on(DataTable.RowHighlighted, "#dlq-table")
    def _row_changed(self) -> None:
        self._show_detail()

    # -- filter -----------------------------------------------------------------------

    def action_filter(self) -> None:
        box = self.query_one("#dlq-filter", Input)
        box.can_focus = True  # only while filtering: other keys never type into the box by accident
        box.focus()

    def _leave_filter(self) -> None:
        box = self.query_one("#dlq-filter", Input)
        box.can_focus = False
        table = self.query_one(DeadLettersTable)
        if table.display:
            table.focus()
        else:
            self.set_focus(None)

    @on(Input.Submitted, "#dlq-filter")
    def _filter_submitted(self, event: Input.Submitted) -> None:
        self._leave_filter()
        if event.value.strip() != self.view.filter_text.strip():
            self.console.filter_dead_letters(event.value)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "clear_filter":  # shown (and active) only when there is a filter to clear
            return self.view.filtered or bool(self.query("#dlq-filter") and self.query_one("#dlq-filter", Input).value)
        return super().check_action(action, parameters)

    @on(Input.Changed, "#dlq-filter")
    def _filter_typed(self) -> None:
        self.refresh_bindings()

    def action_clear_filter(self) -> None:
        box = self.query_one("#dlq-filter", Input)
        box.value = ""
        self._leave_filter()
        if self.view.filtered:
            self.console.filter_dead_letters("")

    # -- pages and marks --------------------------------------------------------------

    def action_next_page(self) -> None:
        self.console.turn_dead_page(+1)

    def action_prev_page(self) -> None:
        self.console.turn_dead_page(-1)

    def action_mark(self) -> None:
        entry = self.selected
        if entry is None:
            return
        marked = self.view.toggle_mark(entry)
        if marked is None:
            self.notify("Retry or delete the marked entries first.", title="Too many marks", severity="warning")
            return
        table = self.query_one(DeadLettersTable)
        table.update_cell(entry.id, "mark", "*" if marked else "")
        if table.cursor_row < table.row_count - 1:
            table.move_cursor(row=table.cursor_row + 1, animate=False)
        self._show_summary()

    # -- mutations: each asks first, default No ------------------------------------

    def _targets(self) -> tuple[list[str], str, int]:
        """(ids, 'N entries of reason' in words, how many of them kept no job)."""
        view = self.view
        if view.marked:
            ids = list(view.marked)
            reasons = Counter(mk.reason for mk in view.marked.values())
            no_job = sum(1 for mk in view.marked.values() if not mk.retryable)
            words = plural(len(ids), "marked entry")
        else:
            entry = self.selected
            if entry is None:
                return [], "", 0
            ids, reasons, no_job = [entry.id], Counter([entry.reason.value]), 0 if entry.retryable else 1
            words = f"entry {short_dead_id(entry.id, entry.session)}"
        if len(reasons) == 1:
            words += f" of {next(iter(reasons))}"
        else:
            words += " (" + ", ".join(f"{n:,} {r}" for r, n in reasons.most_common()) + ")"
        return ids, words, no_job

    def action_retry(self) -> None:
        ids, words, no_job = self._targets()
        if not ids:
            self.notify("No entry selected.", title="Nothing to retry")
            return
        question = f"Retry {words}?"
        if no_job == len(ids):
            self.notify(f"{words[0].upper()}{words[1:]} kept no job to requeue: delete it instead.",
                        title="Not retryable", severity="warning")
            return
        question += f" {_kept(no_job, len(ids))}{_requeue_note(len(ids) - no_job)}"

        def done(choice: str) -> None:
            if choice == "yes":
                self.console.backend.retry_dead_letters(ids)

        self.app.push_screen(ConfirmDialog(question, [("no", "No"), ("yes", "Retry")], "no"), done)

    def action_retry_all(self) -> None:
        """Count what the filter matches first, so the question can say how many."""
        self.console.count_dead_matching()

    def matching_counted(self, msg: m.DeadLettersMatched) -> None:
        """The count for ``R`` arrived: ask."""
        if msg.error:
            self.notify(msg.error, title="Could not count dead letters", severity="error")
            return
        count = msg.count or 0
        scope = describe_dead_filter(msg.reason, msg.text)
        if count == 0:
            self.notify(f"No entries {scope or 'in the store'}.", title="Nothing to retry")
            return
        question = f"Retry {plural(count, 'entry')} {scope}?" if scope else f"Retry all {plural(count, 'entry')}?"
        if msg.retryable < count and (msg.reason or msg.text):
            question += f" {_kept(count - msg.retryable, count)}"
        question += f" {_requeue_note(count)}"

        def done(choice: str) -> None:
            if choice == "yes":
                self.console.backend.retry_dead_matching(msg.reason, msg.text)

        self.app.push_screen(ConfirmDialog(question, [("no", "No"), ("yes", "Retry")], "no"), done)

    def action_delete(self) -> None:
        ids, words, _ = self._targets()
        if not ids:
            self.notify("No entry selected.", title="Nothing to delete")
            return

        def done(choice: str) -> None:
            if choice == "yes":
                self.console.backend.delete_dead_letters(ids)

        question = f"Delete {words}? {'They are' if len(ids) > 1 else 'It is'} gone for good."
        self.app.push_screen(ConfirmDialog(question, [("no", "No"), ("yes", "Delete")], "no"), done)


def _requeue_note(n: int) -> str:
    if n == 1:
        return "Its job goes back on the queue with its attempts reset; the result comes to this console."
    return "Their jobs go back on the queue with attempts reset; results come to this console."


def _kept(no_job: int, of: int) -> str:
    if not no_job:
        return ""
    return f"{no_job:,} of them kept no job and stay{'s' if no_job == 1 else ''}. " if of > 1 else ""
