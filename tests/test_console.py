"""The console driven from the keyboard (Pilot) against a private real Redis."""

from __future__ import annotations

import pytest

from engine.breaker import BreakerState
from engine.keys import Keys
from engine.models import JobState
from tui.app import build_app
from tui.screens.dialogs import ConfirmDialog, HelpScreen
from tui.screens.workers import WorkersScreen
from tui.widgets.jobs import JobsTable
from tui.widgets.status import BreakerBadge, PausedBadge

from .console_support import launch_a_worker_and_send_ten, runtime_for, until
from .worker_support import pid_alive

KEYS = Keys("seawall", "default")


@pytest.fixture
def app(redis_server, tmp_path):
    return build_app(runtime_for(redis_server.url), notes_dir=str(tmp_path))


def no_result_lists(server) -> bool:
    return list(server.client().scan_iter(match="seawall:*:results:*")) == []


async def test_w_then_s_enter_sends_ten_echo_jobs_and_they_finish(app, redis_server):
    async with app.run_test(size=(100, 30)) as pilot:
        await launch_a_worker_and_send_ten(pilot, app)
        table = app.screen.query_one(JobsTable)
        assert table.row_count == 10
        assert {row.state for row in table.rows} == {JobState.DONE}
        assert len(app.state.results) == 10
        pid = next(iter(app.backend.workers.values())).process.pid
        await pilot.press("q")
        assert isinstance(app.screen, ConfirmDialog)
        await pilot.press("enter")  # default: stop the workers
        await until(pilot, lambda: not app.is_running, what="exit")
    assert not pid_alive(pid)
    assert no_result_lists(redis_server)


@pytest.mark.parametrize(
    ("field", "text", "reason"),
    [("#payload", "{not json", "payload is not valid JSON"), ("#handler", "nope", "handler 'nope' is not registered")],
)
async def test_bad_submit_is_refused_in_the_dialog(app, redis_server, field, text, reason):
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: app.state.server_version != "", what="connection")
        await pilot.press("s")
        dialog = app.screen
        dialog.query_one(field).value = text
        dialog.query_one(field).focus()
        await pilot.press("enter")
        assert app.screen is dialog, "the dialog stays open"
        assert reason in str(dialog.query_one("#error").render())
        await pilot.press("escape")
        assert not app.state.jobs
    assert redis_server.client().llen(KEYS.queue_list) == 0


async def test_stop_and_kill_workers_from_the_workers_screen(app, redis_server):
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: app.state.server_version != "", what="connection")
        await pilot.press("w", "w", "2")
        assert isinstance(app.screen, WorkersScreen)
        await until(pilot, lambda: len(app.backend.workers) == 2 and all(
            w.process.pid for w in app.backend.workers.values()), what="two workers")
        first, second = list(app.backend.workers.values())
        await until(pilot, lambda: app.screen.query_one("#workers").row_count == 2, what="rows")
        beating = lambda: {w.worker_id for w in (app.state.depths.workers if app.state.depths else ()) if w.alive}  # noqa: E731
        await until(pilot, lambda: {first.worker_id, second.worker_id} <= beating(), what="both workers serving")
        await pilot.press("x")  # the cursor is on the first worker
        await until(pilot, lambda: first.process.returncode is not None, what="graceful stop")
        assert first.process.returncode == 0 and first.state == "exited 0"
        await pilot.press("down", "K")
        assert isinstance(app.screen, ConfirmDialog)
        await pilot.press("enter")  # the default is No
        assert second.process.alive
        await pilot.press("K", "right", "enter")  # move to Kill
        await until(pilot, lambda: second.process.returncode is not None, what="kill")
        assert second.state == "killed" and second.process.returncode == -9
        await pilot.press("q")  # nothing running: quits without asking
        await until(pilot, lambda: not app.is_running, what="exit")
    assert no_result_lists(redis_server)


async def test_pause_keeps_counting_but_freezes_the_table(app, redis_server):
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: app.state.server_version != "", what="connection")
        await pilot.press("p")
        assert app.screen.query_one(PausedBadge).has_class("-on")
        await app.backend.submit("echo", {}, 3)
        await until(pilot, lambda: len(app.state.jobs) == 3, what="submission")
        assert app.screen.query_one(JobsTable).row_count == 0
        await pilot.press("p")
        assert not app.screen.query_one(PausedBadge).has_class("-on")
        assert app.screen.query_one(JobsTable).row_count == 3


async def test_help_lists_the_keys_of_the_current_screen(app):
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("2", "question_mark")
        assert isinstance(app.screen, HelpScreen)
        keys = [k for k, _ in app.screen.rows]
        for key in ("x", "K", "s", "n", "w", "p", "q", "1-5"):
            assert key in keys
        await pilot.press("escape")
        assert isinstance(app.screen, WorkersScreen)
        await pilot.press("f1")
        assert isinstance(app.screen, HelpScreen)


async def test_screens_switch_with_1_to_5(app):
    async with app.run_test(size=(100, 30)) as pilot:
        for key, mode in zip("23451", ["workers", "deadletters", "orphans", "events", "dashboard"]):
            await pilot.press(key)
            assert app.current_mode == mode


async def test_breaker_goes_open_and_back_to_closed_with_the_server(app, redis_server):
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: app.state.server_version != "", what="connection")
        redis_server.stop()
        await until(pilot, lambda: app.state.breaker_state is BreakerState.OPEN, timeout=10, what="OPEN")
        badge = app.screen.query_one(BreakerBadge)
        await until(pilot, lambda: "OPEN" in str(badge.render()), what="badge text")
        await pilot.press("2", "1")  # keys still answer
        assert app.current_mode == "dashboard"
        redis_server.start()
        await until(pilot, lambda: app.state.breaker_state is BreakerState.CLOSED, timeout=15, what="CLOSED")
        await until(pilot, lambda: "CLOSED" in str(app.screen.query_one(BreakerBadge).render()), what="badge")
        assert app.state.breaker.trips >= 1


async def test_notes_key_submits_a_folder_with_progress(redis_server, tmp_path):
    for i in range(5):
        (tmp_path / f"n{i}.md").write_text(f"# Note {i}\n\nQ: what is {i}?\nA: {i}\n")
    app = build_app(runtime_for(redis_server.url), notes_dir=str(tmp_path))
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: app.state.server_version != "", what="connection")
        await pilot.press("w")
        await pilot.press("n", "enter")
        await until(pilot, lambda: app.state.notes[1] == 5, what="notes submitted")
        await until(pilot, lambda: app.state.counts[JobState.DONE.value] == 5, what="five notes done")
        await until(pilot, lambda: app.state.notes == (5, 5), what="progress complete")
        await app.quit_now()
    assert no_result_lists(redis_server)
