"""The ``seawall`` command. Every user mistake ends in one line and a non-zero exit."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import signal
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Sequence

from redis.exceptions import RedisError

from . import embedded
from .config import ConfigError, LoadedSettings, load_settings
from .connection import OUTAGE_ERRORS, close_quietly, failure_message, make_client
from .deadletters import DeadLetter, DeadLetterStore, DeadReason, RetryReport
from .embedded import EmbeddedError
from .errors import PayloadError, RedisUnavailableError, SeawallError
from .events import LEVELS
from .handlers import HandlerImportError, load_registry
from .models import JobState
from .producer import JobOutcome, Producer
from .runtime import Runtime, resolve

PROG = "seawall"


# -- parsing -------------------------------------------------------------------


def _global_options(parser: argparse.ArgumentParser, suppress: bool) -> None:
    default = argparse.SUPPRESS if suppress else None
    g = parser.add_argument_group("global options")
    g.add_argument("--redis-url", default=default, help="Redis URL (default: the embedded server)")
    g.add_argument("--namespace", default=default, help="key namespace (default: seawall)")
    g.add_argument("--queue", default=default, help="queue name (default: default)")
    g.add_argument("--config", default=default, metavar="FILE", help="TOML config file")
    g.add_argument("--log-file", default=default, metavar="FILE", help="write JSON log lines here instead of stderr")
    g.add_argument("--log-level", default=default, choices=sorted(LEVELS, key=LEVELS.get), help="least level logged")


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line (which option, what to do), not a usage block."""

    def error(self, message: str) -> None:  # type: ignore[override]
        print(f"{PROG}: error: {message} (see: {self.prog} --help)", file=sys.stderr)
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="Seawall: a hardened Redis job queue and its console.")
    _global_options(parser, suppress=False)
    common = _Parser(add_help=False)
    _global_options(common, suppress=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def add(name: str, help_text: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help_text, description=help_text, parents=[common])

    p = add("tui", "open the console (the default command)")
    p.add_argument("--read-only", action="store_true", help="hide every mutating action")
    p = add("config", "print every effective setting and where it came from")
    p.add_argument("--json", action="store_true", help="one JSON object per setting")
    p = add("ping", "check Redis: version, round-trip latency, URL")
    p.add_argument("--json", action="store_true")
    p = add("submit", "submit jobs; with --wait, collect their results")
    p.add_argument("--handler", required=True, help="handler name, e.g. echo, sleep, fail, flaky, notes.cards")
    p.add_argument("--payload", default="null", help="job payload as JSON (default: null)")
    p.add_argument("--count", type=_positive_int, default=1, help="how many jobs (default: 1)")
    p.add_argument("--wait", action="store_true", help="wait for every result")
    p.add_argument("--timeout", type=_positive_float, default=None, metavar="S", help="seconds to wait per job")
    p.add_argument("--json", action="store_true", help="one JSON line per job")
    p.add_argument("--import", dest="imports", action="append", default=[], metavar="MODULE",
                   help="also accept the handlers this module registers (as the workers' --import)")
    p = add("worker", "run a worker until SIGTERM (or, with --burst, until the queue is empty)")
    p.add_argument("--concurrency", type=_positive_int, default=10, metavar="N", help="jobs run at once (default: 10)")
    p.add_argument("--burst", action="store_true", help="exit when the queue is empty")
    p.add_argument("--worker-id", default=None, help="worker id (default: host-pid-random)")
    p.add_argument("--import", dest="imports", action="append", default=[], metavar="MODULE",
                   help="a module whose register(registry) adds your handlers (repeatable)")
    p = add("notes", "turn every markdown note under DIR into flashcards, using workers")
    p.add_argument("dir", metavar="DIR", help="folder of .md notes")
    p.add_argument("--workers", type=_non_negative_int, default=2, metavar="N",
                   help="worker subprocesses to launch for the run (default: 2; 0 = use running workers)")
    p.add_argument("--timeout", type=_positive_float, default=None, metavar="S", help="seconds to wait per note")
    p.add_argument("--json", action="store_true", help="one JSON line per note")
    p = add("metrics", "health metrics for the whole queue: depths, workers, producers, Redis latency and errors")
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="one JSON object per snapshot")
    fmt.add_argument("--prometheus", action="store_true", help="Prometheus text exposition format")
    p.add_argument("--watch", type=_positive_float, default=None, metavar="S", help="print a snapshot every S seconds")
    p.add_argument("--serve", type=_port, default=None, metavar="PORT",
                   help="serve /metrics (Prometheus format) on 127.0.0.1:PORT")
    p.add_argument("--no-orphans", action="store_true", help="skip the SCAN that counts orphaned result lists")
    p = add("embedded", "manage the embedded Redis server")
    p.add_argument("action", choices=["status", "start", "stop"], help="what to do")
    p.add_argument("--json", action="store_true")
    _dlq_parser(add("dlq", "browse, retry and delete dead letters"), common)
    p = add("orphans", "find result lists nobody will read; adopt them into dead letters or delete them")
    p.add_argument("--json", action="store_true", help="one JSON object per orphaned list")
    act = p.add_mutually_exclusive_group()
    act.add_argument("--adopt", action="store_true", help="move their results into dead letters (orphaned_result)")
    act.add_argument("--delete", action="store_true", help="delete them (needs --yes)")
    p.add_argument("--yes", action="store_true", help="confirm --delete")
    return parser


class _OneLineParser(argparse.ArgumentParser):
    """A mistake in an operator command is one line (what, and where to look), not a usage dump."""

    def error(self, message: str) -> Any:
        print(f"{self.prog}: error: {message} (see '{self.prog} --help')", file=sys.stderr)
        raise SystemExit(2)


def _dlq_parser(parser: argparse.ArgumentParser, common: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="dlq_command", metavar="ACTION", parser_class=_OneLineParser)

    def add(name: str, help_text: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help_text, description=help_text, parents=[common])

    reasons = ", ".join(r.value for r in DeadReason)
    p = add("list", "list dead letters, newest first")
    p.add_argument("--reason", type=_dead_reason, default=None, metavar="R", help=f"only this reason: {reasons}")
    p.add_argument("--text", default=None, metavar="T", help="only entries whose id, handler, error or payload hold T")
    p.add_argument("--limit", type=_positive_int, default=50, metavar="N", help="at most N entries (default: 50)")
    p.add_argument("--json", action="store_true", help="one JSON object per entry")
    p = add("show", "show one dead letter in full")
    p.add_argument("id", metavar="ID")
    p.add_argument("--json", action="store_true")
    p = add("retry", "put dead letters' jobs back on the queue (attempts reset, the retry counted)")
    p.add_argument("ids", nargs="*", metavar="ID")
    p.add_argument("--all", action="store_true", help="every entry (that matches --reason/--text)")
    p.add_argument("--reason", type=_dead_reason, default=None, metavar="R", help=f"with --all: only {reasons}")
    p.add_argument("--text", default=None, metavar="T", help="with --all: only entries holding T")
    p = add("delete", "delete dead letters by id")
    p.add_argument("ids", nargs="+", metavar="ID")
    p = add("purge", "delete every dead letter of the queue (needs --yes)")
    p.add_argument("--yes", action="store_true", help="confirm")


def _dead_reason(text: str) -> DeadReason:
    try:
        return DeadReason(text.strip().lower())
    except ValueError:
        choices = ", ".join(r.value for r in DeadReason)
        raise argparse.ArgumentTypeError(f"{text!r} is not a dead-letter reason; choose one of: {choices}") from None


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be 1 or more")
    return value


def _non_negative_int(text: str) -> int:
    return 0 if text.strip() == "0" else _positive_int(text)


def _port(text: str) -> int:
    value = _positive_int(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a port (1-65535)")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{value} must be more than 0")
    return value


# -- entry point -----------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    command = args.command or "tui"
    try:
        loaded = load_settings(
            {"redis_url": args.redis_url, "namespace": args.namespace, "queue": args.queue},
            config_file=args.config,
        )
        handler = COMMANDS[command]
        code = handler(args, loaded)
        sys.stdout.flush()  # a closed pipe shows up here, inside the try, not at exit
        return code
    except ConfigError as exc:
        return _fail(f"config: {exc}", 2)
    except PayloadError as exc:
        return _fail(str(exc), exc.exit_code)
    except (SeawallError, EmbeddedError, HandlerImportError) as exc:
        return _fail(str(exc), getattr(exc, "exit_code", 1))
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # the reader went away (`seawall dlq list --json | head -1`): stop quietly, as Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


def _fail(message: str, code: int) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return code


class UsageError(SeawallError):
    """Options that do not fit together, or a destructive action without --yes."""

    exit_code = 2


def _runtime(args: argparse.Namespace, loaded: LoadedSettings, default_level: str = "warning") -> tuple[Runtime, Any]:
    runtime = resolve(loaded)
    events = runtime.event_log(args.log_level or default_level, args.log_file)
    return runtime, events


def _run(coro_factory: Callable[[], Any]) -> Any:
    """Run a coroutine; SIGTERM and SIGHUP end it like Ctrl-C, so cleanup runs."""

    async def runner() -> Any:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        for sig in (signal.SIGTERM, signal.SIGHUP):
            loop.add_signal_handler(sig, task.cancel)
        try:
            return await coro_factory()
        except asyncio.CancelledError:
            raise KeyboardInterrupt from None

    return asyncio.run(runner())


# -- commands --------------------------------------------------------------------


def cmd_config(args: argparse.Namespace, loaded: LoadedSettings) -> int:
    rows = loaded.describe()
    if args.json:
        for name, value, source in rows:
            print(json.dumps({"name": name, "value": value, "source": source}))
        return 0
    width = max(len(r[0]) for r in rows)
    vwidth = max(len(r[1]) for r in rows)
    print(f"# config file: {loaded.config_file or 'none'}")
    for name, value, source in rows:
        print(f"{name:<{width}}  {value:<{vwidth}}  {source}")
    return 0


def cmd_ping(args: argparse.Namespace, loaded: LoadedSettings) -> int:
    runtime, events = _runtime(args, loaded)

    async def ping() -> dict[str, Any]:
        async with Producer(runtime.settings, runtime.url, events) as producer:
            latency = min([await producer.link.ping() for _ in range(3)])
            return {"url": runtime.shown_url, "version": producer.server_version,
                    "latency_ms": round(latency * 1000, 3), "embedded": runtime.embedded}

    info = _run(ping)
    if args.json:
        print(json.dumps(info))
    else:
        where = " (embedded)" if info["embedded"] else ""
        print(f"PONG from Redis {info['version']} at {info['url']}{where}: {info['latency_ms']:.3f} ms")
    return 0


def _parse_payload(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise PayloadError(f"--payload is not valid JSON ({exc.msg} at character {exc.pos}): "
                           "pass JSON, e.g. --payload '{\"seconds\": 1}'") from None


def _check_handler(name: str, imports: list[str]) -> None:
    known = load_registry(imports).names()
    if name not in known:
        hint = "" if imports else " (your own handlers: add --import MODULE, as for the workers)"
        raise PayloadError(f"--handler {name!r} is not registered; choose one of: {', '.join(known)}{hint}")


def _outcome_json(o: JobOutcome) -> dict[str, Any]:
    r = o.result
    return {"job_id": o.job_id, "state": o.state.value, "latency_ms": round(o.latency * 1000, 3),
            "value": r.value if r else None, "error_type": r.error_type if r else None,
            "error": r.error if r else None, "attempts": r.attempts if r else None}


def cmd_submit(args: argparse.Namespace, loaded: LoadedSettings) -> int:
    payload = _parse_payload(args.payload)
    _check_handler(args.handler, args.imports)
    runtime, events = _runtime(args, loaded)

    async def submit() -> list[JobOutcome]:
        async with Producer(runtime.settings, runtime.url, events) as producer:
            jobs = [await producer.submit(args.handler, payload, wait_seconds=args.timeout) for _ in range(args.count)]
            if args.wait:
                await _warn_if_no_workers(producer)
            if not args.wait:
                for job in jobs:
                    print(json.dumps({"job_id": job.id, "state": "queued"}) if args.json else job.id)
                return []
            return await producer.wait_all(lambda o: _print_outcome(o, args.json))

    outcomes = _run(submit)
    if args.wait and not args.json:
        ok = sum(o.ok for o in outcomes)
        print(f"{ok} of {len(outcomes)} jobs succeeded", file=sys.stderr)
    return 0 if all(o.ok for o in outcomes) else 1


async def _warn_if_no_workers(producer: Producer) -> None:
    """Waiting with nobody to do the work deserves a word, not minutes of silence."""
    from .monitor import read_depths  # noqa: PLC0415

    try:
        depths = await producer.link.call(lambda c: read_depths(c, producer.keys))
    except Exception:  # noqa: BLE001 - only a hint
        return
    if not any(w.alive for w in depths.workers):
        wait = min(p.deadline for p in producer.pending.values()) - producer.clock() if producer.pending else 0
        print(f"{PROG}: no live worker on queue {producer.keys.queue!r}: start one with 'seawall worker'"
              f" (waiting up to {wait:.0f}s; --timeout S shortens it)", file=sys.stderr, flush=True)


def _print_outcome(o: JobOutcome, as_json: bool) -> None:
    if as_json:
        print(json.dumps(_outcome_json(o)), flush=True)
        return
    r = o.result
    detail = json.dumps(r.value) if r and r.ok else (f"{r.error_type}: {r.error}" if r else "no result before the deadline")
    print(f"{o.job_id}  {o.state.value}  {o.latency * 1000:.1f} ms  {detail[:200]}", flush=True)


def cmd_worker(args: argparse.Namespace, loaded: LoadedSettings) -> int:
    from .worker import Worker  # noqa: PLC0415

    registry = load_registry(args.imports)
    runtime, events = _runtime(args, loaded, default_level="info")

    async def serve() -> int:
        worker = Worker(runtime.settings, runtime.url, events, registry, worker_id=args.worker_id,
                        concurrency=args.concurrency, burst=args.burst)
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        signals = {"count": 0}

        def on_signal() -> None:
            signals["count"] += 1
            if signals["count"] == 1:
                worker.request_stop()
            else:
                task.cancel()  # a second signal: stop now (jobs go back on the queue)

        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.add_signal_handler(sig, on_signal)
        try:
            return await worker.run()
        except asyncio.CancelledError:
            return 0

    return asyncio.run(serve())


def cmd_notes(args: argparse.Namespace, loaded: LoadedSettings) -> int:
    from .notes import note_payload  # noqa: PLC0415
    from .procs import WorkerProcesses  # noqa: PLC0415

    root = Path(args.dir)
    if not root.is_dir():
        raise PayloadError(f"DIR {str(root)!r} is not a folder: pass a folder of .md notes")
    files = sorted(p for p in root.rglob("*.md") if p.is_file())
    if not files:
        raise PayloadError(f"no .md notes under {str(root)!r}")
    runtime, events = _runtime(args, loaded)
    started = time.monotonic()

    async def process() -> list[JobOutcome]:
        async with Producer(runtime.settings, runtime.url, events) as producer, \
                WorkerProcesses(runtime, args.workers, log_level="info" if args.log_file else "error",
                                log_file=args.log_file):
            for path in files:
                rel = path.relative_to(root).as_posix()
                try:
                    payload = note_payload(path, rel)
                except OSError as exc:
                    print(f"{rel}: cannot read: {exc.strerror}", file=sys.stderr)
                    continue
                await producer.submit("notes.cards", payload, name=rel, wait_seconds=args.timeout)
            return await producer.wait_all()

    outcomes = _run(process)
    elapsed = time.monotonic() - started
    return _notes_report(outcomes, len(files), elapsed, args.json)


def _notes_report(outcomes: list[JobOutcome], total: int, elapsed: float, as_json: bool) -> int:
    cards = errors = 0
    lines = []
    for o in sorted(outcomes, key=lambda o: o.job.payload.get("path", "")):
        path = o.job.payload.get("path", o.job_id)
        n = len(o.result.value.get("cards", [])) if o.ok and isinstance(o.result.value, dict) else 0
        cards += n
        if not o.ok:
            errors += 1
        row = _outcome_json(o) | {"path": path, "cards": n}
        row.pop("value")
        lines.append(row)
    answered = sum(o.state is not JobState.TIMED_OUT for o in outcomes)
    if as_json:
        for row in lines:
            print(json.dumps(row))
    else:
        for row in lines:
            if row["state"] != "done":
                reason = f"{row['error_type']}: {row['error']}" if row["error_type"] else "no result before the deadline"
                print(f"  {row['path']}: {reason}")
        print(f"notes: {total}  results: {answered}  cards: {cards}  errors: {errors}  time: {elapsed:.2f}s")
    return 0 if answered == total else 1


def cmd_metrics(args: argparse.Namespace, loaded: LoadedSettings) -> int:
    from .keys import Keys  # noqa: PLC0415
    from .metrics import collect_fleet, prometheus  # noqa: PLC0415

    runtime, _events = _runtime(args, loaded)
    keys = Keys(runtime.settings.namespace, runtime.settings.queue)

    async def snapshot(client: Any) -> dict[str, Any]:
        try:
            return await collect_fleet(client, keys, orphans=not args.no_orphans)
        except (*OUTAGE_ERRORS, RedisError) as exc:
            raise RedisUnavailableError(runtime.redactor(failure_message(exc))) from None

    def render(fleet: dict[str, Any]) -> str:
        if args.prometheus:
            return prometheus(fleet).rstrip("\n")
        if args.json:
            return json.dumps(fleet)
        return _metrics_text(fleet)

    async def serve(client: Any) -> int:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
                try:
                    body, status = prometheus(await snapshot(client)).encode(), "200 OK"
                except SeawallError as exc:
                    body, status = f"# {exc}\n".encode(), "503 Service Unavailable"
                writer.write(f"HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\n"
                             f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body)
                await writer.drain()
            except (asyncio.TimeoutError, asyncio.IncompleteReadError, ConnectionError):
                pass
            finally:
                writer.close()

        try:
            server = await asyncio.start_server(handle, "127.0.0.1", args.serve)
        except OSError as exc:
            raise SeawallError(f"--serve {args.serve}: cannot listen on 127.0.0.1:{args.serve} ({exc.strerror})") from None
        print(f"serving Prometheus metrics on http://127.0.0.1:{args.serve}/metrics", file=sys.stderr, flush=True)
        async with server:
            await server.serve_forever()
        return 0

    async def run() -> int:
        client = make_client(runtime.url, runtime.settings)
        try:
            if args.serve:
                return await serve(client)
            while True:
                try:
                    print(render(await snapshot(client)), flush=True)
                except SeawallError as exc:
                    if not args.watch:
                        raise
                    print(f"{PROG}: {exc}", file=sys.stderr, flush=True)
                if not args.watch:
                    return 0
                await asyncio.sleep(args.watch)
        finally:
            await close_quietly(client)

    return _run(run)


def _metrics_text(fleet: dict[str, Any]) -> str:
    d = fleet["depths"]
    lines = [f"{fleet['namespace']}/{fleet['queue']}  {time.strftime('%H:%M:%S', time.localtime(fleet['at']))}  "
             f"ping {fleet['ping_seconds'] * 1000:.2f} ms  workers {fleet['workers_alive']}",
             "  ".join(f"{k} {v}" for k, v in d.items())]
    for proc in fleet["processes"]:
        c = proc["counters"]
        lat = proc["job_latency"]
        redis = proc.get("redis") or {}
        rl = redis.get("latency") or {}
        lines.append(
            f"{proc['role']} {proc['id']}: " + " ".join(f"{k} {v}" for k, v in sorted(c.items()))
            + f"  results/s {proc.get('results_per_second', 0)}  job p50/p95/p99 {lat.get('p50_ms')}/{lat.get('p95_ms')}/"
            f"{lat.get('p99_ms')} ms  redis p50/p99 {rl.get('p50_ms')}/{rl.get('p99_ms')} ms  breaker "
            f"{redis.get('breaker', '?')} trips {redis.get('trips', 0)} errors {redis.get('errors', {})}"
        )
    return "\n".join(lines)


def cmd_embedded(args: argparse.Namespace, loaded: LoadedSettings) -> int:
    if args.action == "start":
        embedded.ensure_running()
    elif args.action == "stop":
        was = embedded.stop()
        print("embedded Redis stopped" if was else "embedded Redis was not running")
        return 0
    st = embedded.status()
    info = {"running": st.running, "url": st.paths.url, "pid": st.pid, "version": st.version,
            "data_dir": str(st.paths.data_dir), "log": str(st.paths.logfile)}
    if args.json:
        print(json.dumps(info))
    elif st.running:
        print(f"embedded Redis {st.version} running (pid {st.pid}) at {st.paths.url}; data in {st.paths.data_dir}")
    else:
        print(f"embedded Redis not running; it starts on first use at {st.paths.url}")
    return 0


def cmd_tui(args: argparse.Namespace, loaded: LoadedSettings) -> int:
    try:
        from tui.app import run_console  # noqa: PLC0415 - the console is optional for engine users
    except ImportError as exc:
        raise SeawallError(f"the console is not available: {exc}") from None
    runtime = resolve(loaded)
    return run_console(runtime, read_only=getattr(args, "read_only", False), log_file=args.log_file)


# -- dead letters and orphans (operator commands on one short-lived client) --------------


def _with_client(runtime: Runtime, work: Callable[[Any], Any]) -> Any:
    """Run ``work(client)``; Redis trouble becomes one line, never a traceback."""

    async def go() -> Any:
        client = make_client(runtime.url, runtime.settings)
        try:
            return await work(client)
        except BrokenPipeError:
            raise  # our reader went away, not Redis
        except (*OUTAGE_ERRORS, RedisError) as exc:
            raise RedisUnavailableError(runtime.redactor(failure_message(exc, runtime.shown_url))) from None
        finally:
            await close_quietly(client)

    return _run(go)


def _plural(n: int, word: str, many: str | None = None) -> str:
    return f"{n:,} {word}" if n == 1 else f"{n:,} {many or word + 's'}"


def _entries(n: int) -> str:
    return _plural(n, "entry", "entries")


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts).astimezone().isoformat(timespec="seconds")


def _age(seconds: float) -> str:
    for size, unit in ((86400, "d"), (3600, "h"), (60, "m")):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit}"
    return f"{seconds:.0f}s"


def cmd_dlq(args: argparse.Namespace, loaded: LoadedSettings) -> int:
    if not args.dlq_command:
        raise UsageError("dlq needs an action: list, show, retry, delete or purge (see 'seawall dlq --help')")
    if args.dlq_command == "purge" and not args.yes:
        raise UsageError(f"dlq purge deletes every dead letter of queue {loaded.settings.queue!r}: "
                         "add --yes to confirm")
    if args.dlq_command == "retry":
        _check_retry_args(args)
    runtime, _ = _runtime(args, loaded)
    store = DeadLetterStore.for_settings(runtime.settings)
    action = {"list": _dlq_list, "show": _dlq_show, "retry": _dlq_retry, "delete": _dlq_delete,
              "purge": _dlq_purge}[args.dlq_command]
    return _with_client(runtime, lambda client: action(client, store, args))


def _check_retry_args(args: argparse.Namespace) -> None:
    if args.all and args.ids:
        raise UsageError("dlq retry takes ids or --all, not both: drop the ids or --all")
    if not args.all and not args.ids:
        raise UsageError("dlq retry needs ids, or --all (optionally with --reason/--text): see 'seawall dlq list'")
    if not args.all and (args.reason or args.text):
        raise UsageError("--reason and --text filter --all: use 'dlq retry --all --reason R', or name the ids")


async def _dlq_list(client: Any, store: DeadLetterStore, args: argparse.Namespace) -> int:
    entries: list[DeadLetter] = []
    offset: int | None = 0
    total = 0
    while offset is not None and len(entries) < args.limit:
        page = await store.page(client, limit=args.limit - len(entries), offset=offset, reason=args.reason,
                                text=args.text)
        entries += page.entries
        offset, total = page.next_offset, page.total
    stats = await store.stats(client)
    if args.json:
        for entry in entries:
            print(json.dumps(entry.summary()))
        return 0
    for e in entries:
        detail = f"{e.error_type}: {e.error}" if e.error_type else e.error
        print(f"{e.id}  {e.reason.value}  {e.handler or '-'}  attempts={e.attempts}  {_age(e.age())}  "
              f"{detail.splitlines()[0][:120] if detail else ''}")
    print(f"{_entries(len(entries))} shown of {total:,} in queue "
          f"{store.keys.queue!r}; dropped so far: {stats['dropped_count']:,} by count, "
          f"{stats['dropped_age']:,} by age; retried so far: {stats['retried']:,}", file=sys.stderr)
    return 0


async def _dlq_show(client: Any, store: DeadLetterStore, args: argparse.Namespace) -> int:
    entry = await store.require(client, args.id)
    if args.json:
        print(entry.model_dump_json())
        return 0
    row = entry.summary() | {"first_failed_at": _when(entry.first_failed_at),
                             "last_failed_at": _when(entry.last_failed_at), "age_seconds": _age(entry.age())}
    for name, value in row.items():
        print(f"{name.removesuffix('_seconds'):<15} {value}")
    if entry.job is not None:
        print("job:")
        print(json.dumps(entry.job, indent=2, ensure_ascii=False))
    if entry.result is not None:
        print("result:")
        print(json.dumps(entry.result, indent=2, ensure_ascii=False))
    if entry.raw is not None:
        print(f"raw ({entry.raw_bytes:,} bytes, first {len(entry.raw):,} kept):")
        print(entry.raw[:2000])
    if entry.traceback:
        print("traceback:")
        print(entry.traceback)
    return 0


async def _require_all(client: Any, store: DeadLetterStore, ids: list[str]) -> None:
    unknown = await store.unknown(client, ids)
    if unknown:
        shown = ", ".join(repr(i) for i in unknown[:5]) + (" ..." if len(unknown) > 5 else "")
        raise SeawallError(f"no dead letter with id {shown} in queue {store.keys.queue!r}; nothing was changed: "
                           "run 'seawall dlq list' to see the ids")


async def _dlq_retry(client: Any, store: DeadLetterStore, args: argparse.Namespace) -> int:
    if args.all:
        report = await store.retry_matching(client, reason=args.reason, text=args.text)
    else:
        await _require_all(client, store, args.ids)
        report = await store.retry(client, args.ids)
    _print_retry(report)
    return 0


def _print_retry(report: RetryReport) -> None:
    print(f"retried {_entries(report.count)}")
    for entry_id, why in report.skipped.items():
        print(f"skipped {entry_id}: {why}; kept in dead letters", file=sys.stderr)
    if report.missing:
        print(f"{len(report.missing):,} were already gone (retried or deleted by someone else)", file=sys.stderr)


async def _dlq_delete(client: Any, store: DeadLetterStore, args: argparse.Namespace) -> int:
    await _require_all(client, store, args.ids)
    deleted, missing = await store.delete(client, args.ids)
    print(f"deleted {_entries(len(deleted))}")
    if missing:
        print(f"{len(missing):,} were already gone (retried or deleted by someone else)", file=sys.stderr)
    return 0


async def _dlq_purge(client: Any, store: DeadLetterStore, args: argparse.Namespace) -> int:
    n = await store.purge(client)
    print(f"purged {_entries(n)} from queue {store.keys.queue!r}")
    return 0


def cmd_orphans(args: argparse.Namespace, loaded: LoadedSettings) -> int:
    from .orphans import adopt_orphans, delete_orphans, scan_orphans  # noqa: PLC0415

    if args.delete and not args.yes:
        raise UsageError("orphans --delete deletes the results in every orphaned list: add --yes to confirm "
                         "(or --adopt to keep them as dead letters)")
    if args.yes and not args.delete:
        raise UsageError("--yes confirms --delete: add --delete, or drop --yes")
    runtime, _ = _runtime(args, loaded)
    store = DeadLetterStore.for_settings(runtime.settings)

    async def work(client: Any) -> int:
        found = await scan_orphans(client, store.keys)
        if args.adopt or args.delete:
            report = await (adopt_orphans(client, store.keys, store, found) if args.adopt
                            else delete_orphans(client, store.keys, found))
            verb = "adopted" if args.adopt else "deleted"
            where = " into dead letters" if args.adopt else ""
            print(f"{verb} {_plural(report.lists, 'orphaned result list')} "
                  f"({_plural(report.results, 'result')}){where}")
            for key, why in report.skipped.items():
                print(f"left {key}: {why}", file=sys.stderr)
            return 0
        for o in found:
            if args.json:
                print(json.dumps(dataclasses.asdict(o)))
            else:
                print(f"{o.key}  session={o.session} ({'alive' if o.session_alive else 'gone'})  "
                      f"length={o.length}  ttl={o.ttl}  idle={_age(max(0, o.idle))}")
        if not args.json:
            print(f"{_plural(len(found), 'orphaned result list')}, {_plural(sum(o.length for o in found), 'result')}",
                  file=sys.stderr)
        return 0

    return _with_client(runtime, work)


COMMANDS: dict[str, Callable[[argparse.Namespace, LoadedSettings], int]] = {
    "tui": cmd_tui, "config": cmd_config, "ping": cmd_ping, "submit": cmd_submit,
    "worker": cmd_worker, "notes": cmd_notes, "embedded": cmd_embedded, "dlq": cmd_dlq, "orphans": cmd_orphans,
    "metrics": cmd_metrics,
}

if __name__ == "__main__":
    sys.exit(main())
