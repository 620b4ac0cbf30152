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


class KeysBar(Static):
    """The current screen's keys, like Textual's Footer.

    Footer recomposes its keys on every screen switch and, in the pinned
    Textual, keeps memory each time (about 30 KB a switch); this bar only
    updates one line of text.
    """

    DEFAULT_CSS = """
    KeysBar { dock: bottom; height: 1; background: $panel; color: $text; padding: 0 1; }
    """

    def __init__(self, palette: bool = True, **kw) -> None:
        super().__init__(**kw)
        self.palette = palette

    def on_mount(self) -> None:
        # as Footer does: redraw when focus or check_action changes what is available
        self.screen.bindings_updated_signal.subscribe(self, self.show_for)

    def on_unmount(self) -> None:
        self.screen.bindings_updated_signal.unsubscribe(self)

    def show_for(self, screen) -> None:
        items: list[tuple[list[str], str, bool]] = []  # (keys, description, enabled)
        by_group: dict[object, tuple[list[str], str, bool]] = {}
        seen = set()
        for active in screen.active_bindings.values():
            b = active.binding
            if not b.show or b.action in seen:
                continue
            seen.add(b.action)
            key = b.key_display or screen.app.get_key_display(b)
            if b.group is not None and b.group in by_group:
                by_group[b.group][0].append(key)  # a group shows once, as Footer does: "[ ] page"
                continue
            item = ([key], b.group.description if b.group else b.description, active.enabled)
            items.append(item)
            if b.group is not None:
                by_group[b.group] = item
        t = Text(no_wrap=True, overflow="ellipsis")
        for keys, description, enabled in items:
            dim = "" if enabled else " dim"  # shown, but not available right now
            t.append(" ".join(keys), style="bold reverse" + dim)
            t.append(f" {description}  ", style=dim.strip())
        if self.palette:
            t.append("^p", style="bold reverse")
            t.append(" palette")
        self.update(t)
