"""What changed since the last redraw: handed from the app to the active screen."""

from __future__ import annotations

from dataclasses import dataclass, field

from engine.events import Event
from engine.producer import JobOutcome
from tui.state import JobRow


@dataclass
class Changes:
    everything: bool = False
    status: bool = False
    added: list[JobRow] = field(default_factory=list)
    changed: list[JobRow] = field(default_factory=list)
    outcomes: list[JobOutcome] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    workers: bool = False
    dead: bool = False      # screen 3: a page, a mark, the filter or a request changed
    orphans: bool = False   # screen 4: scan progress or a finished scan

    @classmethod
    def all(cls) -> "Changes":
        return cls(everything=True, status=True, workers=True)
