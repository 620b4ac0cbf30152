"""Seawall against the job queues a user would pick instead, in one run, on one private Redis.

    python benchmarks/compare.py [--jobs N] [--reps R] [--quick]

One private redis-server (loopback, free port, no persistence) serves every
system in turn, FLUSHALLed between systems. Each system runs in a child process
of this one (its own session, so a hung system is ended with everything it
started, by pid), which starts the system's worker processes with its own
worker command and measures, on the job "return input + 1" with the result
returned to the producer:

- throughput: N jobs enqueued one call at a time, then every result collected,
  with 1 and with 2 worker processes (timed from the first enqueue to the last result);
- latency: submit one job and block for its result, up to 200 times (1 worker);
- Redis commands per job (total_commands_processed over the throughput run / N;
  Redis 7 counts commands run inside scripts and MULTI too) and worker CPU per job
  (user + system of the worker processes and their children, from psutil).

After the table it runs Seawall's own figures from their issues, each a script
beside this one (skip them with --no-extras): the console's load (results/s it
absorbs while keys stay responsive), the orphan scan over a million keys, and
opening a store of 100,000 dead letters.

Figures are medians over the repetitions. The floor row is bare redis-py
LPUSH + BLPOP through a tiny echo worker. Ratios are Seawall's figure over each
row's: throughput higher is better for Seawall, latency lower is better.
Prints one table and writes the same results to benchmarks/results/latest.json.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import importlib.metadata
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import psutil  # noqa: E402
import redis  # noqa: E402

from benchmarks.peers import URL_ENV, log_tail, remove_logs  # noqa: E402


@dataclass(frozen=True)
class Row:
    key: str
    label: str
    module: str
    opts: dict[str, Any] = field(default_factory=dict)
    batch: bool = False  # enqueue every job in one call (Seawall's submit_many)


SEAWALL_CONCURRENCY = 8  # like Dramatiq's 8 threads, arq's and SAQ's 10 concurrent jobs
ROWS = [
    Row("floor", "floor: redis-py LPUSH+BLPOP", "floor"),
    Row("seawall", f"seawall (--concurrency {SEAWALL_CONCURRENCY})", "seawall", {"concurrency": SEAWALL_CONCURRENCY}),
    Row("seawall-batch", "seawall (batch submit)", "seawall", {"concurrency": SEAWALL_CONCURRENCY}, batch=True),
    Row("rq-simple", "rq (SimpleWorker)", "rq", {"worker_class": "rq.worker.SimpleWorker"}),
    Row("rq-fork", "rq (default forking Worker)", "rq", {"worker_class": "rq.worker.Worker"}),
    Row("arq", "arq (default 0.5 s polls)", "arq", {"tuned": False}),
    Row("arq-tuned", "arq (tuned: 10 ms polls)", "arq", {"tuned": True}),
    Row("dramatiq", "dramatiq (redis, 8 threads)", "dramatiq", {"threads": 8}),
    Row("saq", "saq (redis, concurrency 10)", "saq"),
]
BY_KEY = {r.key: r for r in ROWS}
WORKER_COUNTS = (1, 2)
WARMUP_JOBS = 20
PACKAGES = ["redis", "hiredis", "rq", "arq", "dramatiq", "saq", "psutil"]


@dataclass(frozen=True)
class Extra:
    """One of Seawall's own figures: a script in benchmarks/, its arguments (full run, --quick)."""

    name: str
    script: str
    full: tuple[str, ...]
    quick: tuple[str, ...]


EXTRAS = [
    Extra("console load", "console_load.py", ("--seconds", "15"), ("--seconds", "5")),
    Extra("orphan scan", "orphan_scan.py", ("--keys", "1000000"), ("--keys", "100000")),
    Extra("dead letters", "dlq_open.py", ("--entries", "100000"), ("--entries", "10000")),
]


# -- measuring one system (runs in a child process) -----------------------------------------------


def tree_cpu(pid: int) -> float:
    """CPU seconds of a process, its live descendants, and the children they have reaped."""
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    total = 0.0
    for p in procs:
        try:
            t = p.cpu_times()
            total += t.user + t.system + t.children_user + t.children_system
        except psutil.NoSuchProcess:
            pass
    return total


def check_alive(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        if p.poll() is not None:
            raise RuntimeError(f"worker exited with {p.returncode}: {log_tail(p)}")


def settle(procs: list[subprocess.Popen[bytes]], timeout: float = 30.0) -> None:
    """Wait until every worker has finished starting (its CPU use drops to idle), bounded."""
    deadline = time.monotonic() + timeout
    time.sleep(0.5)
    before = [tree_cpu(p.pid) for p in procs]
    quiet = 0
    while quiet < 2 and time.monotonic() < deadline:
        time.sleep(0.25)
        check_alive(procs)
        now = [tree_cpu(p.pid) for p in procs]
        quiet = quiet + 1 if all(b - a < 0.06 for a, b in zip(before, now)) else 0
        before = now


def stop_workers(procs: list[subprocess.Popen[Any]], grace: float = 15.0) -> None:
    """SIGTERM each worker by pid (their graceful stop), then SIGKILL what is left with its children."""
    kids: list[psutil.Process] = []  # Process objects, not pids: kill() checks it is still the same process
    for p in procs:
        if p.poll() is None:
            try:
                kids.extend(psutil.Process(p.pid).children(recursive=True))
                p.send_signal(signal.SIGTERM)
            except (psutil.NoSuchProcess, ProcessLookupError):
                pass
    deadline = time.monotonic() + grace
    for p in procs:
        try:
            p.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)
    for kid in kids:
        try:
            kid.kill()
        except psutil.NoSuchProcess:
            pass


def pct(samples: list[float], q: int) -> float:
    if len(samples) == 1:
        return samples[0]
    return statistics.quantiles(samples, n=100, method="inclusive")[q - 1]


async def throughput_run(client: Any, procs: list[subprocess.Popen[bytes]], r: redis.Redis, n: int,
                         batch: bool, timeout: float) -> dict[str, Any]:
    r.config_resetstat()
    client.counters.clear()
    cpu0 = sum(tree_cpu(p.pid) for p in procs)
    own0 = time.process_time()
    t0 = time.perf_counter()
    if batch:
        handles = await client.enqueue_many(range(n))
    else:
        handles = [await client.enqueue_one(i) for i in range(n)]
    t_enqueued = time.perf_counter()
    results = await client.collect(handles, timeout=timeout)
    t1 = time.perf_counter()
    own1 = time.process_time()
    cpu1 = sum(tree_cpu(p.pid) for p in procs)
    commands = r.info("stats")["total_commands_processed"]
    stats = r.info("commandstats")
    if sorted(results) != list(range(1, n + 1)):
        raise AssertionError(f"wrong results: {sorted(results)[:5]}... for {n} jobs")
    top = sorted(((k.removeprefix("cmdstat_"), v["calls"]) for k, v in stats.items()), key=lambda kv: -kv[1])
    return {
        "jobs_per_s": n / (t1 - t0),
        "seconds": t1 - t0,
        "enqueue_seconds": t_enqueued - t0,
        "commands_per_job": commands / n,
        "worker_cpu_ms_per_job": (cpu1 - cpu0) / n * 1000,
        "producer_cpu_ms_per_job": (own1 - own0) / n * 1000,
        "commands": {k: round(c / n, 2) for k, c in top[:12]},
        **({"client_counters": dict(client.counters)} if client.counters else {}),
    }


async def measure(row: Row, url: str, args: argparse.Namespace, out: dict[str, Any],
                  started: list[subprocess.Popen[bytes]], save: Any) -> None:
    mod = importlib.import_module(f"benchmarks.peers.{row.module}")
    r = redis.Redis.from_url(url, socket_timeout=10)
    for workers in WORKER_COUNTS:
        procs = mod.start_workers(workers, url, **row.opts)
        started.extend(procs)
        try:
            settle(procs)
            async with mod.Client(url, **row.opts) as client:
                warm = [await client.enqueue_one(i) for i in range(WARMUP_JOBS)]
                await client.collect(warm, timeout=60)
                runs = []
                for _ in range(args.reps):
                    check_alive(procs)
                    runs.append(await throughput_run(client, procs, r, args.jobs, row.batch, args.collect_timeout))
                out["throughput"][str(workers)] = runs
                save()
                if workers == 1 and not row.batch:
                    for _ in range(args.reps):
                        client.counters.clear()
                        samples = await client.run_latency(args.latency_count, args.latency_budget)
                        out["latency"].append({"n": len(samples), "p50_ms": pct(samples, 50) * 1000,
                                               "p99_ms": pct(samples, 99) * 1000, "max_ms": max(samples) * 1000,
                                               **({"client_counters": dict(client.counters)} if client.counters else {})})
                    save()
        finally:
            stop_workers(procs)


def child_main(args: argparse.Namespace) -> int:
    """Measure one row; write what was measured (and any error) to ``args.out`` as it goes."""
    row = BY_KEY[args.child]
    out: dict[str, Any] = {"throughput": {}, "latency": []}
    started: list[subprocess.Popen[bytes]] = []

    def save() -> None:
        Path(args.out).write_text(json.dumps(out))

    def on_term(*_: object) -> None:
        raise SystemExit("stopped by the parent (time limit)")

    signal.signal(signal.SIGTERM, on_term)
    os.environ[URL_ENV] = args.url  # the peers' worker modules read it at import time
    try:
        asyncio.run(measure(row, args.url, args, out, started, save))
        return 0
    except BaseException as exc:  # noqa: BLE001 - reported in the row, the run goes on
        tb = traceback.extract_tb(exc.__traceback__)
        where = f" (at {Path(tb[-1].filename).name}:{tb[-1].lineno})" if tb else ""
        out["error"] = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"[:300]
        out["error"] += where
        return 1
    finally:
        stop_workers(started)
        save()
        remove_logs()


# -- the parent: one Redis, one child per system, one table ---------------------------------------


def run_child(row: Row, url: str, args: argparse.Namespace) -> dict[str, Any]:
    """Run one row in a child process, bounded by ``args.timeout``; never raises."""
    fd, out_path = tempfile.mkstemp(prefix=f"bench-{row.key}-", suffix=".json")
    os.close(fd)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", row.key, "--url", url, "--out", out_path,
           "--jobs", str(args.jobs), "--reps", str(args.reps), "--latency-count", str(args.latency_count),
           "--latency-budget", str(args.latency_budget), "--collect-timeout", str(args.collect_timeout)]
    err_path = out_path + ".stderr"
    with open(err_path, "wb") as err:
        proc = subprocess.Popen(cmd, cwd=REPO, stdin=subprocess.DEVNULL, stdout=err, stderr=subprocess.STDOUT,
                                start_new_session=True)
    timed_out = False
    try:
        try:
            proc.wait(args.timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            _end_child(proc)
        except BaseException:  # Ctrl-C: the child has its own session, so end it (and its workers) here
            _end_child(proc)
            raise
        try:
            result = json.loads(Path(out_path).read_text() or "{}")
        except (OSError, ValueError):
            result = {}
        if timed_out:
            result["error"] = f"timed out after {args.timeout:.0f}s"
        elif proc.returncode and "error" not in result:
            lines = Path(err_path).read_text(errors="replace").strip().splitlines()[-1:]
            result["error"] = f"exit {proc.returncode}: {' '.join(lines)[:300]}"
        return result
    finally:
        for p in (out_path, err_path):
            Path(p).unlink(missing_ok=True)


def _end_child(proc: subprocess.Popen[Any]) -> None:
    """SIGTERM the child (it stops its workers), then SIGKILL by pid whatever it left."""
    stop_workers([proc], grace=20)


def summarize(raw: dict[str, Any]) -> dict[str, Any]:
    """Medians over the repetitions."""
    s: dict[str, Any] = {}
    for workers, runs in raw.get("throughput", {}).items():
        s[f"jobs_per_s_{workers}w"] = statistics.median(x["jobs_per_s"] for x in runs)
        s[f"commands_per_job_{workers}w"] = statistics.median(x["commands_per_job"] for x in runs)
        s[f"worker_cpu_ms_per_job_{workers}w"] = statistics.median(x["worker_cpu_ms_per_job"] for x in runs)
    if raw.get("latency"):
        s["p50_ms"] = statistics.median(x["p50_ms"] for x in raw["latency"])
        s["p99_ms"] = statistics.median(x["p99_ms"] for x in raw["latency"])
        s["latency_samples"] = min(x["n"] for x in raw["latency"])
    return s


def ratio(a: float | None, b: float | None) -> str:
    if not (a and b):
        return "-"
    x = a / b
    return f"{x:.2f}" if x >= 0.095 else f"{x:.2g}"


def num(v: float | None, fmt: str) -> str:
    return format(v, fmt) if v is not None else "-"


def table(results: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    ref = next((r["summary"] for r in results if r["key"] == "seawall" and not r.get("error")), {})
    head = ["system", "jobs/s 1w", "sw/x", "jobs/s 2w", "sw/x", "p50 ms", "sw/x", "p99 ms", "sw/x",
            "cmds/job", "wCPU ms/job"]
    lines = []
    for r in results:
        s = r["summary"]
        if r.get("error"):
            lines.append([r["label"], f"failed: {r['error']}"])
            continue
        n_lat = s.get("latency_samples")
        lat_note = f" (n={n_lat})" if n_lat is not None and n_lat < meta["latency_count"] else ""
        lines.append([
            r["label"],
            num(s.get("jobs_per_s_1w"), ",.0f"), ratio(ref.get("jobs_per_s_1w"), s.get("jobs_per_s_1w")),
            num(s.get("jobs_per_s_2w"), ",.0f"), ratio(ref.get("jobs_per_s_2w"), s.get("jobs_per_s_2w")),
            num(s.get("p50_ms"), ".2f") + lat_note, ratio(ref.get("p50_ms"), s.get("p50_ms")),
            num(s.get("p99_ms"), ".2f"), ratio(ref.get("p99_ms"), s.get("p99_ms")),
            num(s.get("commands_per_job_1w"), ".1f"), num(s.get("worker_cpu_ms_per_job_1w"), ".3f"),
        ])
    widths = [max(len(head[i]), *(len(l[i]) for l in lines if len(l) > 2)) for i in range(len(head))]
    fmt_row = lambda cells: "  ".join(  # noqa: E731
        c.ljust(widths[i]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(cells))
    out = [fmt_row(head), fmt_row(["-" * w for w in widths])]
    for l in lines:
        out.append(fmt_row(l) if len(l) > 2 else f"{l[0].ljust(widths[0])}  {l[1]}")
    versions = ", ".join(f"{k} {v}" for k, v in meta["packages"].items())
    out += [
        "",
        f"{meta['jobs']:,} jobs per throughput run, medians of {meta['reps']} repetition(s); latency: "
        f"{meta['latency_count']} round trips per repetition with 1 worker (n= fewer: the {meta['latency_budget']:.0f} s "
        "budget ran out).",
        "sw/x = Seawall's figure / the row's: for jobs/s higher is better for Seawall, for latency lower is better. "
        "cmds/job and worker CPU: 1 worker.",
        f"Redis {meta['redis_version']}, Python {meta['python']}, {meta['cpus']} CPUs, load average "
        f"{meta['load_before'][0]:.2f} before, {meta.get('load_after', ['?'])[0]} after; {versions}.",
    ]
    return "\n".join(out)


def run_extras(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Each extra script in its own session, bounded by ``args.timeout``; never raises."""
    done = []
    for extra in EXTRAS:
        cmd = [sys.executable, str(HERE / extra.script), *(extra.quick if args.quick else extra.full)]
        shown = " ".join(["python", f"benchmarks/{extra.script}", *cmd[2:]])
        print(f"  {extra.name} ...", end="", file=sys.stderr, flush=True)
        t0 = time.monotonic()
        entry: dict[str, Any] = {"name": extra.name, "command": shown}
        proc = subprocess.Popen(cmd, cwd=REPO, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, start_new_session=True, text=True)
        try:
            out, _ = proc.communicate(timeout=args.timeout)
            entry["output"] = out.strip()
            if proc.returncode:
                entry["error"] = f"exit {proc.returncode}"
        except subprocess.TimeoutExpired:
            _end_child(proc)
            entry["output"], entry["error"] = "", f"timed out after {args.timeout:.0f}s"
        entry["seconds"] = round(time.monotonic() - t0, 1)
        print(f" {entry['seconds']:.0f} s" + (f"  failed: {entry['error']}" if entry.get("error") else ""),
              file=sys.stderr, flush=True)
        done.append(entry)
    return done


def extras_text(extras: list[dict[str, Any]]) -> str:
    out = ["", "Seawall's own figures, same machine, same run:"]
    for e in extras:
        out += ["", f"== {e['name']}: {e['command']}" + (f"  (failed: {e['error']})" if e.get("error") else "")]
        out += [f"   {line}" for line in e["output"].splitlines()]
    return "\n".join(out)


def parent_main(args: argparse.Namespace) -> int:
    from tests.redisproc import RedisProcess  # noqa: PLC0415 - the repo's private-server helper

    keys = [k.strip() for k in args.only.split(",")] if args.only else [r.key for r in ROWS]
    unknown = [k for k in keys if k not in BY_KEY]
    if unknown:
        print(f"compare.py: unknown system(s) {', '.join(unknown)}; choose from {', '.join(BY_KEY)}", file=sys.stderr)
        return 2
    def on_term(*_: object) -> None:
        raise KeyboardInterrupt("SIGTERM")

    signal.signal(signal.SIGTERM, on_term)  # so the finally clauses end the child, its workers and Redis
    server = RedisProcess().start()
    try:
        client = server.client()
        meta = {
            "redis_version": client.info("server")["redis_version"],
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "packages": {p: _version(p) for p in PACKAGES},
            "jobs": args.jobs, "reps": args.reps, "quick": args.quick,
            "latency_count": args.latency_count, "latency_budget": args.latency_budget,
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "load_before": [round(x, 2) for x in os.getloadavg()],
        }
        results = []
        for key in keys:
            row = BY_KEY[key]
            client.flushall()  # the private server only
            t0 = time.monotonic()
            print(f"  {row.label} ...", end="", file=sys.stderr, flush=True)
            raw = run_child(row, server.url, args)
            entry = {"key": key, "label": row.label, "summary": summarize(raw), "raw": raw,
                     "seconds": round(time.monotonic() - t0, 1)}
            if raw.get("error"):
                entry["error"] = raw["error"]
            results.append(entry)
            print(f" {entry['seconds']:.0f} s" + (f"  failed: {entry['error']}" if entry.get("error") else ""),
                  file=sys.stderr, flush=True)
        client.close()
        meta["load_after"] = [round(x, 2) for x in os.getloadavg()]
    finally:
        server.cleanup()
    text = table(results, meta)
    print(text)
    extras = [] if args.no_extras else run_extras(args)
    if extras:
        print(extras_text(extras))
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"meta": meta, "results": results, "table": text, "extras": extras}, indent=2) + "\n")
    print(f"\nwrote {out}", file=sys.stderr)
    return 0


def _version(pkg: str) -> str:
    try:
        return importlib.metadata.version(pkg)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--jobs", type=int, default=None, help="jobs per throughput run (default 4000; --quick 300)")
    p.add_argument("--reps", type=int, default=None, help="repetitions, medians reported (default 3; --quick 1)")
    p.add_argument("--quick", action="store_true", help="small N, 1 repetition, shorter latency runs")
    p.add_argument("--only", default="", help=f"comma-separated systems: {', '.join(BY_KEY)}")
    p.add_argument("--timeout", type=float, default=None, help="seconds per system (default 600; --quick 60)")
    p.add_argument("--latency-count", type=int, default=None, help="round trips per repetition (default 200)")
    p.add_argument("--latency-budget", type=float, default=None,
                   help="at most this many seconds per latency repetition (default 20; --quick 5)")
    p.add_argument("--no-extras", action="store_true",
                   help="only the comparison table: skip the console, orphan-scan and dead-letter figures")
    p.add_argument("--collect-timeout", type=float, default=120, help=argparse.SUPPRESS)
    p.add_argument("--json", default=str(HERE / "results" / "latest.json"), help="where to write the JSON results")
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    p.add_argument("--url", default=None, help=argparse.SUPPRESS)
    p.add_argument("--out", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    quick = args.quick
    defaults = {"jobs": 300 if quick else 4000, "reps": 1 if quick else 3, "timeout": 60 if quick else 600,
                "latency_count": 200, "latency_budget": 5 if quick else 20}
    for k, v in defaults.items():
        if getattr(args, k) is None:
            setattr(args, k, v)
    if args.jobs < 1 or args.reps < 1 or args.latency_count < 1:
        p.error("--jobs, --reps and --latency-count must be 1 or more")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return child_main(args) if args.child else parent_main(args)


if __name__ == "__main__":
    raise SystemExit(main())
