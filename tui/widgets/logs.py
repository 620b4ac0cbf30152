"""Bounded, append-only streams: results as they arrive, engine events, worker output."""

from __future__ import annotations

import time
from typing import Callable

from rich.text import Text
from textual.widgets import RichLog

from engine.events import Event
from engine.producer import JobOutcome
from tui.state import JobRow


MAX_LINES_PER_BATCH = 20


def clock_text(ts: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(ts))


class ResultsLog(RichLog):
    """Each result as it arrives: time, job, outcome, latency."""

    DEFAULT_CSS = """
    ResultsLog { height: 1fr; }
    """

    def __init__(self, clock: Callable[[], float] = time.time, **kw) -> None:
        super().__init__(max_lines=500, wrap=False, markup=False, highlight=False, auto_scroll=True, **kw)
        self.clock = clock

    def add(self, outcomes: list[JobOutcome]) -> None:
        """Write the batch; under a flood only its newest lines (nobody reads 200 lines in 0.1 s)."""
        now = clock_text(self.clock())
        if len(outcomes) > MAX_LINES_PER_BATCH:
            skipped = len(outcomes) - MAX_LINES_PER_BATCH
            self.write(Text(f"{now} ... {skipped:,} more results (all are counted above)", style="italic"))
            outcomes = outcomes[-MAX_LINES_PER_BATCH:]
        for o in outcomes:
            t = Text(f"{now} ")
            mark = {"done": ("ok", "bold"), "failed": ("FAIL", "bold reverse"), "timed_out": ("TIME", "bold reverse")}
            label, style = mark.get(o.state.value, (o.state.value, ""))
            t.append(f"{label:<4}", style=style)
            short = JobRow(0, o.job).short_id
            t.append(f" {o.latency * 1000:6.0f} ms {short}")
            if o.result and not o.result.ok:
                t.append(f"  {o.result.error_type}: {o.result.error}"[:120])
            self.write(t)


def event_text(event: Event) -> Text:
    t = Text(f"{clock_text(event.ts)} ")
    t.append(f"{event.level:<7}", style="bold" if event.level in ("warning", "error") else "")
    t.append(f" {event.name}", style="bold")
    for k, v in event.fields.items():
        t.append(f" {k}={v}")
    return t


class EventsLog(RichLog):
    """The engine's structured events, newest last (already redacted by the EventLog)."""

    def __init__(self, **kw) -> None:
        super().__init__(max_lines=1000, wrap=True, markup=False, highlight=False, auto_scroll=True, **kw)

    def add(self, events: list[Event]) -> None:
        for e in events:
            self.write(event_text(e))
