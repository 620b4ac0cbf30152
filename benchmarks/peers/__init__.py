"""One module per system, all with the same small interface, so compare.py treats them alike.

Each module ``benchmarks/peers/<system>.py`` holds that system's job function
(return input + 1) and offers:

- ``start_workers(n, url, **opts) -> list[Popen]``: ``n`` worker processes, started
  with the system's own, documented worker command;
- ``Client(url, **opts)``: the producer side, an async context manager with
  ``enqueue_one(i) -> handle`` (one job, one call of the system's normal API),
  ``collect(handles, timeout) -> list[int]`` (every result, bounded) and
  ``run_one(i, timeout) -> int`` (submit one, block for its result: enqueue_one then
  collect, unless the system has its own call for it) and ``run_latency(count, budget)``.

Everything is async so the async libraries (Seawall, arq, SAQ) pay no per-call
event-loop entry; the sync ones (RQ, Dramatiq, the floor) simply block inside.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Iterable

REPO = Path(__file__).resolve().parents[2]
URL_ENV = "BENCH_REDIS_URL"  # worker modules that need the URL at import time read it here
_log_dir: Path | None = None


def log_dir() -> Path:
    """Where worker output goes (one temporary folder per process that starts workers)."""
    global _log_dir
    if _log_dir is None:
        _log_dir = Path(tempfile.mkdtemp(prefix="seawall-bench-"))
    return _log_dir


def remove_logs() -> None:
    if _log_dir is not None:
        shutil.rmtree(_log_dir, ignore_errors=True)


def bench_url() -> str:
    """The private server's URL, for modules a worker command imports; never a default server."""
    try:
        return os.environ[URL_ENV]
    except KeyError:
        raise RuntimeError(f"{URL_ENV} is not set: these modules are run by benchmarks/compare.py") from None


def worker_env(url: str) -> dict[str, str]:
    """The caller's environment, minus SEAWALL_* (reproducible), plus the repo on the path and the URL."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEAWALL_")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    env[URL_ENV] = url
    env["PYTHONUNBUFFERED"] = "1"
    return env


def tool(name: str) -> str:
    """A console script of this virtualenv (beside sys.executable), else from PATH."""
    here = Path(sys.executable).parent / name
    return str(here) if here.exists() else (shutil.which(name) or name)


def spawn(cmd: list[str], url: str) -> subprocess.Popen[bytes]:
    """One worker process; its output goes to a log file so a failure can say why."""
    log = open(log_dir() / f"{Path(cmd[0]).name}-{time.monotonic_ns()}.log", "wb")  # noqa: SIM115 - kept by the Popen
    proc = subprocess.Popen(cmd, cwd=REPO, env=worker_env(url), stdin=subprocess.DEVNULL, stdout=log,
                            stderr=subprocess.STDOUT)
    proc.log_path = log.name  # type: ignore[attr-defined]
    log.close()
    return proc


def log_tail(proc: subprocess.Popen[bytes], lines: int = 3) -> str:
    try:
        text = Path(proc.log_path).read_text(errors="replace").strip().splitlines()  # type: ignore[attr-defined]
    except (OSError, AttributeError):
        return ""
    return " | ".join(text[-lines:])[-400:]


class Client:
    """Base producer: subclasses give ``enqueue_one`` and ``collect``; latency comes for free."""

    def __init__(self, url: str, **opts: Any) -> None:
        self.url = url
        self.opts = opts
        self.counters: dict[str, int] = {}  # anything odd a client saw, reported per run

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def __aenter__(self) -> "Client":
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def enqueue_one(self, i: int) -> Any:
        raise NotImplementedError

    async def enqueue_many(self, items: Iterable[int]) -> list[Any]:
        raise NotImplementedError(f"{type(self).__module__} has no batch submit")

    async def collect(self, handles: list[Any], timeout: float) -> list[int]:
        raise NotImplementedError

    async def run_one(self, i: int, timeout: float) -> int:
        """Submit one job and block for its result: a system with a call for that overrides this."""
        [value] = await self.collect([await self.enqueue_one(i)], timeout=timeout)
        return value

    async def run_latency(self, count: int, budget: float) -> list[float]:
        """``count`` round trips (or as many as fit in ``budget`` seconds), one job at a time."""
        samples: list[float] = []
        stop = time.perf_counter() + budget
        for i in range(count):
            started = time.perf_counter()
            value = await self.run_one(i, timeout=max(1.0, stop - started + 5))
            samples.append(time.perf_counter() - started)
            if value != i + 1:
                raise AssertionError(f"latency job {i} returned {value!r}")
            if time.perf_counter() > stop:
                break
        return samples
