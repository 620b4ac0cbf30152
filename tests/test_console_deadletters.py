"""Screens 3 and 4 driven from the keyboard (Pilot) against a private real Redis; --read-only; the reaper."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from textual.widgets import DataTable, Input

from engine.connection import make_client
from engine.deadletters import DeadLetter, DeadLetterStore, DeadReason
from engine.handlers import default_registry
from engine.keys import Keys
from engine.models import Job, JobState, Outcome, Result
from engine.worker import Worker
from tui.app import build_app
from tui.screens.deadletters import DeadLettersScreen, DeadLettersTable
from tui.screens.dialogs import ConfirmDialog, HelpScreen, SubmitDialog
from tui.screens.orphans import OrphansScreen

from .console_support import runtime_for, until

KEYS = Keys("seawall", "default")


@pytest.fixture
def runtime(redis_server):
    return runtime_for(redis_server.url)


@pytest.fixture
def app(runtime, tmp_path):
    return build_app(runtime, notes_dir=str(tmp_path))


@pytest.fixture
async def client(redis_server, runtime):
    c = make_client(redis_server.url, runtime.settings)
    yield c
    await c.aclose()


def store_for(runtime) -> DeadLetterStore:
    return DeadLetterStore.for_settings(runtime.settings)


def entry(i: int, reason: DeadReason = DeadReason.HANDLER_FAILED, session: str = "sGone", **kw) -> DeadLetter:
    job = Job(id=f"{session}-echo-{i:032x}", session=session, result_key=KEYS.results(session), handler="echo",
              payload={"i": i}, attempt=3, failures=3)
    return DeadLetter(id=job.id, reason=reason, job=job.model_dump(mode="json"), error=f"boom {i}",
                      error_type="HandlerFailure", attempts=3, session=session, **kw)


async def fill(client, store, entries: list[DeadLetter]) -> None:
    base = time.time() - 60
    for n, e in enumerate(entries):  # the first given is the oldest
        await store.add(client, e, now=base + n * 0.01)


async def connected(pilot, app) -> None:
    await until(pilot, lambda: app.state.server_version != "", what="connection")


def table(app) -> DeadLettersTable:
    return app.screen.query_one(DeadLettersTable)


def row_ids(app) -> list[str]:
    return [k.value for k in table(app).rows]


def question(app) -> str:
    assert isinstance(app.screen, ConfirmDialog), f"expected a confirm dialog, got {app.screen!r}"
    return app.screen.question


async def serve_burst(runtime, events=None):
    worker = Worker(runtime.settings, runtime.url, runtime.event_log("error"), default_registry(), burst=True,
                    concurrency=4)
    await asyncio.wait_for(worker.run(), 20)


# -- screen 3: dead letters ------------------------------------------------------------


async def test_retry_marked_entries_from_the_keyboard_brings_their_results_back(app, runtime, client):
    store = store_for(runtime)
    async with app.run_test(size=(100, 30)) as pilot:
        await connected(pilot, app)
        # three flaky jobs that fail all three attempts: they land as handler_failed
        await app.backend.submit("flaky", {"fail_times": 3}, 3)
        await until(pilot, lambda: len(app.state.jobs) == 3, what="submission")
        await serve_burst(runtime)
        await until(pilot, lambda: app.state.counts[JobState.FAILED.value] == 3, what="three failures")
        assert await store.count(client) == 3

        await pilot.press("3")
        assert isinstance(app.screen, DeadLettersScreen)
        await until(pilot, lambda: table(app).row_count == 3, what="three rows")
        ids = row_ids(app)
        await pilot.press("space", "space")  # marks the first two (the cursor moves down)
        assert list(app.state.dead.marked) == ids[:2]
        assert "2 marked" in str(app.screen.query_one("#dlq-summary").render())

        await pilot.press("r")
        assert question(app).startswith("Retry 2 marked entries of handler_failed?")
        await pilot.press("enter")  # the default is No
        assert isinstance(app.screen, DeadLettersScreen)
        assert await store.count(client) == 3 and await client.llen(KEYS.queue_list) == 0

        await pilot.press("r", "right", "enter")  # Retry
        await until(pilot, lambda: not app.state.dead.marked, what="marks cleared")
        assert await store.count(client) == 1
        assert {Job.from_json(b).id for b in await client.lrange(KEYS.queue_list, 0, -1)} == set(ids[:2])
        assert set(ids[:2]) <= set(app.backend.producer.pending)  # the console awaits their results
        await until(pilot, lambda: row_ids(app) == ids[2:], what="the page reloaded")

        await serve_burst(runtime)  # failures over their history are now 3: flaky succeeds
        await until(pilot, lambda: app.state.counts[JobState.DONE.value] == 2, what="two results")
        assert {app.state.jobs[i].state for i in ids[:2]} == {JobState.DONE}
        assert app.state.jobs[ids[2]].state is JobState.FAILED
        await app.quit_now()


async def test_delete_the_selected_entry_asks_first_and_default_is_no(app, runtime, client):
    store = store_for(runtime)
    entries = [entry(i) for i in range(5)]
    await fill(client, store, entries)
    async with app.run_test(size=(80, 24)) as pilot:
        await connected(pilot, app)
        await pilot.press("3")
        await until(pilot, lambda: table(app).row_count == 5, what="five rows")
        assert row_ids(app) == [e.id for e in reversed(entries)]  # newest first
        target = row_ids(app)[1]
        await pilot.press("down", "d")
        assert question(app).startswith("Delete entry echo-00000003 of handler_failed?")
        await pilot.press("escape")  # cancel is No too
        await pilot.press("d", "enter")
        assert await store.count(client) == 5
        await pilot.press("d", "right", "enter")
        await until(pilot, lambda: table(app).row_count == 4, what="the page reloaded")
        assert target not in row_ids(app)
        assert await store.get(client, target) is None and await store.count(client) == 4
        await app.quit_now()


async def test_filter_by_reason_and_text_then_retry_all_that_match(app, runtime, client):
    store = store_for(runtime)
    await client.set(KEYS.session("sAlive"), "{}", ex=600)  # another producer, alive: its job stays its own
    lost = [entry(10, DeadReason.WORKER_LOST), entry(11, DeadReason.WORKER_LOST, session="sAlive")]
    garbage = DeadLetter.for_raw(b"\xffnot json", DeadReason.INVALID_PAYLOAD, "not JSON")
    await fill(client, store, [entry(i) for i in range(4)] + lost + [garbage])
    async with app.run_test(size=(100, 30)) as pilot:
        await connected(pilot, app)
        await pilot.press("3")
        await until(pilot, lambda: table(app).row_count == 7, what="seven rows")

        await pilot.press("slash")
        box = app.screen.query_one("#dlq-filter", Input)
        assert box.has_focus
        box.value = "worker_lost"
        await pilot.press("enter")
        await until(pilot, lambda: set(row_ids(app)) == {e.id for e in lost}, what="reason filter")
        assert table(app).has_focus

        await pilot.press("R")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the count, then the question")
        assert question(app).startswith("Retry 2 entries of worker_lost?")
        await pilot.press("enter")  # No
        assert await store.count(client) == 7
        await pilot.press("R")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the question")
        await pilot.press("right", "enter")
        await until(pilot, lambda: table(app).row_count == 0, what="the filtered page emptied")
        queued = {Job.from_json(b).id: Job.from_json(b) for b in await client.lrange(KEYS.queue_list, 0, -1)}
        assert set(queued) == {e.id for e in lost} and await store.count(client) == 5
        # the one whose session is gone now reports to the console; the live one to its own session
        assert queued[lost[0].id].session == app.session_id and queued[lost[1].id].session == "sAlive"
        assert lost[0].id in app.backend.producer.pending and lost[1].id not in app.backend.producer.pending
        assert lost[0].id in app.state.jobs  # and it shows in the jobs table

        # text: matches the error, case-insensitively
        await pilot.press("slash")
        box.value = "BOOM 2"
        await pilot.press("enter")
        await until(pilot, lambda: row_ids(app) == [entry(2).id], what="text filter")
        await pilot.press("escape")  # clears the filter
        await until(pilot, lambda: table(app).row_count == 5, what="unfiltered again")
        assert box.value == "" and app.state.dead.filter_text == ""

        # without a filter, R retries everything: the question says so, and one entry has no job
        await pilot.press("R")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the question")
        assert question(app).startswith("Retry all 5 entries?")
        await pilot.press("escape")
        await app.quit_now()


async def test_pages_turn_with_brackets_and_page_keys_and_the_count_follows_workers(app, runtime, client):
    store = store_for(runtime)
    entries = [entry(i) for i in range(120)]
    await fill(client, store, entries)
    newest = [e.id for e in reversed(entries)]
    async with app.run_test(size=(80, 24)) as pilot:
        await connected(pilot, app)
        await pilot.press("3")
        await until(pilot, lambda: row_ids(app) == newest[:50], what="page 1")
        await pilot.press("right_square_bracket")
        await until(pilot, lambda: row_ids(app) == newest[50:100], what="page 2")
        summary = app.screen.query_one("#dlq-summary")
        assert "page 2: 51–100 of 120 entries" in str(summary.render())
        await pilot.press("pagedown")
        await until(pilot, lambda: row_ids(app) == newest[100:], what="page 3")
        await pilot.press("pagedown")  # no page 4
        await pilot.press("left_square_bracket", "pageup")
        await until(pilot, lambda: row_ids(app) == newest[:50], what="back to page 1")

        # a worker adds entries: the page refreshes by itself (from the dead count it polls)
        more = [entry(500 + i) for i in range(3)]
        for e in more:
            await store.add(client, e)
        await until(pilot, lambda: row_ids(app)[:3] == [e.id for e in reversed(more)], timeout=10,
                    what="live refresh")
        assert "of 123 entries" in str(summary.render())
        await app.quit_now()


async def test_a_page_read_that_fails_is_read_again_when_redis_answers(app, runtime, client):
    store = store_for(runtime)
    await fill(client, store, [entry(i) for i in range(60)])
    async with app.run_test(size=(80, 24)) as pilot:
        await connected(pilot, app)
        await pilot.press("3")
        await until(pilot, lambda: table(app).row_count == 50, what="page 1")
        await client.client_pause(2500, all=True)  # Redis stops answering (past the 1 s socket timeout)
        await pilot.press("right_square_bracket")  # page 2, asked while Redis is silent
        await until(pilot, lambda: app.state.dead.error != "", what="the read fails")
        summary = app.screen.query_one("#dlq-summary")
        assert "could not refresh" in str(summary.render()) and table(app).row_count == 50  # the last page stays
        await pilot.press("4", "3")  # keys still answer
        await until(pilot, lambda: table(app).row_count == 10 and not app.state.dead.error, timeout=20,
                    what="page 2 once Redis answers again")
        assert "page 2: 51–60 of 60 entries" in str(app.screen.query_one("#dlq-summary").render())
        await app.quit_now()


async def test_opens_quickly_with_100000_entries(redis_server, client):
    n = 100_000
    app = build_app(runtime_for(redis_server.url, dlq_max_entries=n))
    base = time.time() - n * 0.001
    template = entry(0).model_dump()
    for start in range(0, n, 5000):
        pipe = client.pipeline(transaction=False)
        for i in range(start, start + 5000):
            e = DeadLetter(**(template | {"id": f"sBig-echo-{i:032x}", "error": f"boom {i}"}))
            pipe.zadd(KEYS.dlq, {e.id: base + i * 0.001})
            pipe.hset(KEYS.dlq_entries, e.id, e.model_dump_json())
        await pipe.execute()
    async with app.run_test(size=(80, 24)) as pilot:
        await connected(pilot, app)
        started = time.monotonic()
        await pilot.press("3")
        await until(pilot, lambda: table(app).row_count == 50, timeout=5, what="the first page")
        opened = time.monotonic() - started
        assert opened < 3.0, f"took {opened:.2f}s"  # about 0.3 s here; the rest is a margin for a busy machine
        assert app.state.dead.total == n and row_ids(app)[0] == f"sBig-echo-{n - 1:032x}"
        assert app.state.dead.scanned == 50  # one page read, never the store
        await app.quit_now()


# -- screen 4: orphaned result lists -------------------------------------------------


async def plant(client, session: str, n: int, *, alive: bool = False) -> str:
    key = KEYS.results(session)
    results = [Result(job_id=f"{session}-echo-{i}", outcome=Outcome.OK, value={"i": i}, handler="echo").to_json()
               for i in range(n)]
    await client.rpush(key, *results)
    await client.expire(key, 600)
    if alive:
        await client.set(KEYS.session(session), "{}", ex=600)
    return key


def orphan_keys(app) -> list[str]:
    return [k.value for k in app.screen.query_one("#orphans-table", DataTable).rows]


async def test_orphan_scan_lists_a_planted_list_and_delete_and_adopt_clean_it(app, runtime, client):
    nobody = await plant(client, "sNobody", 3)
    other = await plant(client, "sOther", 2)
    live = await plant(client, "sLive", 4, alive=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await connected(pilot, app)
        await pilot.press("4")
        assert isinstance(app.screen, OrphansScreen)
        await until(pilot, lambda: app.state.orphan_scan.scanned_at is not None, what="the first scan")
        assert set(orphan_keys(app)) == {nobody, other}  # a live session's list is never listed
        assert app.state.orphans == 2
        row = app.screen.query_one("#orphans-table", DataTable).get_row(nobody)
        assert row[2:] == ["3", row[3], row[4], "sNobody", "gone"] and row[3] != "none"

        # cursor to sNobody's list, delete it: asks first, default No
        table_ = app.screen.query_one("#orphans-table", DataTable)
        table_.move_cursor(row=orphan_keys(app).index(nobody))
        await pilot.press("d")
        assert question(app).startswith("Delete 1 orphaned result list (3 results) of session sNobody?")
        await pilot.press("enter")
        assert await client.exists(nobody)
        await pilot.press("d", "right", "enter")
        await until(pilot, lambda: orphan_keys(app) == [other] and not app.state.orphan_scan.scanning,
                    what="deleted, then rescanned")
        assert not await client.exists(nobody)

        await pilot.press("a")
        assert question(app).startswith("Adopt 1 orphaned result list (2 results) of session sOther into dead")
        await pilot.press("right", "enter")
        await until(pilot, lambda: orphan_keys(app) == [] and not app.state.orphan_scan.scanning, what="adopted")
        store = store_for(runtime)
        page = await store.page(client, reason=DeadReason.ORPHANED_RESULT)
        assert len(page.entries) == 2 and {e.session for e in page.entries} == {"sOther"}
        assert await client.llen(live) == 4
        assert "No orphaned result lists" in str(app.screen.query_one("#orphans-empty").render())

        await plant(client, "sLater", 1)
        await pilot.press("f5")
        await until(pilot, lambda: orphan_keys(app) == [KEYS.results("sLater")], what="rescan with F5")
        await app.quit_now()


async def test_escape_stops_a_running_orphan_scan(app, runtime, client):
    await client.mset({f"unrelated:{i}": 1 for i in range(5000)})  # ten SCAN steps
    async with app.run_test(size=(80, 24)) as pilot:
        await connected(pilot, app)
        await pilot.press("4")
        await until(pilot, lambda: app.state.orphan_scan.scanned_at is not None, what="first scan")
        await client.client_pause(400, all=True)  # the rescan's first step waits: Escape comes first
        await pilot.press("g")
        assert app.state.orphan_scan.scanning
        assert "esc stops" in str(app.screen.query_one("#orphans-summary").render())
        await pilot.press("escape")
        await until(pilot, lambda: not app.state.orphan_scan.scanning, what="the scan stopped")
        view = app.state.orphan_scan
        assert view.cancelled and view.examined < view.total_keys
        assert "scan stopped" in str(app.screen.query_one("#orphans-summary").render())
        await app.quit_now()


# -- --read-only -----------------------------------------------------------------------


MUTATING_KEYS = {"s", "n", "w", "x", "K", "r", "R", "d", "a", "space"}
MUTATING_TITLES = ("Submit", "Launch", "Stop", "Kill", "Retry", "Delete", "Adopt", "Mark")


async def test_read_only_hides_every_mutating_action(runtime, client):
    store = store_for(runtime)
    await fill(client, store, [entry(i) for i in range(3)])
    await plant(client, "sNobody", 1)
    app = build_app(runtime, read_only=True)
    async with app.run_test(size=(100, 30)) as pilot:
        await connected(pilot, app)
        assert app.screen.query_one("ReadOnlyBadge").has_class("-on")
        for key in "12345":
            await pilot.press(key)
            if key == "3":
                await until(pilot, lambda: table(app).row_count == 3, what="dead letters still readable")
            if key == "4":
                await until(pilot, lambda: len(orphan_keys(app)) == 1, what="orphans still listed")
            footer = {b.binding.key for b in app.screen.active_bindings.values() if b.binding.show}
            assert not footer & MUTATING_KEYS, (key, footer)
            titles = [c.title for c in app.get_system_commands(app.screen)]
            assert not [t for t in titles if t.startswith(MUTATING_TITLES)], (key, titles)
            await pilot.press("question_mark")
            assert isinstance(app.screen, HelpScreen)
            assert not {k for k, _ in app.screen.rows} & MUTATING_KEYS
            await pilot.press("escape")
            for k in ("s", "n", "w", "r", "R", "d", "a", "space", "x", "K"):
                await pilot.press(k)
                assert not isinstance(app.screen, (ConfirmDialog, SubmitDialog)), (key, k)
        assert not app.backend.workers and await store.count(client) == 3
        assert await client.exists(KEYS.results("sNobody"))
        assert app.backend.reaper is None  # a read-only console changes nothing, not even a dead worker's list
        await app.quit_now()


async def test_the_full_console_shows_those_actions(app):
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("3")
        footer = {b.binding.key for b in app.screen.active_bindings.values() if b.binding.show}
        assert {"slash", "space", "r", "R", "d", "left_square_bracket", "right_square_bracket"} <= footer
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert "Retry all dead letters matching the filter" in titles
        await pilot.press("question_mark")
        keys = {k for k, _ in app.screen.rows}
        assert {"/", "space", "r", "R", "d", "[", "]", "s", "q", "?"} <= keys
        await pilot.press("escape", "4", "question_mark")
        assert {"a", "d", "g/F5", "space"} <= {k for k, _ in app.screen.rows}


# -- the reaper --------------------------------------------------------------------------


async def test_the_console_requeues_the_jobs_of_a_dead_worker(app, client):
    job = Job(id="sGone-echo-1", session="sGone", result_key=KEYS.results("sGone"), handler="echo", payload={})
    await client.zadd(KEYS.workers, {"wDead": time.time() - 5})
    await client.rpush(KEYS.processing("wDead"), job.to_json())  # no heartbeat key: its worker is dead
    async with app.run_test(size=(80, 24)) as pilot:
        await connected(pilot, app)
        await until(pilot, lambda: app.backend.reaper_runs >= 1, timeout=10, what="a reaper pass")
        assert [json.loads(b)["id"] for b in await client.lrange(KEYS.queue_list, 0, -1)] == [job.id]
        assert await client.llen(KEYS.processing("wDead")) == 0
        await app.quit_now()
