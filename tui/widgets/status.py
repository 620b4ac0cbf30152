"""The top of the dashboard: where we are connected, the breaker, queue depths."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from engine.breaker import BreakerSnapshot, BreakerState


class InfoBar(Static):
    """Redacted URL, server version, embedded or not, namespace/queue, session."""

    DEFAULT_CSS = """
    InfoBar { height: auto; max-height: 2; background: $panel; color: $text; padding: 0 1; }
    """

    def show(self, url: str, version: str, embedded: bool, namespace: str, queue: str, session: str) -> None:
        t = Text()
        t.append(url, style="bold")
        if embedded:
            t.append(" (embedded)", style="bold")
        t.append(f"  v{version or '?'}  {namespace}/{queue}  session {session}")
        self.update(t)


class BreakerBadge(Static):
    """The breaker's state in words (so it reads under NO_COLOR) and in colour."""

    DEFAULT_CSS = """
    BreakerBadge { width: auto; height: 1; padding: 0 1; text-style: bold; }
    BreakerBadge.-closed { background: $success; color: $text; }
    BreakerBadge.-open { background: $error; color: $text; }
    BreakerBadge.-half-open { background: $warning; color: $text; }
    """

    def show(self, snap: BreakerSnapshot | None) -> None:
        state = snap.state if snap else BreakerState.CLOSED
        for s in BreakerState:
            self.set_class(s is state, f"-{s.value}")
        if snap is None:
            self.update("breaker CLOSED")
            return
        text = f"breaker {state.label} {snap.errors}/{snap.threshold} trips {snap.trips}"
        if state is BreakerState.OPEN:
            text += f" probe in {snap.retry_in:.0f}s"
        self.update(text)


class DepthsBar(Static):
    """Queued, processing, dead letters, orphaned result keys; stale when Redis is away."""

    DEFAULT_CSS = """
    DepthsBar { width: 1fr; height: 1; padding: 0 1; }
    DepthsBar.-stale { color: $warning; text-style: italic; }
    """

    def show(self, queued: int | None, processing: int | None, dead: int | None, orphans: int | None,
             stale_for: float | None) -> None:
        def n(v: int | None) -> str:
            return "?" if v is None else f"{v:,}"

        text = f"queued {n(queued)}  processing {n(processing)}  dead {n(dead)}  orphans {n(orphans)}"
        stale = stale_for is not None and stale_for >= 2.5
        if stale:
            text += f"  (stale {stale_for:.0f}s)"
        self.set_class(stale, "-stale")
        self.update(text)


class PausedBadge(Static):
    DEFAULT_CSS = """
    PausedBadge { width: auto; height: 1; padding: 0 1; display: none; text-style: bold reverse; }
    PausedBadge.-on { display: block; }
    """

    def on_mount(self) -> None:
        self.update("PAUSED")


class ReadOnlyBadge(Static):
    """``seawall tui --read-only``: said in words, so an operator knows why keys are missing."""

    DEFAULT_CSS = """
    ReadOnlyBadge { width: auto; height: 1; padding: 0 1; display: none; text-style: bold reverse; }
    ReadOnlyBadge.-on { display: block; }
    """

    def on_mount(self) -> None:
        self.update("READ-ONLY")
