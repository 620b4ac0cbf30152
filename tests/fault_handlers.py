"""Handlers that misbehave on purpose, loaded into test workers with --import tests.fault_handlers."""

from __future__ import annotations

import os
import signal
import sys
import time


def crash(payload):
    """Kills its own worker, like an OOM kill or a segfault would."""
    os.kill(os.getpid(), signal.SIGKILL)


def hang(payload):
    time.sleep(float((payload or {}).get("seconds", 3600)))
    return "woke up"


def unserializable(payload):
    return object()


def noisy(payload):
    """Prints a lot, and one enormous line with no newline."""
    sys.stdout.write("x" * (5 * 1024 * 1024))
    sys.stdout.flush()
    for i in range(1000):
        print(f"line {i}")
    return "said plenty"


def register(registry):
    registry.register("crash", crash)
    registry.register("hang", hang)
    registry.register("unserializable", unserializable)
    registry.register("noisy", noisy)
