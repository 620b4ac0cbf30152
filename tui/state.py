"""What the console knows, kept without Textual so it can be tested and reasoned about.

Everything here is bounded: the last 500 jobs, the last results and events,
a minute of throughput and latency history.
"""

from __future__ import annotations

import time
from collections import Counter, OrderedDict, deque
from dataclasses import dataclass, field
from typing import Callable

from engine.breaker import BreakerSnapshot, BreakerState
from engine.deadletters import DeadLetter, DeadReason
from engine.models import Job, JobState
from engine.monitor import Depths
from engine.orphans import Orphan
from engine.producer import JobOutcome

MAX_JOBS = 500
MAX_RESULTS = 500
MAX_EVENTS = 1000
HISTORY = 60
SHORT_NAME = 19  # a short id is at most 19 + 1 + 8 = 28 characters


@dataclass(slots=True)
class JobRow:
    seq: int
    job: Job
    state: JobState = JobState.QUEUED
    attempts: int = 0
    latency: float | None = None
    detail: str = ""

    @property
    def short_id(self) -> str:
        """The id without its session prefix, the uuid cut to its last 8: readable at 80 columns."""
        rest = self.job.id.removeprefix(self.job.session + "-")
        name, _, uid = rest.rpartition("-")
        return f"{name[:SHORT_NAME]}-{uid[-8:]}" if name else rest[:SHORT_NAME + 9]


@dataclass
class ConsoleState:
    clock: Callable[[], float] = time.time
    jobs: "OrderedDict[str, JobRow]" = field(default_factory=OrderedDict)
    counts: Counter[str] = field(default_factory=Counter)
    results: deque[JobOutcome] = field(default_factory=lambda: deque(maxlen=MAX_RESULTS))
    throughput: deque[float] = field(default_factory=lambda: deque([0.0] * HISTORY, maxlen=HISTORY))
    latency_ms: deque[float] = field(default_factory=lambda: deque([0.0] * HISTORY, maxlen=HISTORY))
    depths: Depths | None = None
    depths_error: str = ""
    orphans: int | None = None
    breaker: BreakerSnapshot | None = None
    server_version: str = ""
    paused: bool = False
    total_results: int = 0
    notes: tuple[int, int] = (0, 0)  # (done, total) of the last notes batch
    dead: DeadLettersView = field(default_factory=lambda: DeadLettersView())
    orphan_scan: OrphansView = field(default_factory=lambda: OrphansView())
    _seq: int = 0
    _results_this_second: int = 0

    def add_jobs(self, jobs: list[Job]) -> list[JobRow]:
        rows = []
        for job in jobs:
            old = self.jobs.pop(job.id, None)
            if old is not None:  # a retried dead letter this console submitted before: it is queued again
                self.counts[old.state.value] -= 1
            self._seq += 1
            row = JobRow(self._seq, job)
            self.jobs[job.id] = row
            self.counts[JobState.QUEUED.value] += 1
            rows.append(row)
        while len(self.jobs) > MAX_JOBS:
            self.jobs.popitem(last=False)
        return rows

    def _move(self, row: JobRow, state: JobState) -> None:
        self.counts[row.state.value] -= 1
        self.counts[state.value] += 1
        row.state = state

    def apply_outcomes(self, outcomes: list[JobOutcome]) -> list[JobRow]:
        """Record outcomes; counters keep counting even for rows no longer shown."""
        changed = []
        for outcome in outcomes:
            self.results.append(outcome)
            self.total_results += 1
            self._results_this_second += 1
            row = self.jobs.get(outcome.job_id)
            if row is None:
                self.counts[outcome.state.value] += 1
                self.counts[JobState.QUEUED.value] -= 1
                continue
            self._move(row, outcome.state)
            row.latency = outcome.latency
            r = outcome.result
            row.attempts = r.attempts if r else row.attempts
            row.detail = (f"{r.error_type}: {r.error}" if r and not r.ok else "") or ""
            changed.append(row)
        return changed

    def mark_running(self, running: set[str]) -> list[JobRow]:
        changed = []
        for job_id in running:
            row = self.jobs.get(job_id)
            if row and row.state is JobState.QUEUED:
                self._move(row, JobState.RUNNING)
                changed.append(row)
        return changed

    def tick(self, latency_ms: float | None) -> None:
        """Once a second: roll the throughput and latency histories."""
        self.throughput.append(float(self._results_this_second))
        self._results_this_second = 0
        self.latency_ms.append(latency_ms if latency_ms is not None else 0.0)

    @property
    def breaker_state(self) -> BreakerState:
        return self.breaker.state if self.breaker else BreakerState.CLOSED

    def depths_age(self) -> float | None:
        return None if self.depths is None else max(0.0, self.clock() - self.depths.at)


# -- screens 3 and 4: what the console last read of dead letters and orphans -------------

DEAD_PAGE_SIZE = 50
MAX_MARKS = 5000
DEAD_REFRESH_SECONDS = 1.0


def short_dead_id(entry_id: str, session: str = "") -> str:
    """A dead letter's id, readable in a narrow column: like JobRow.short_id."""
    if entry_id.startswith(("raw-", "result-")):
        kind, _, rest = entry_id.partition("-")
        return f"{kind}-{short_dead_id(rest, session)}" if kind == "result" else f"raw-{rest[-8:]}"
    rest = entry_id.removeprefix(session + "-") if session else entry_id
    name, _, uid = rest.rpartition("-")
    if name and len(uid) >= 8:
        if not session and "-" in name:  # no session to strip: drop the first part, a session id
            name = name.partition("-")[2] or name
        return f"{name[:SHORT_NAME]}-{uid[-8:]}"
    return rest[:SHORT_NAME + 9]


def parse_dead_filter(text: str) -> tuple[str | None, str | None]:
    """The filter box as (reason, text): a leading reason name filters by reason, the rest is text.

    ``handler_failed`` → reason only; ``handler_failed boom`` → both; ``boom`` → text only.
    """
    words = text.strip().split(None, 1)
    if not words:
        return None, None
    first = words[0].removeprefix("reason:").lower()
    if first in {r.value for r in DeadReason}:
        rest = words[1].strip() if len(words) > 1 else ""
        return first, rest or None
    return None, text.strip()


def describe_dead_filter(reason: str | None, text: str | None) -> str:
    """The filter in words, as a confirm dialog says it: ``of handler_failed matching 'boom'``."""
    parts = []
    if reason:
        parts.append(f"of {reason}")
    if text:
        parts.append(f"matching {text!r}")
    return " ".join(parts)


def plural(n: int, word: str) -> str:
    """``1 entry``, ``37 entries``, ``2 lists``."""
    if n == 1:
        return f"{n:,} {word}"
    if word.endswith("y") and word[-2:-1] not in tuple("aeiou"):
        return f"{n:,} {word[:-1]}ies"
    return f"{n:,} {word}s"


@dataclass
class Marked:
    """What the console remembers of a marked dead letter (it may be on another page)."""

    reason: str
    retryable: bool


@dataclass
class DeadLettersView:
    """The current page of dead letters, how it was asked for, and the marks.

    Only one page is held (``DEAD_PAGE_SIZE`` entries), never the store.
    ``starts`` are the offsets of the pages before this one, so PageUp can go
    back even when a filter made pages uneven.
    """

    entries: list[DeadLetter] = field(default_factory=list)  # newest first
    offset: int = 0                               # where the page shown starts
    requested_offset: int = 0                     # where the page asked for last starts
    next_offset: int | None = None
    total: int | None = None                      # entries in the whole store, as last read
    scanned: int = 0
    starts: list[int] = field(default_factory=list)
    filter_text: str = ""
    marked: "OrderedDict[str, Marked]" = field(default_factory=OrderedDict)
    loading: bool = False
    error: str = ""
    loaded_at: float | None = None
    request: int = 0                              # the newest page request; older answers are dropped

    @property
    def reason(self) -> str | None:
        return parse_dead_filter(self.filter_text)[0]

    @property
    def text(self) -> str | None:
        return parse_dead_filter(self.filter_text)[1]

    @property
    def filtered(self) -> bool:
        return bool(self.filter_text.strip())

    @property
    def page_number(self) -> int:
        return len(self.starts) + 1

    @property
    def has_next(self) -> bool:
        return self.next_offset is not None and (self.total is None or self.next_offset < self.total)

    def entry(self, entry_id: str | None) -> DeadLetter | None:
        return next((e for e in self.entries if e.id == entry_id), None)

    def apply_page(self, request: int, entries: list[DeadLetter], offset: int, next_offset: int | None, total: int,
                   scanned: int, now: float) -> bool:
        """A page arrived; False if a newer request superseded it."""
        if request != self.request:
            return False
        self.entries, self.offset, self.next_offset = list(entries), offset, next_offset
        self.total, self.scanned = total, scanned
        self.loading, self.error, self.loaded_at = False, "", now
        return True

    def apply_error(self, request: int, error: str, now: float) -> bool:
        if request != self.request:
            return False
        self.loading, self.error, self.loaded_at = False, error, now
        return True

    def toggle_mark(self, entry: DeadLetter) -> bool | None:
        """Mark or unmark; True marked, False unmarked, None refused (MAX_MARKS reached)."""
        if entry.id in self.marked:
            del self.marked[entry.id]
            return False
        if len(self.marked) >= MAX_MARKS:
            return None
        self.marked[entry.id] = Marked(entry.reason.value, entry.retryable)
        return True

    def unmark(self, ids: list[str]) -> None:
        for entry_id in ids:
            self.marked.pop(entry_id, None)

    def needs_refresh(self, dead_count: int | None, now: float) -> bool:
        """The store's count moved since this page was read, or the last read failed (at most once a second)."""
        if dead_count is None or self.loading or self.loaded_at is None:
            return False
        return (dead_count != self.total or bool(self.error)) and now - self.loaded_at >= DEAD_REFRESH_SECONDS


@dataclass
class OrphansView:
    """The last orphan scan: its progress while it runs, then what it found."""

    orphans: list[Orphan] = field(default_factory=list)
    scanning: bool = False
    examined: int = 0
    total_keys: int = 0
    cancelled: bool = False
    error: str = ""
    scanned_at: float | None = None
    marked: set[str] = field(default_factory=set)

    def start(self) -> None:
        self.scanning, self.examined, self.total_keys, self.cancelled, self.error = True, 0, 0, False, ""

    def progress(self, examined: int, total: int) -> None:
        if self.scanning:
            self.examined, self.total_keys = examined, total

    def finish(self, orphans: list[Orphan], cancelled: bool, error: str, now: float) -> None:
        self.scanning, self.cancelled, self.error = False, cancelled, error
        if not error:
            self.orphans = list(orphans)
            self.scanned_at = now
            keys = {o.key for o in self.orphans}
            self.marked &= keys

    def orphan(self, key: str | None) -> Orphan | None:
        return next((o for o in self.orphans if o.key == key), None)
