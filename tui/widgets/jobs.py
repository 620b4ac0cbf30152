"""The live jobs table (newest first, bounded) and the counts above it."""

from __future__ import annotations

from textual.widgets import DataTable, Static

from engine.models import JobState
from tui.state import MAX_JOBS, ConsoleState, JobRow

STATE_ORDER = [JobState.QUEUED, JobState.RUNNING, JobState.DONE, JobState.FAILED, JobState.TIMED_OUT]


class JobCounts(Static):
    DEFAULT_CSS = """
    JobCounts { height: 1; padding: 0 1; color: $text-muted; }
    """

    def show(self, state: ConsoleState) -> None:
        parts = [f"{s.value.replace('_', ' ')} {max(0, state.counts[s.value]):,}" for s in STATE_ORDER]
        self.update("jobs: " + "  ".join(parts))


def _latency(row: JobRow) -> str:
    return "" if row.latency is None else f"{row.latency * 1000:.0f} ms"


class JobsTable(DataTable):
    """One row per job this console submitted; updated in place, newest on top."""

    DEFAULT_CSS = """
    JobsTable { height: 1fr; }
    """

    def on_mount(self) -> None:
        self.cursor_type = "row"
        self.zebra_stripes = False
        self.add_column("#", key="seq", width=4)
        self.add_column("job", key="job", width=28)
        self.add_column("handler", key="handler", width=11)
        self.add_column("state", key="state", width=9)
        self.add_column("att", key="att", width=3)
        self.add_column("latency", key="latency", width=8)

    def _cells(self, row: JobRow) -> list[object]:
        return [row.seq, row.short_id, row.job.handler, row.state.value.replace("_", " "),
                row.attempts or "", _latency(row)]

    def rebuild(self, state: ConsoleState) -> None:
        self.clear()
        rows = list(state.jobs.values())[::-1]
        for row in rows:
            self.add_row(*self._cells(row), key=row.job.id)

    def add_jobs(self, rows: list[JobRow], state: ConsoleState) -> None:
        if self.row_count + len(rows) > MAX_JOBS:
            self.rebuild(state)  # the state already dropped the oldest
            return
        for row in rows:
            if row.job.id in self.rows:  # a retried dead letter this console submitted: it moves to the top
                self.remove_row(row.job.id)
            self.add_row(*self._cells(row), key=row.job.id)
        self.sort("seq", reverse=True)

    def update_rows(self, rows: list[JobRow]) -> None:
        for row in rows:
            key = row.job.id
            if key not in self.rows:
                continue
            self.update_cell(key, "state", row.state.value.replace("_", " "))
            self.update_cell(key, "att", row.attempts or "")
            self.update_cell(key, "latency", _latency(row))
