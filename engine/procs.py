"""Worker subprocesses launched by ``seawall notes`` and the console.

Each is a ``seawall worker`` child with the launcher's settings. Stopping is
SIGTERM (the worker finishes or requeues its job), then SIGKILL after a bound,
so no launched worker outlives its launcher by accident.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections import deque
from enum import Enum
from typing import Callable

from .runtime import Runtime

READ_CHUNK = 64 * 1024
LINE_MAX = 2000


class ProcState(str, Enum):
    STARTING = "starting"
    RUNNING = "running"
    STOPPING = "stopping"
    EXITED = "exited"
    KILLED = "killed"


class WorkerProcess:
    """One ``seawall worker`` child; its output kept in a bounded buffer if captured."""

    def __init__(self, runtime: Runtime, *extra: str, capture: bool = True, log_level: str = "info",
                 on_line: Callable[["WorkerProcess", str], None] | None = None, max_lines: int = 500) -> None:
        self.argv, self.env = runtime.worker_command(*extra, log_level=log_level)
        self.capture = capture
        self.on_line = on_line
        self.lines: deque[str] = deque(maxlen=max_lines)
        self.proc: asyncio.subprocess.Process | None = None
        self.state = ProcState.STARTING
        self.started_at = time.time()
        self.returncode: int | None = None
        self._reader: asyncio.Task[None] | None = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    async def start(self) -> "WorkerProcess":
        pipe = asyncio.subprocess.PIPE if self.capture else None
        self.proc = await asyncio.create_subprocess_exec(
            *self.argv, env=self.env, stdin=asyncio.subprocess.DEVNULL, stdout=pipe,
            stderr=asyncio.subprocess.STDOUT if self.capture else None, start_new_session=True,
        )
        self.state = ProcState.RUNNING
        self._reader = asyncio.create_task(self._read())
        return self

    async def _read(self) -> None:
        """Read output in chunks: a line of any length (or none at all) cannot stall the child."""
        assert self.proc is not None
        if self.proc.stdout is not None:
            partial, skipping = b"", False
            while chunk := await self.proc.stdout.read(READ_CHUNK):
                *complete, partial = (partial + chunk).split(b"\n")
                for line in complete:
                    if skipping:  # the tail of an endless line, already shown cut
                        skipping = False
                        continue
                    self._add_line(line)
                if len(partial) > LINE_MAX:  # an endless line: keep its start, drop the rest
                    if not skipping:
                        self._add_line(partial[:LINE_MAX] + b" [...]")
                        skipping = True
                    partial = b""
            if partial and not skipping:
                self._add_line(partial)
        self.returncode = await self.proc.wait()
        if self.state is not ProcState.KILLED:
            self.state = ProcState.EXITED

    def _add_line(self, line: bytes) -> None:
        text = line[:LINE_MAX].decode("utf-8", errors="replace").rstrip()
        self.lines.append(text)
        if self.on_line:
            self.on_line(self, text)

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    def terminate(self) -> None:
        """Graceful: the worker stops claiming and finishes its current job."""
        if self.alive:
            self.state = ProcState.STOPPING
            self._signal(signal.SIGTERM)

    def kill(self) -> None:
        if self.alive:
            self.state = ProcState.KILLED
            self._signal(signal.SIGKILL)

    def _signal(self, sig: int) -> None:
        try:
            os.kill(self.proc.pid, sig)  # type: ignore[union-attr]
        except ProcessLookupError:
            pass

    async def wait(self, timeout: float | None = None) -> int | None:
        if self._reader is None:
            return None
        try:
            await asyncio.wait_for(asyncio.shield(self._reader), timeout)
        except asyncio.TimeoutError:
            return None
        return self.returncode

    async def stop(self, grace: float) -> int | None:
        """SIGTERM, wait up to ``grace``, then SIGKILL; returns the exit code."""
        self.terminate()
        code = await self.wait(grace)
        if code is None and self.alive:
            self.kill()
            code = await self.wait(5)
        return code


class WorkerProcesses:
    """``async with WorkerProcesses(runtime, n)``: n workers for the block's duration."""

    def __init__(self, runtime: Runtime, count: int, *, log_level: str = "warning", log_file: str | None = None) -> None:
        self.runtime = runtime
        self.count = count
        self.log_level = log_level
        self.extra = ("--log-file", log_file) if log_file else ()
        self.procs: list[WorkerProcess] = []

    async def __aenter__(self) -> "WorkerProcesses":
        for _ in range(self.count):
            self.procs.append(await WorkerProcess(self.runtime, *self.extra, capture=False, log_level=self.log_level).start())
        return self

    async def __aexit__(self, *exc: object) -> None:
        grace = self.runtime.settings.shutdown_grace_seconds + self.runtime.settings.blpop_timeout_seconds + 2
        await asyncio.shield(asyncio.gather(*(p.stop(grace) for p in self.procs), return_exceptions=True))
