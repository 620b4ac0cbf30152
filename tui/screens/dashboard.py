"""Screen 1: sparklines, the live jobs table and the results stream."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Label, ProgressBar, Sparkline

from tui.changes import Changes
from tui.screens.base import ConsoleScreen
from tui.widgets.jobs import JobCounts, JobsHeader, JobsTable
from tui.widgets.logs import ResultsLog


class Trend(Vertical):
    DEFAULT_CSS = """
    Trend { width: 1fr; height: 2; padding: 0 1; }
    Trend Label { height: 1; color: $text-muted; }
    Trend Sparkline { height: 1; }
    """


class DashboardScreen(ConsoleScreen):
    DEFAULT_CSS = """
    DashboardScreen #trends { height: 2; }
    DashboardScreen #main { height: 1fr; }
    DashboardScreen #jobs-pane { width: 1fr; }
    DashboardScreen #results-pane { width: 44; border-left: vkey $primary; }
    DashboardScreen #results-title { height: 1; padding: 0 1; color: $text-muted; }
    DashboardScreen #notes-progress { height: 1; display: none; padding: 0 1; }
    DashboardScreen #notes-progress.-on { display: block; }
    DashboardScreen.-narrow #main { layout: vertical; }
    DashboardScreen.-narrow #jobs-pane { width: 1fr; height: 3fr; }
    DashboardScreen.-narrow #results-pane { width: 1fr; height: 2fr; border-left: none; border-top: hkey $primary; }
    """

    def body(self) -> ComposeResult:
        with Horizontal(id="trends"):
            with Trend():
                yield Label("results/s", id="tput-label")
                yield Sparkline([0.0], id="tput")
            with Trend():
                yield Label("redis latency", id="lat-label")
                yield Sparkline([0.0], id="lat")
        with Horizontal(id="notes-progress"):
            yield Label("notes ", id="notes-label")
            yield ProgressBar(total=1, show_eta=False, id="notes-bar")
        with Horizontal(id="main"):
            with Vertical(id="jobs-pane"):
                yield JobCounts()
                yield JobsHeader()
                yield JobsTable(id="jobs")
            with Vertical(id="results-pane"):
                yield Label("results (newest last)", id="results-title")
                yield ResultsLog(clock=self.console.state.clock, id="results")

    def on_mount(self) -> None:
        self.query_one(JobsTable).focus()

    def sync_body(self, changes: Changes) -> None:
        state = self.console.state
        if changes.status or changes.everything:
            tput = list(state.throughput)
            lat = list(state.latency_ms)
            self.query_one("#tput", Sparkline).data = tput
            self.query_one("#lat", Sparkline).data = lat
            self.query_one("#tput-label", Label).update(f"results/s {tput[-1]:,.0f} (total {state.total_results:,})")
            self.query_one("#lat-label", Label).update(f"redis latency {lat[-1]:.2f} ms")
            self.show_progress(*state.notes)
        counts = self.query_one(JobCounts)
        if changes.everything or changes.added or changes.changed or changes.outcomes:
            counts.show(state)
        if state.paused:
            return
        if changes.everything or changes.added or changes.changed:
            self.query_one(JobsTable).show(state)
        if changes.outcomes:
            self.query_one(ResultsLog).add(changes.outcomes)

    def show_progress(self, done: int, total: int) -> None:
        box = self.query_one("#notes-progress")
        box.set_class(total > 0 and done < total, "-on")
        self.query_one("#notes-label", Label).update(f"notes {done}/{total} ")
        self.query_one("#notes-bar", ProgressBar).update(total=max(total, 1), progress=done)
