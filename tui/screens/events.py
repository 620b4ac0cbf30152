"""Screen 5: the engine's structured events, newest last."""

from __future__ import annotations

from textual.app import ComposeResult

from tui.changes import Changes
from tui.screens.base import ConsoleScreen
from tui.widgets.logs import EventsLog


class EventsScreen(ConsoleScreen):
    DEFAULT_CSS = """
    EventsScreen EventsLog { height: 1fr; }
    """

    def body(self) -> ComposeResult:
        yield EventsLog(id="events")

    def on_mount(self) -> None:
        self.query_one(EventsLog).focus()

    def sync_body(self, changes: Changes) -> None:
        log = self.query_one(EventsLog)
        if changes.everything:
            log.clear()
            log.add(list(self.console.state_events))
        elif changes.events:
            log.add(changes.events)
