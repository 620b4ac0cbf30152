"""Messages from the console's backend to the UI: the only way engine news reaches widgets."""

from __future__ import annotations

from dataclasses import dataclass

from textual.message import Message

from engine.breaker import BreakerSnapshot, BreakerState
from engine.events import Event
from engine.models import Job
from engine.monitor import Depths
from engine.producer import JobOutcome


@dataclass
class JobsSubmitted(Message):
    jobs: list[Job]


@dataclass
class SubmitFailed(Message):
    error: str


@dataclass
class OutcomesArrived(Message):
    outcomes: list[JobOutcome]


@dataclass
class DepthsRead(Message):
    depths: Depths | None
    error: str
    latency_ms: float | None


@dataclass
class OrphansCounted(Message):
    count: int | None


@dataclass
class BreakerChanged(Message):
    snapshot: BreakerSnapshot
    previous: BreakerState


@dataclass
class EngineEvents(Message):
    events: list[Event]


@dataclass
class WorkersChanged(Message):
    """A launched worker started, logged, changed state or exited."""

    worker_id: str | None = None


@dataclass
class NotesProgress(Message):
    done: int
    total: int


@dataclass
class Connected(Message):
    server_version: str
