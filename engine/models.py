"""Jobs and results as they travel through Redis: JSON, versioned, never pickle."""

from __future__ import annotations

import json
import re
import time
import uuid
from enum import Enum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

SCHEMA_VERSION = 1
NAME_MAX = 64
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class JobState(str, Enum):
    """What the producer knows of a job it submitted."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    TIMED_OUT = "timed_out"


class Outcome(str, Enum):
    """How a job ended, as the worker reports it."""

    OK = "ok"
    ERROR = "error"


def sanitize_name(name: str, limit: int = NAME_MAX) -> str:
    """Reduce any name (a note's path, say) to ``[A-Za-z0-9._-]``, bounded.

    The result never holds ``:``, ``{``, ``}``, ``*`` or whitespace, so it is
    safe inside a key name and a SCAN pattern.
    """
    cleaned = _UNSAFE.sub("_", name).strip("._-") or "job"
    return cleaned[:limit].rstrip("._-") or "job"


def new_session_id() -> str:
    return "s" + uuid.uuid4().hex[:12]


def make_job_id(session_id: str, name: str) -> str:
    """``<session>-<sanitized name>-<uuid4 hex>``: unique, and readable."""
    return f"{sanitize_name(session_id, 32)}-{sanitize_name(name)}-{uuid.uuid4().hex}"


def job_id_of(raw: bytes) -> str | None:
    """The id in a job's bytes, for logs, without trusting the rest of them."""
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return value.get("id") if isinstance(value, dict) else None


class Job(BaseModel):
    """One unit of work. ``attempt`` counts this delivery's tries; ``history``
    counts every failed try the job ever had, dead-letter retries included."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    v: int = SCHEMA_VERSION
    id: str
    session: str
    result_key: str
    handler: str
    payload: Any = None
    attempt: int = 1
    max_attempts: int = 3
    enqueued_at: float = Field(default_factory=time.time)
    timeout: float = 300.0
    failures: int = 0
    retries: int = 0

    def to_json(self) -> bytes:
        return self.model_dump_json().encode()

    @classmethod
    def from_json(cls, raw: bytes | str) -> "Job":
        job = cls.model_validate_json(raw)
        if job.v != SCHEMA_VERSION:
            raise ValueError(f"job schema version {job.v}, this Seawall reads {SCHEMA_VERSION}")
        return job


class Result(BaseModel):
    """A job's outcome, pushed by the worker onto the session's result list."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    v: int = SCHEMA_VERSION
    job_id: str
    outcome: Outcome
    value: Any = None
    error_type: str | None = None
    error: str | None = None
    attempts: int = 1
    worker: str = ""
    handler: str = ""
    enqueued_at: float = 0.0
    started_at: float = 0.0
    finished_at: float = Field(default_factory=time.time)

    @property
    def ok(self) -> bool:
        return self.outcome is Outcome.OK

    def to_json(self) -> bytes:
        return self.model_dump_json().encode()

    @classmethod
    def from_json(cls, raw: bytes | str) -> "Result":
        return cls.model_validate_json(raw)


def describe_validation_error(exc: ValidationError) -> str:
    """One line: the first problem pydantic found, with its field."""
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err.get("loc", ())) or "value"
    return f"{loc}: {err.get('msg', 'invalid')}"
