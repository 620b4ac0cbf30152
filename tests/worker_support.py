"""Worker subprocesses for fault tests: started, killed and reaped by pid."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from engine.runtime import Runtime

ROOT = Path(__file__).resolve().parent.parent


class Workers:
    """A small supervisor: spawn, kill -9, restart; everything ended at close()."""

    def __init__(self, runtime: Runtime, log_dir: Path, *extra: str) -> None:
        self.runtime = runtime
        self.log_dir = log_dir
        self.extra = extra
        self.procs: dict[str, subprocess.Popen] = {}
        self.spawned = 0

    def spawn(self, worker_id: str | None = None) -> str:
        self.spawned += 1
        worker_id = worker_id or f"w{self.spawned}"
        argv, env = self.runtime.worker_command("--worker-id", worker_id, "--import", "tests.fault_handlers",
                                                *self.extra, log_level="info")
        log = (self.log_dir / f"{worker_id}.log").open("ab")
        self.procs[worker_id] = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                                 stdin=subprocess.DEVNULL)
        return worker_id

    def kill9(self, worker_id: str) -> None:
        proc = self.procs[worker_id]
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.wait(10)

    def dead(self) -> list[str]:
        return [wid for wid, p in self.procs.items() if p.poll() is not None]

    def alive(self) -> list[str]:
        return [wid for wid, p in self.procs.items() if p.poll() is None]

    def log(self, worker_id: str) -> str:
        return (self.log_dir / f"{worker_id}.log").read_text(errors="replace")

    def close(self, grace: float = 10.0) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for proc in self.procs.values():
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


def pid_alive(pid: int | None) -> bool:
    """A live process (a zombie that still answers kill(0) counts as dead)."""
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split()[2] != "Z"
    except OSError:
        return False
