"""What every screen shares: the status rows on top, and how it receives changes."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.css.query import NoMatches
from textual.screen import Screen

from tui.changes import Changes
from tui.widgets.status import BreakerBadge, DepthsBar, InfoBar, KeysBar, PausedBadge, ReadOnlyBadge

#: Actions that change the queue, its workers or its keys: hidden by ``seawall tui --read-only``
#: (bindings, footer, help and palette). Marking is hidden too: it only serves retry and delete.
MUTATING_ACTIONS = frozenset({
    "submit", "notes", "launch_worker", "stop_worker", "kill_worker",
    "retry", "retry_all", "delete", "mark", "adopt", "delete_orphans", "mark_orphan",
})

if TYPE_CHECKING:
    from tui.app import SeawallApp


def quiet_app_keys(prefix: str) -> list[Binding]:
    """The app's global keys, still working but left out of this screen's footer (see BUSY_FOOTER)."""
    return [Binding(key, f"app.{action}", description, show=False, id=f"{prefix}-quiet-{action}")
            for key, action, description in QUIET_APP_KEYS]


QUIET_APP_KEYS = [("s", "submit", "Submit"), ("n", "notes", "Notes"), ("w", "launch_worker", "Worker+"),
                  ("p", "pause", "Pause")]


class StatusRows(Horizontal):
    DEFAULT_CSS = """
    StatusRows { height: 1; }
    """


class ConsoleScreen(Screen):
    """A screen of the console. Subclasses add ``body()`` and ``sync_body()``."""

    TITLE_TEXT = ""
    #: Screens with many keys of their own: the footer leaves out ctrl+p and the global submit keys
    #: (``QUIET_APP_KEYS``), so the screen's keys and ``?`` fit 80 columns. They all still work, and
    #: ``?`` lists them.
    BUSY_FOOTER = False

    @property
    def console(self) -> "SeawallApp":
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield InfoBar()
        with StatusRows():
            yield BreakerBadge()
            yield DepthsBar()
            yield PausedBadge()
            yield ReadOnlyBadge()
        yield from self.body()
        yield KeysBar(palette=not self.BUSY_FOOTER)

    def body(self) -> ComposeResult:
        yield from ()

    def on_screen_resume(self) -> None:
        self.show_keys()
        self.sync(Changes.all())

    def show_keys(self) -> None:
        """The keys bar: the bindings Textual's Footer would show (focus, check_action and all)."""
        try:
            self.query_one(KeysBar).show_for(self)
        except NoMatches:
            pass

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """False hides a binding from the footer and disables it: read-only hides every mutation."""
        return not (self.console.read_only and action in MUTATING_ACTIONS)

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
        self.query_one(ReadOnlyBadge).set_class(app.read_only, "-on")

    def sync_body(self, changes: Changes) -> None:
        pass
