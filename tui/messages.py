"""Messages from the console's backend to the UI: the only way engine news reaches widgets."""

from __future__ import annotations

from dataclasses import dataclass

from textual.message import Message

from engine.breaker import BreakerSnapshot, BreakerState
from engine.deadletters import Page
from engine.events import Event
from engine.models import Job
from engine.monitor import Depths
from engine.orphans import Orphan
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


# -- screens 3 and 4: dead letters and orphaned result lists ------------------------------


@dataclass
class DeadLettersPage(Message):
    """One page read with DeadLetterStore.page (``error`` set, and ``page`` None, if it failed)."""

    request: int
    page: Page | None
    offset: int
    error: str = ""


@dataclass
class DeadLettersMatched(Message):
    """How many entries a filter matches (for the confirm of ``R``), and how many kept a job."""

    request: int
    reason: str | None
    text: str | None
    count: int | None
    retryable: int = 0
    error: str = ""


@dataclass
class DeadLettersActed(Message):
    """A retry or delete finished: what it did, in one line, and the ids that left the store."""

    verb: str
    summary: str
    gone: list[str]
    ok: bool = True


@dataclass
class OrphanScanProgress(Message):
    examined: int
    total: int


@dataclass
class OrphansScanned(Message):
    orphans: list[Orphan]
    cancelled: bool = False
    error: str = ""


@dataclass
class OrphansCleaned(Message):
    verb: str
    summary: str
    ok: bool = True
