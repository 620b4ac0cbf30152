"""Screens 3 and 4 until their issue fills them: they say what they will hold."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.widgets import Static

from tui.changes import Changes
from tui.screens.base import ConsoleScreen


class Placeholder(ConsoleScreen):
    WHAT = ""
    DEFAULT_CSS = """
    Placeholder #placeholder { padding: 1 2; height: 1fr; color: $text-muted; }
    """

    def body(self) -> ComposeResult:
        yield Static(self.WHAT, id="placeholder")

    def sync_body(self, changes: Changes) -> None:
        pass


class DeadLettersScreen(Placeholder):
    WHAT = "Dead letters: the count is above (dead). Browse, retry and delete from the command line: seawall dlq --help"


class OrphansScreen(Placeholder):
    WHAT = "Orphaned result keys: the count is above (orphans). List and clean them: seawall orphans --help"
