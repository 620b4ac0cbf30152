"""A circuit breaker over Redis errors: fail fast instead of hanging on an outage.

closed --(threshold consecutive errors)--> open --(reset_seconds)--> half-open
half-open --(probe succeeds)--> closed;  half-open --(probe fails)--> open
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import Enum
from typing import Callable


class BreakerState(str, Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half-open"

    @property
    def label(self) -> str:
        return self.value.upper()


class BreakerOpenError(Exception):
    """Raised instead of calling Redis while the breaker is open."""


@dataclass(frozen=True, slots=True)
class BreakerSnapshot:
    state: BreakerState
    errors: int
    threshold: int
    trips: int
    retry_in: float
    last_error: str


Listener = Callable[[BreakerSnapshot, BreakerState], None]


class CircuitBreaker:
    """Counts consecutive Redis errors; callers ask ``allow()`` before a call."""

    def __init__(
        self,
        threshold: int,
        reset_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.threshold = threshold
        self.reset_seconds = reset_seconds
        self.clock = clock
        self.state = BreakerState.CLOSED
        self.errors = 0
        self.trips = 0
        self.last_error = ""
        self._opened_at = 0.0
        self._probe_out = False
        self._listeners: list[Listener] = []

    def subscribe(self, fn: Listener) -> None:
        """``fn(snapshot, previous_state)`` runs on every state change."""
        self._listeners.append(fn)

    def snapshot(self) -> BreakerSnapshot:
        retry_in = 0.0
        if self.state is BreakerState.OPEN:
            retry_in = max(0.0, self._opened_at + self.reset_seconds - self.clock())
        return BreakerSnapshot(self.state, self.errors, self.threshold, self.trips, retry_in, self.last_error)

    def available(self) -> bool:
        """Would ``allow()`` say yes? (Does not take the half-open probe.)"""
        if self.state is BreakerState.OPEN and self.clock() - self._opened_at >= self.reset_seconds:
            self._move(BreakerState.HALF_OPEN)
        return self.state is BreakerState.CLOSED or (self.state is BreakerState.HALF_OPEN and not self._probe_out)

    def allow(self) -> bool:
        """True if a Redis call may go ahead now (in half-open: one probe)."""
        if not self.available():
            return False
        if self.state is BreakerState.HALF_OPEN:
            self._probe_out = True
        return True

    def check(self) -> None:
        """``allow()`` or raise a one-line BreakerOpenError."""
        if not self.allow():
            snap = self.snapshot()
            detail = f"; last error: {snap.last_error}" if snap.last_error else ""
            raise BreakerOpenError(
                f"Redis circuit breaker is {snap.state.label} after {snap.errors} consecutive errors"
                f" (next probe in {snap.retry_in:.1f}s){detail}"
            )

    def release_probe(self) -> None:
        """The probe ended without telling us anything (cancelled): allow another."""
        self._probe_out = False

    def record_success(self) -> None:
        self.errors = 0
        self._probe_out = False
        if self.state is not BreakerState.CLOSED:
            self._move(BreakerState.CLOSED)

    def record_failure(self, error: BaseException | str) -> None:
        self.errors += 1
        self.last_error = str(error).splitlines()[0][:200] if str(error) else type(error).__name__
        self._probe_out = False
        if self.state is BreakerState.HALF_OPEN or (
            self.state is BreakerState.CLOSED and self.errors >= self.threshold
        ):
            self.trips += 1
            self._opened_at = self.clock()
            self._move(BreakerState.OPEN)

    def _move(self, new: BreakerState) -> None:
        previous, self.state = self.state, new
        snap = self.snapshot()
        for fn in list(self._listeners):
            try:
                fn(snap, previous)
            except Exception:  # noqa: BLE001 - listeners never break the breaker
                pass
