"""Private redis-server processes for tests and benchmarks.

Each one listens on a free loopback port, keeps nothing on disk unless asked,
and is ended by its pid. Never the shared server on 6379.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import redis

from engine.embedded import find_redis_server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisProcess:
    def __init__(self, *extra: str, password: str | None = None, port: int | None = None) -> None:
        self.binary = find_redis_server()
        self.port = port or free_port()
        self.password = password
        self.extra = list(extra)
        self.dir = Path(tempfile.mkdtemp(prefix="seawall-redis-"))
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, password=self.password, socket_timeout=5)

    def start(self, timeout: float = 10.0) -> "RedisProcess":
        cmd = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
               "--dir", str(self.dir), "--daemonize", "no", "--loglevel", "warning", *self.extra]
        if self.password:
            cmd += ["--requirepass", self.password]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.proc.returncode}")
            try:
                c = self.client()
                c.ping()
                c.close()
                return self
            except (redis.ConnectionError, redis.TimeoutError, OSError):
                time.sleep(0.02)
            except redis.AuthenticationError:
                return self
        self.stop()
        raise RuntimeError(f"redis-server on port {self.port} did not answer within {timeout}s")

    def stop(self, timeout: float = 10.0) -> None:
        """End the server by its pid (SIGKILL if SIGTERM is not enough)."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout)
        self.proc = None

    def restart(self) -> "RedisProcess":
        self.stop()
        return self.start()

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def cleanup(self) -> None:
        self.stop()
        for f in self.dir.glob("**/*"):
            if f.is_file():
                f.unlink(missing_ok=True)
        for d in sorted(self.dir.glob("**/"), reverse=True):
            try:
                os.rmdir(d)
            except OSError:
                pass
