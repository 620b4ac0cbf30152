"""What every screen shares: the status rows on top, and how it receives changes."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.widgets import Footer

from tui.changes import Changes
from tui.widgets.status import BreakerBadge, DepthsBar, InfoBar, PausedBadge

if TYPE_CHECKING:
    from tui.app import SeawallApp


class StatusRows(Horizontal):
    DEFAULT_CSS = """
    StatusRows { height: 1; }
    """


class ConsoleScreen(Screen):
    """A screen of the console. Subclasses add ``body()`` and ``sync_body()``."""

    TITLE_TEXT = ""

    @property
    def console(self) -> "SeawallApp":
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield InfoBar()
        with StatusRows():
            yield BreakerBadge()
            yield DepthsBar()
            yield PausedBadge()
        yield from self.body()
        yield Footer()

    def body(self) -> ComposeResult:
        yield from ()

    def on_screen_resume(self) -> None:
        self.sync(Changes.all())

    def sync(self, changes: Changes) -> None:
        if not self.is_mounted:
            return
        try:
            if changes.status or changes.everything:
                self._sync_status()
            self.sync_body(changes)
        except NoMatches:
            pass  # the screen is being composed or torn down: the next sync catches up

    def _sync_status(self) -> None:
        app = self.console
        state, rt = app.state, app.runtime
        self.query_one(InfoBar).show(rt.shown_url, state.server_version, rt.embedded, rt.settings.namespace,
                                     rt.settings.queue, app.session_id)
        self.query_one(BreakerBadge).show(state.breaker)
        d = state.depths
        self.query_one(DepthsBar).show(d.queued if d else None, d.processing if d else None,
                                       d.dead if d else None, state.orphans, state.depths_age())
        self.query_one(PausedBadge).set_class(state.paused, "-on")

    def sync_body(self, changes: Changes) -> None:
        pass
