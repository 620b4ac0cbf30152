"""How much load the console absorbs while it keeps answering keys.

    python benchmarks/console_load.py [--seconds 20] [--rate 2000] [--workers 3]

Starts a private redis-server and worker subprocesses, opens the console
headless (100x30), submits echo jobs from the console's own producer at
``--rate`` jobs/s, and measures: results/s the console takes in, the time a
key press takes to switch screens under that load (p50/max), and the
console's resident memory at the start and end of the flood.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.console_support import runtime_for  # noqa: E402
from tests.redisproc import RedisProcess  # noqa: E402
from tui.app import build_app  # noqa: E402


KEYS = [("2", "workers"), ("1", "dashboard")]


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def main(args: argparse.Namespace) -> None:
    server = RedisProcess().start()
    try:
        app = build_app(runtime_for(server.url, job_timeout_seconds=120))
        async with app.run_test(size=(100, 30)) as pilot:
            while not app.state.server_version:
                await pilot.pause(0.05)
            for _ in range(args.workers):
                await app.backend.launch_worker()
            await pilot.pause(1.5)
            batch = max(1, args.rate // 10)
            stop = time.monotonic() + args.seconds
            rss_start = rss_mib()
            key_ms: list[float] = []
            start_results = app.state.total_results
            started = time.monotonic()

            async def flood() -> None:
                next_at = time.monotonic()
                while time.monotonic() < stop:
                    await app.backend.submit("echo", {}, batch)
                    next_at += 0.1
                    await asyncio.sleep(max(0.0, next_at - time.monotonic()))

            flooding = asyncio.create_task(flood())
            rss_samples = []
            last_sample = 0.0
            while time.monotonic() < stop:
                if time.monotonic() - last_sample >= 5:
                    rss_samples.append(round(rss_mib()))
                    last_sample = time.monotonic()
                for key, mode in KEYS:
                    t0 = time.perf_counter()
                    app.simulate_key(key)  # as a terminal would: no waiting for the app to go idle
                    while app.current_mode != mode:
                        await asyncio.sleep(0.002)
                    key_ms.append((time.perf_counter() - t0) * 1000)
                await asyncio.sleep(0.5)
            await flooding
            elapsed = time.monotonic() - started
            absorbed = (app.state.total_results - start_results) / elapsed
            rss_end = rss_mib()
            await app.quit_now()
        print(f"offered {args.rate} jobs/s for {args.seconds:.0f}s with {args.workers} workers")
        print(f"console absorbed {absorbed:,.0f} results/s")
        print(f"key press to screen switch: p50 {statistics.median(key_ms):.1f} ms, max {max(key_ms):.1f} ms "
              f"({len(key_ms)} presses)")
        print(f"console RSS: {rss_start:.0f} MiB at start, {rss_end:.0f} MiB at end; every 5 s: {rss_samples} MiB")
    finally:
        server.cleanup()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--rate", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=3)
    asyncio.run(main(parser.parse_args()))
