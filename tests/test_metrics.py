"""Metrics move when jobs flow, and the Prometheus output parses."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from engine.handlers import default_registry
from engine.keys import Keys
from engine.metrics import collect_fleet, percentile, prometheus
from engine.producer import Producer
from engine.worker import Worker

from .conftest import ROOT
from .console_support import runtime_for
from .redisproc import free_port

KEYS = Keys("seawall", "default")


def samples(text: str) -> dict[tuple[str, frozenset], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def test_percentiles():
    assert percentile([], 0.5) is None
    assert percentile([3, 1, 2], 0.5) == 2
    assert percentile(range(100), 0.99) == 98


async def test_counters_follow_the_jobs_and_prometheus_parses(redis_server, events):
    rt = runtime_for(redis_server.url, heartbeat_seconds=0.3)
    client = redis_server.client()
    async with Producer(rt.settings, rt.url, events) as producer:
        worker = Worker(rt.settings, rt.url, events, default_registry(), worker_id="m1", concurrency=4)
        task = asyncio.create_task(worker.run())
        before = await collect_fleet(producer.link.client, KEYS)
        for i in range(20):
            await producer.submit("echo", i)
        await producer.submit("fail")
        await asyncio.wait_for(producer.wait_all(), 15)
        await asyncio.sleep(0.8)  # one heartbeat publishes the new figures
        after = await collect_fleet(producer.link.client, KEYS)
        worker.request_stop()
        await asyncio.wait_for(task, 10)
    procs = {p["id"]: p for p in after["processes"]}
    w = procs["m1"]
    assert w["counters"]["succeeded"] == 20 and w["counters"]["failed"] == 1
    p = procs[producer.session_id]
    assert p["counters"]["submitted"] == 21 and p["counters"]["succeeded"] == 20
    assert p["job_latency"]["samples"] == 21 and p["job_latency"]["p50_ms"] > 0
    assert after["depths"]["dead"] == 1 and before["depths"]["dead"] == 0
    parsed = samples(prometheus(after))
    labels = frozenset({"namespace": "seawall", "queue": "default", "role": "worker", "id": "m1",
                        "outcome": "succeeded"}.items())
    assert parsed[("seawall_jobs_total", labels)] == 20
    assert parsed[("seawall_queue_depth", frozenset({"namespace": "seawall", "queue": "default",
                                                      "state": "dead"}.items()))] == 1
    assert client.ping()


def test_cli_prometheus_and_serve(redis_server):
    cmd = [sys.executable, "-m", "engine.cli", "--redis-url", redis_server.url, "metrics"]
    out = subprocess.run([*cmd, "--prometheus"], capture_output=True, text=True, timeout=30, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert ("seawall_workers", frozenset({"namespace": "seawall", "queue": "default"}.items())) in samples(out.stdout)
    port = free_port()
    server = subprocess.Popen([*cmd, "--serve", str(port)], cwd=ROOT, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read().decode()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        assert "seawall_queue_depth" in body and samples(body)
    finally:
        server.terminate()
        server.wait(10)


def test_metrics_against_a_stopped_server_is_one_line(redis_server):
    url = redis_server.url
    redis_server.stop()
    out = subprocess.run([sys.executable, "-m", "engine.cli", "--redis-url", url, "metrics"], capture_output=True,
                         text=True, timeout=30, cwd=ROOT)
    assert out.returncode == 1 and out.stderr.strip().count("\n") == 0 and "unreachable" in out.stderr
