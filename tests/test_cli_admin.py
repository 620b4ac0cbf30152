"""``seawall dlq`` and ``seawall orphans`` as an operator runs them: subprocesses against a real server."""

from __future__ import annotations

import json
import time

import pytest

from engine.deadletters import DeadLetter, DeadLetterStore, DeadReason
from engine.keys import Keys
from engine.models import Job, Outcome, Result

from .test_cli import FAST, seawall

KEYS = Keys("seawall", "default")


def one_line_error(out, code: int, needle: str) -> None:
    assert out.returncode == code, (out.stdout, out.stderr)
    assert out.stderr.strip().count("\n") == 0 and "Traceback" not in out.stderr
    assert needle in out.stderr, out.stderr


def seed(server, n: int, reason=DeadReason.HANDLER_FAILED, start: int = 0) -> list[str]:
    """Entries written with the store's own Lua, through a plain sync client."""
    client = server.client()
    store = DeadLetterStore(KEYS, 10_000, 3600)
    ids = []
    for i in range(start, start + n):
        job = Job(id=f"sGone-echo-{i:03d}", session="sGone", result_key=KEYS.results("sGone"), handler="echo",
                  payload={"i": i, "text": "naïve"}, attempt=3, failures=3)
        entry = DeadLetter(id=job.id, reason=reason, job=job.model_dump(mode="json"), error=f"boom {i}",
                           error_type="HandlerFailure", attempts=3, session="sGone")
        client.eval(*store._add_args(entry, time.time() - 10 + i * 0.001))
        ids.append(job.id)
    return ids


def test_help_on_every_admin_command():
    for cmd in (["dlq"], ["dlq", "list"], ["dlq", "show"], ["dlq", "retry"], ["dlq", "delete"], ["dlq", "purge"],
                ["orphans"]):
        out = seawall(*cmd, "--help")
        assert out.returncode == 0 and "usage: seawall" in out.stdout, cmd


def test_failed_jobs_are_listed_shown_and_retried(redis_server):
    url = redis_server.url
    sub = seawall("submit", "--redis-url", url, "--handler", "flaky", "--payload", '{"fail_times": 9, "k": [1, {}]}',
                  "--count", "3", env=FAST)
    assert sub.returncode == 0, sub.stderr
    ids = sub.stdout.split()
    work = seawall("worker", "--redis-url", url, "--burst", "--log-level", "error", env=FAST)
    assert work.returncode == 0, work.stderr

    listed = seawall("dlq", "list", "--json", "--redis-url", url)
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert sorted(r["id"] for r in rows) == sorted(ids)
    assert all(r["reason"] == "handler_failed" and r["handler"] == "flaky" and r["attempts"] == 3 for r in rows)
    human = seawall("dlq", "list", "--reason", "handler_failed", "--redis-url", url)
    assert human.returncode == 0 and all(i in human.stdout for i in ids) and "3 entries shown of 3" in human.stderr
    assert seawall("dlq", "list", "--reason", "worker_lost", "--json", "--redis-url", url).stdout == ""

    shown = json.loads(seawall("dlq", "show", ids[0], "--json", "--redis-url", url).stdout)
    assert shown["job"]["payload"] == {"fail_times": 9, "k": [1, {}]} and "HandlerFailure" in shown["traceback"]
    text = seawall("dlq", "show", ids[0], "--redis-url", url)
    assert text.returncode == 0 and "traceback:" in text.stdout and '"fail_times": 9' in text.stdout

    one = seawall("dlq", "retry", ids[0], "--redis-url", url)
    assert one.returncode == 0 and one.stdout.strip() == "retried 1 entry"
    rest = seawall("dlq", "retry", "--all", "--reason", "handler_failed", "--redis-url", url)
    assert rest.returncode == 0 and rest.stdout.strip() == "retried 2 entries"
    queued = [Job.from_json(b) for b in redis_server.client().lrange(KEYS.queue_list, 0, -1)]
    assert sorted(q.id for q in queued) == sorted(ids)
    assert all(q.attempt == 1 and q.retries == 1 and q.failures == 3 for q in queued)
    again = seawall("dlq", "retry", ids[0], "--redis-url", url)
    one_line_error(again, 1, f"no dead letter with id {ids[0]!r}")


def test_unknown_ids_change_nothing_and_exit_1(redis_server):
    ids = seed(redis_server, 3)
    url = redis_server.url
    one_line_error(seawall("dlq", "show", "nope", "--redis-url", url), 1, "no dead letter with id 'nope'")
    one_line_error(seawall("dlq", "delete", ids[0], "nope", "--redis-url", url), 1, "nothing was changed")
    one_line_error(seawall("dlq", "retry", ids[1], "nope", "--redis-url", url), 1, "nothing was changed")
    assert redis_server.client().zcard(KEYS.dlq) == 3 and redis_server.client().llen(KEYS.queue_list) == 0


def test_delete_purge_and_what_needs_yes(redis_server):
    ids = seed(redis_server, 5)
    url = redis_server.url
    out = seawall("dlq", "delete", *ids[:2], "--redis-url", url)
    assert out.returncode == 0 and out.stdout.strip() == "deleted 2 entries"
    one_line_error(seawall("dlq", "purge", "--redis-url", url), 2, "add --yes")
    assert redis_server.client().zcard(KEYS.dlq) == 3
    out = seawall("dlq", "purge", "--yes", "--redis-url", url)
    assert out.returncode == 0 and out.stdout.strip() == "purged 3 entries from queue 'default'"
    assert redis_server.client().zcard(KEYS.dlq) == 0


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["dlq"], "dlq needs an action"),
        (["dlq", "retry"], "dlq retry needs ids, or --all"),
        (["dlq", "retry", "x", "--all"], "not both"),
        (["dlq", "retry", "x", "--reason", "handler_failed"], "--reason and --text filter --all"),
        (["dlq", "list", "--reason", "bogus"], "'bogus' is not a dead-letter reason; choose one of: handler_failed"),
        (["dlq", "list", "--limit", "0"], "--limit: 0 must be 1 or more"),
        (["orphans", "--delete"], "add --yes"),
        (["orphans", "--yes"], "--yes confirms --delete"),
    ],
)
def test_operator_mistakes_are_one_line_exit_2(redis_server, args, needle):
    one_line_error(seawall(*args, "--redis-url", redis_server.url), 2, needle)
    assert redis_server.client().dbsize() == 0


def test_an_unreachable_server_is_one_line(redis_server):
    url = redis_server.url
    redis_server.stop()
    for args in (["dlq", "list"], ["orphans"]):
        one_line_error(seawall(*args, "--redis-url", url, env=FAST), 1, "Redis is unreachable")


def test_retry_all_reports_what_it_could_not_retry(redis_server):
    seed(redis_server, 2)
    client = redis_server.client()
    store = DeadLetterStore(KEYS, 10_000, 3600)
    client.eval(*store._add_args(DeadLetter.for_raw(b"\xffjunk", DeadReason.INVALID_PAYLOAD, "not JSON"), None))
    out = seawall("dlq", "retry", "--all", "--redis-url", redis_server.url)
    assert out.returncode == 0 and out.stdout.strip() == "retried 2 entries"
    assert "skipped raw-" in out.stderr and "kept in dead letters" in out.stderr
    assert client.zcard(KEYS.dlq) == 1


def plant(server, session: str, n: int, alive: bool = False) -> str:
    client = server.client()
    key = KEYS.results(session)
    client.rpush(key, *[Result(job_id=f"{session}-echo-{i}", outcome=Outcome.OK, value=i).to_json() for i in range(n)])
    client.expire(key, 600)
    if alive:
        client.set(KEYS.session(session), "{}", ex=600)
    return key


def test_orphans_are_listed_deleted_and_adopted_and_live_sessions_never_touched(redis_server):
    url = redis_server.url
    client = redis_server.client()
    dead = plant(redis_server, "sDead", 3)
    live = plant(redis_server, "sLive", 2, alive=True)
    rows = [json.loads(line) for line in seawall("orphans", "--json", "--redis-url", url).stdout.splitlines()]
    assert rows == [{"key": dead, "session": "sDead", "length": 3, "ttl": rows[0]["ttl"], "idle": rows[0]["idle"],
                     "session_alive": False}]
    human = seawall("orphans", "--redis-url", url)
    assert dead in human.stdout and live not in human.stdout and "1 orphaned result list, 3 results" in human.stderr

    out = seawall("orphans", "--delete", "--yes", "--redis-url", url)
    assert out.returncode == 0 and out.stdout.strip() == "deleted 1 orphaned result list (3 results)"
    assert client.exists(dead) == 0 and client.llen(live) == 2

    other = plant(redis_server, "sOther", 4)
    out = seawall("orphans", "--adopt", "--redis-url", url)
    assert out.returncode == 0 and out.stdout.strip() == "adopted 1 orphaned result list (4 results) into dead letters"
    assert client.exists(other) == 0 and client.llen(live) == 2
    adopted = seawall("dlq", "list", "--reason", "orphaned_result", "--json", "--redis-url", url)
    assert len(adopted.stdout.splitlines()) == 4
    assert seawall("orphans", "--json", "--redis-url", url).stdout == ""
