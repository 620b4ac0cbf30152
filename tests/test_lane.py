"""Lanes: the hot loops' own connections must never read a reply meant for another command."""

from __future__ import annotations

import asyncio

import pytest
from redis.exceptions import ResponseError

from engine.connection import RedisLink, connection_options
from engine.lane import Lane


async def wait_for_blocked(client, command: str, timeout: float = 5.0) -> int:
    """The id of the client whose current command is ``command`` (a blocked call), bounded."""
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        for c in client.client_list():
            if c.get("cmd") == command:
                return int(c["id"])
        await asyncio.sleep(0.02)
    raise AssertionError(f"no client blocked in {command} after {timeout}s")


async def test_a_command_redis_runs_after_answering_it_with_an_error_is_not_misread(redis_server, fast_settings):
    """CLIENT UNBLOCK ... ERROR of a BLPOP held by CLIENT PAUSE: Redis 7.0 answers UNBLOCKED,
    then runs the BLPOP when the pause ends. Its late reply must not become the next call's."""
    admin = redis_server.client()
    lane = Lane(redis_server.url, **connection_options(fast_settings))
    try:
        await lane.execute_command("PING")
        admin.rpush("k", "popped late")
        admin.execute_command("CLIENT", "PAUSE", "400", "WRITE")
        blpop = asyncio.create_task(lane.execute_command("BLPOP", "k", 1))
        admin.client_unblock(await wait_for_blocked(admin, "blpop"), error=True)
        with pytest.raises(ResponseError, match="UNBLOCKED"):
            await asyncio.wait_for(blpop, 5)
        await asyncio.sleep(0.6)  # the pause is over: a late reply, if any, is on its way
        assert await asyncio.wait_for(lane.execute_command("ECHO", "mine"), 5) == b"mine"
        assert await asyncio.wait_for(lane.execute_command("LLEN", "k"), 5) in (0, 1)
    finally:
        await lane.aclose()


async def test_an_error_reply_inside_a_pipeline_leaves_the_other_replies_in_step(redis_server, fast_settings):
    admin = redis_server.client()
    admin.set("a-string", "x")
    lane = Lane(redis_server.url, **connection_options(fast_settings))
    try:
        replies = await lane.pipeline([("LPUSH", "a-string", 1), ("ECHO", "after")], raise_on_error=False)
        assert isinstance(replies[0], ResponseError) and replies[1] == b"after"
        with pytest.raises(ResponseError, match="WRONGTYPE"):
            await lane.pipeline([("LPUSH", "a-string", 1), ("ECHO", "after")])
        assert await lane.execute_command("ECHO", "next") == b"next"
    finally:
        await lane.aclose()


async def test_a_lane_call_has_a_deadline_and_the_next_call_gets_its_own_reply(redis_server, fast_settings, events):
    """Redis stops answering (CLIENT PAUSE ALL): the call ends at its deadline as a timeout,
    and once Redis answers again the lane works, with no stale reply left behind."""
    link = RedisLink(redis_server.url, fast_settings, events, role="producer")
    admin = redis_server.client()
    try:
        await link.call(lambda c: c.execute_command("PING"), lane="t")
        admin.execute_command("CLIENT", "PAUSE", "1800", "ALL")
        started = asyncio.get_running_loop().time()
        with pytest.raises(Exception) as caught:
            await asyncio.wait_for(link.call(lambda c: c.execute_command("ECHO", "late"), lane="t"), 10)
        waited = asyncio.get_running_loop().time() - started
        assert "no reply from Redis within" in str(caught.value)
        assert fast_settings.redis_socket_timeout_seconds - 0.1 < waited < 1.7
        assert link.errors["timeout"] == 1
        await asyncio.sleep(2.0 - waited)  # the pause ends; the late ECHO's reply must not surface
        assert await link.call(lambda c: c.execute_command("ECHO", "now"), lane="t") == b"now"
    finally:
        await link.close()
