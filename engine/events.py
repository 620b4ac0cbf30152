"""Structured events: one JSON line each, one event name each.

The engine emits; the CLI writes the lines to stderr or a file, and the console
subscribes to show them. Every line passes through the redactor first, so the
Redis password cannot reach a log, whatever a message or exception holds.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, TextIO

from .redact import Redactor

LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40}


@dataclass(frozen=True, slots=True)
class Event:
    name: str
    level: str
    ts: float
    fields: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps({"ts": round(self.ts, 6), "level": self.level, "event": self.name, **self.fields}, default=str)


Subscriber = Callable[[Event], None]


class EventLog:
    """Fan-out of engine events to a line sink and to subscribers."""

    def __init__(
        self,
        sink: TextIO | None = None,
        level: str = "info",
        redactor: Redactor | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.sink = sink
        self.threshold = LEVELS.get(level, 20)
        self.redactor = redactor or Redactor()
        self.clock = clock
        self._subscribers: list[Subscriber] = []
        self._lock = threading.Lock()

    @classmethod
    def to_stderr(cls, level: str = "info", redactor: Redactor | None = None) -> "EventLog":
        return cls(sys.stderr, level, redactor)

    def subscribe(self, fn: Subscriber) -> Callable[[], None]:
        self._subscribers.append(fn)
        return lambda: self._subscribers.remove(fn) if fn in self._subscribers else None

    def emit(self, name: str, level: str = "info", **fields: Any) -> Event:
        event = Event(name, level, self.clock(), fields)
        plain = event.to_json()
        # Redact once, on the serialized form, so nested values are covered too.
        line = self.redactor(plain)
        if line != plain:
            clean = json.loads(line)
            event = Event(name, level, event.ts, {k: clean[k] for k in fields})
        if self.sink is not None and LEVELS.get(level, 20) >= self.threshold:
            with self._lock:
                try:
                    self.sink.write(line + "\n")
                    self.sink.flush()
                except (OSError, ValueError):
                    pass  # a closed or broken log sink must never stop the queue
        for fn in list(self._subscribers):
            try:
                fn(event)
            except Exception:  # noqa: BLE001 - a bad subscriber must not break emitters
                pass
        return event
