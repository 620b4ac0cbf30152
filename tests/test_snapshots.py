"""How every screen looks, at 80x24 and 120x40, with fixed data (pytest-textual-snapshot).

Update after a deliberate UI change: pytest tests/test_snapshots.py --snapshot-update
"""

from __future__ import annotations

import time

import pytest

from .snapshot_data import make_app, populate

SCREENS = ["1", "2", "3", "4", "5"]
SIZES = [(80, 24), (120, 40)]


@pytest.fixture(autouse=True)
def _utc(monkeypatch):
    monkeypatch.delenv("NO_COLOR", raising=False)  # snapshots are in colour; NO_COLOR has its own test
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("key", SCREENS)
def test_screen(snap_compare, key, size):
    app = make_app()

    async def setup(pilot):
        await pilot.press(key)
        await pilot.pause()
        populate(app)
        await pilot.pause()

    assert snap_compare(app, terminal_size=size, run_before=setup)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_submit_dialog(snap_compare, size):
    app = make_app()

    async def setup(pilot):
        populate(app)
        await pilot.press("s")
        await pilot.pause()

    assert snap_compare(app, terminal_size=size, run_before=setup)


@pytest.mark.parametrize(("screen", "key"), [("3", "r"), ("4", "d")], ids=["retry", "delete-orphan"])
def test_confirm_dialogs(snap_compare, screen, key):
    """What a mutation asks before it runs, at 80x24: the default (focused) is No."""
    app = make_app()

    async def setup(pilot):
        await pilot.press(screen)
        await pilot.pause()
        populate(app)
        await pilot.pause()
        await pilot.press(key)
        await pilot.pause()

    assert snap_compare(app, terminal_size=(80, 24), run_before=setup)


def test_help(snap_compare):
    app = make_app()

    async def setup(pilot):
        await pilot.press("question_mark")
        await pilot.pause()

    assert snap_compare(app, terminal_size=(80, 24), run_before=setup)


async def test_no_color_still_tells_the_breaker_state_in_words(monkeypatch):
    from tui.widgets.status import BreakerBadge

    monkeypatch.setenv("NO_COLOR", "1")
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        populate(app)
        await pilot.pause()
        assert app.no_color
        assert "breaker CLOSED 0/5 trips 1" in str(app.screen.query_one(BreakerBadge).render())
