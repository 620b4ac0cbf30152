"""The live jobs table (newest first, bounded) and the counts above it.

A virtual list, not a DataTable: it draws only the visible lines, straight
from the state, so thousands of updates a second cost one redraw per flush
instead of a measurement per row.
"""

from __future__ import annotations

from rich.segment import Segment
from rich.style import Style
from textual.binding import Binding
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.widgets import Static

from engine.models import JobState
from tui.state import ConsoleState, JobRow

STATE_ORDER = [JobState.QUEUED, JobState.RUNNING, JobState.DONE, JobState.FAILED, JobState.TIMED_OUT]
COLUMNS = [("#", 5), ("job", 29), ("handler", 12), ("state", 10), ("att", 4), ("latency", 9)]
WIDTH = sum(w for _, w in COLUMNS)


class JobCounts(Static):
    DEFAULT_CSS = """
    JobCounts { height: 1; padding: 0 1; color: $text-muted; }
    """

    def show(self, state: ConsoleState) -> None:
        parts = [f"{s.value.replace('_', ' ')} {max(0, state.counts[s.value]):,}" for s in STATE_ORDER]
        self.update("jobs: " + "  ".join(parts))


def _latency(row: JobRow) -> str:
    return "" if row.latency is None else f"{row.latency * 1000:.0f} ms"


def row_text(row: JobRow) -> str:
    cells = [str(row.seq), row.short_id, row.job.handler, row.state.value.replace("_", " "),
             str(row.attempts or ""), _latency(row)]
    return "".join(c[: w - 1].ljust(w) for c, (_, w) in zip(cells, COLUMNS))


class JobsHeader(Static):
    DEFAULT_CSS = """
    JobsHeader { height: 1; text-style: bold; background: $panel; padding: 0 0; }
    """

    def on_mount(self) -> None:
        self.update("".join(name.ljust(w) for name, w in COLUMNS))


class JobsTable(ScrollView, can_focus=True):
    """One line per job this console submitted; newest on top."""

    BINDINGS = [
        Binding("up", "scroll_up", "Up", show=False, id="jobs-up"),
        Binding("down", "scroll_down", "Down", show=False, id="jobs-down"),
        Binding("pageup", "page_up", "Page up", show=False, id="jobs-page-up"),
        Binding("pagedown", "page_down", "Page down", show=False, id="jobs-page-down"),
        Binding("home", "scroll_home", "Top", show=False, id="jobs-top"),
        Binding("end", "scroll_end", "Bottom", show=False, id="jobs-bottom"),
    ]
    DEFAULT_CSS = """
    JobsTable { height: 1fr; }
    """

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.rows: list[JobRow] = []

    def show(self, state: ConsoleState) -> None:
        self.rows = list(reversed(state.jobs.values()))
        self.virtual_size = Size(WIDTH, len(self.rows))
        self.refresh()

    @property
    def row_count(self) -> int:
        return len(self.rows)

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        index = scroll_y + y
        width = self.size.width
        if index >= len(self.rows):
            return Strip.blank(width, self.rich_style)  # a style: NO_COLOR filters choke on None
        row = self.rows[index]
        style = self.rich_style
        if row.state in (JobState.FAILED, JobState.TIMED_OUT):
            style = style + Style(bold=True)
        text = row_text(row)[scroll_x:scroll_x + width].ljust(width)
        return Strip([Segment(text, style)], width)
