"""A lane: one dedicated Redis connection for one hot loop (claim, ack, submit, collect).

A pooled redis-py call costs more than the round trip it makes: a zero-timeout
read to check the pooled connection, a task per send when a socket timeout is
set, the client and retry layers. A lane keeps one connection of its own
(redis-py's, so TLS, AUTH, ACL users and unix sockets behave the same) and
sends packed commands on it: raw replies, no response callbacks.

It has no socket timeout: ``RedisLink.call`` gives every call on a lane a
deadline. A call that is cancelled or times out mid-way drops the connection,
so a late reply can never be read as the answer to the next command.
"""

from __future__ import annotations

import asyncio
from typing import Any, Iterable, Sequence

import redis.asyncio as aioredis
from redis.exceptions import NoScriptError, ResponseError

Command = Sequence[Any]


class Lane:
    """``execute_command`` as redis-py spells it, so code can take a lane or a client."""

    def __init__(self, url: str, **options: Any) -> None:
        """``options``: redis-py connection options (``connection_options``); never a socket timeout."""
        self._pool = aioredis.ConnectionPool.from_url(url, **options, socket_timeout=None)
        self._conn = self._pool.make_connection()
        self._lock = asyncio.Lock()  # one command/reply exchange at a time on the one connection

    async def execute_command(self, *args: Any) -> Any:
        [reply] = await self.pipeline([args])
        return reply

    async def pipeline(self, commands: Iterable[Command], *, raise_on_error: bool = True) -> list[Any]:
        """Send every command in one write and read every reply.

        An error reply is raised once all replies are read (the connection stays
        in step), or with ``raise_on_error=False`` returned in its place.
        """
        commands = list(commands)
        async with self._lock:
            conn = self._conn
            try:
                if not conn.is_connected:
                    await conn.connect()
                await conn.send_packed_command(conn.pack_commands(commands), check_health=False)
                replies: list[Any] = []
                for _ in commands:
                    try:
                        replies.append(await conn.read_response())
                    except ResponseError as exc:  # keep reading: every reply of this write is taken
                        replies.append(exc)
            except BaseException:
                await conn.disconnect(nowait=True)  # never leave a reply unread on the wire
                raise
            if any(isinstance(r, ResponseError) for r in replies):
                # Redis can still run a command it answered with an error (CLIENT UNBLOCK of a
                # client held by CLIENT PAUSE: seen on 7.0), and that late reply must not be read
                # as the next command's. Errors are rare: start the next call on a new connection.
                await conn.disconnect(nowait=True)
        if raise_on_error:
            for reply in replies:
                if isinstance(reply, ResponseError):
                    raise reply
        return replies

    async def aclose(self) -> None:
        await self._conn.disconnect(nowait=True)
        await self._pool.disconnect()


async def run_script(client: Any, script: Any, keys: Sequence[Any], args: Sequence[Any]) -> Any:
    """EVALSHA a redis-py ``Script`` on a lane or a client; load it once if Redis does not know it."""
    try:
        return await client.execute_command("EVALSHA", script.sha, len(keys), *keys, *args)
    except NoScriptError:
        await client.execute_command("SCRIPT", "LOAD", script.script)
        return await client.execute_command("EVALSHA", script.sha, len(keys), *keys, *args)
