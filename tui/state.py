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
from engine.models import Job, JobState
from engine.monitor import Depths
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
    _seq: int = 0
    _results_this_second: int = 0

    def add_jobs(self, jobs: list[Job]) -> list[JobRow]:
        rows = []
        for job in jobs:
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
