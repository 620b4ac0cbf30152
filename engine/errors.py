"""Errors a person may see: each renders as one line, never a traceback."""

from __future__ import annotations


class SeawallError(Exception):
    """Base of every error Seawall reports to a user."""

    exit_code = 1


class RedisUnavailableError(SeawallError):
    """PING failed before any work started."""


class SubmitError(SeawallError):
    """A job could not be enqueued (after retries, or the breaker is open)."""


class PayloadError(SeawallError):
    """The job itself is unacceptable: too large, not JSON, unknown handler."""

    exit_code = 2
