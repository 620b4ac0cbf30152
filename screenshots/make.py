"""Regenerate screenshots/*.svg from the real console with real data.

    python screenshots/make.py

Starts a private redis-server, opens the console headless at 100x30, launches
a worker from the keyboard, submits jobs and the sample vault, and saves one
SVG per screen (plus the dashboard during a Redis outage).
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.models import JobState  # noqa: E402
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
            await pilot.press("n", "enter")
            await wait_for(pilot, lambda: app.state.notes[1] > 0 and app.state.notes[0] >= app.state.notes[1])
            await pilot.pause(2.5)  # let the sparklines and depths catch up
            shots = {"1": "dashboard", "2": "workers", "3": "dead-letters", "4": "orphans", "5": "events"}
            for key, name in shots.items():
                await pilot.press(key)
                await pilot.pause(1.2)
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
