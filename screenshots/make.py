"""Regenerate screenshots/*.svg from the real console with real data.

    python screenshots/make.py

Starts a private redis-server, opens the console headless at 100x30, launches
a worker from the keyboard, submits jobs and the sample vault, makes real dead
letters (flaky jobs out of attempts, an unknown handler, garbage on the queue)
and plants an orphaned result list (a session that does not exist), and saves
one SVG per screen (plus the dashboard during a Redis outage).
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.keys import Keys  # noqa: E402
from engine.models import JobState, Outcome, Result  # noqa: E402
from tests.console_support import runtime_for  # noqa: E402
from tests.redisproc import RedisProcess  # noqa: E402
from tui.app import build_app  # noqa: E402

OUT = ROOT / "screenshots"
SIZE = (100, 30)


async def wait_for(pilot, predicate, timeout=60.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit("timed out making screenshots")
        await pilot.pause(0.1)


def plant_dead_ends(server: RedisProcess) -> None:
    """Garbage on the queue, and results left behind by a producer that died (no session key)."""
    keys = Keys("seawall", "default")
    r = server.client()
    r.lpush(keys.queue_list, b"\x00\x01 not a job")
    gone = "s5e55100dead"
    results = [Result(job_id=f"{gone}-echo-{i:032x}", outcome=Outcome.OK, value={"n": i}, handler="echo",
                      worker="w-gone").to_json() for i in range(3)]
    r.rpush(keys.results(gone), *results)
    r.expire(keys.results(gone), 3000)


async def main() -> None:
    server = RedisProcess().start()
    try:
        app = build_app(runtime_for(server.url, job_timeout_seconds=60), notes_dir=str(ROOT / "examples" / "vault"))
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: app.state.server_version != "")
            await pilot.press("w", "w")
            await pilot.press("s", "enter")
            await wait_for(pilot, lambda: app.state.counts[JobState.DONE.value] >= 10)
            await app.backend.submit("fail", {"message": "a handler that always raises"}, 1)
            await app.backend.submit("sleep", {"seconds": 20}, 1)
            await app.backend.submit("flaky", {"fail_times": 5}, 3)  # out of attempts: handler_failed
            await app.backend.submit("resize_image", {"path": "cat.png"}, 1)  # not registered: invalid_payload
            plant_dead_ends(server)
            await pilot.press("n", "enter")
            await wait_for(pilot, lambda: app.state.notes[1] > 0 and app.state.notes[0] >= app.state.notes[1])
            await pilot.pause(2.5)  # let the sparklines and depths catch up
            await wait_for(pilot, lambda: app.state.depths is not None and app.state.depths.dead >= 10)
            shots = {"1": "dashboard", "2": "workers", "3": "dead-letters", "4": "orphans", "5": "events"}
            for key, name in shots.items():
                await pilot.press(key)
                await pilot.pause(1.2)
                if key == "3":  # a page read, one entry marked, the cursor on a flaky one
                    await wait_for(pilot, lambda: len(app.state.dead.entries) >= 10)
                    await pilot.press("space")
                    await pilot.pause(0.3)
                if key == "4":
                    await wait_for(pilot, lambda: app.state.orphan_scan.scanned_at is not None)
                    await pilot.pause(0.3)
                app.save_screenshot(str(OUT / f"{name}.svg"))
            await pilot.press("1")
            server.stop()
            await wait_for(pilot, lambda: app.state.breaker_state.value == "open", timeout=20)
            await pilot.pause(3)
            app.save_screenshot(str(OUT / "dashboard-outage.svg"))
            server.start()
            await wait_for(pilot, lambda: app.state.breaker_state.value == "closed", timeout=30)
            await app.quit_now()
    finally:
        server.cleanup()
    print("wrote", ", ".join(sorted(p.name for p in OUT.glob("*.svg"))))


if __name__ == "__main__":
    asyncio.run(main())
