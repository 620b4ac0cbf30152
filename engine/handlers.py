"""The handler registry: a job runs only a function an operator registered by name.

A job can never name an import path; unknown names are refused, not executed.
Sync handlers run in a thread, async ones on the event loop.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

Handler = Callable[..., Any]

@dataclass(frozen=True, slots=True)
class JobContext:
    """What a handler may know about the job it runs."""

    job_id: str
    attempt: int
    failures: int  # failed tries over the job's whole history, dead-letter retries included
    worker: str

class UnknownHandlerError(LookupError):
    pass

@dataclass(frozen=True, slots=True)
class _Entry:
    fn: Handler
    wants_context: bool
    permanent: tuple[type[BaseException], ...]
    inline: bool


class Registry:
    def __init__(self) -> None:
        self._handlers: dict[str, _Entry] = {}

    def register(
        self,
        name: str,
        fn: Handler | None = None,
        *,
        wants_context: bool = False,
        permanent: tuple[type[BaseException], ...] = (),
        inline: bool = False,
    ) -> Any:
        """Register ``fn`` under ``name`` (usable as a decorator).

        ``permanent``: exception types that retrying cannot fix (bad input);
        the job fails at once instead of using up its attempts.
        ``inline``: a sync handler so cheap (microseconds) that it runs on the
        event loop instead of paying for a thread.
        """

        def add(f: Handler) -> Handler:
            self._handlers[name] = _Entry(f, wants_context, permanent, inline)
            return f

        return add(fn) if fn is not None else add

    def is_inline(self, name: str) -> bool:
        entry = self._handlers.get(name)
        return bool(entry and entry.inline)

    def is_permanent(self, name: str, exc: BaseException) -> bool:
        entry = self._handlers.get(name)
        return bool(entry and isinstance(exc, entry.permanent))

    def names(self) -> list[str]:
        return sorted(self._handlers)

    def __contains__(self, name: object) -> bool:
        return name in self._handlers

    async def run(self, name: str, payload: Any, ctx: JobContext) -> Any:
        try:
            entry = self._handlers[name]
        except KeyError:
            raise UnknownHandlerError(f"no handler registered as {name!r}; registered: {', '.join(self.names())}") from None
        args = (payload, ctx) if entry.wants_context else (payload,)
        if inspect.iscoroutinefunction(entry.fn):
            return await entry.fn(*args)
        if entry.inline:
            return entry.fn(*args)
        return await run_in_daemon_thread(entry.fn, *args)

async def run_in_daemon_thread(fn: Handler, *args: Any) -> Any:
    """Run a sync handler in a daemon thread.

    A thread cannot be killed: a handler that hangs past its timeout keeps
    running, but as a daemon it never stops the worker process from exiting.
    """
    loop = asyncio.get_running_loop()
    future: asyncio.Future[Any] = loop.create_future()

    def settle(ok: bool, value: Any) -> None:
        if future.done():
            return
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)

    def target() -> None:
        try:
            value, ok = fn(*args), True
        except BaseException as exc:  # noqa: BLE001 - handed to the awaiting task
            value, ok = exc, False
        try:
            loop.call_soon_threadsafe(settle, ok, value)
        except RuntimeError:
            pass  # the loop is gone: the worker is exiting

    threading.Thread(target=target, name="seawall-handler", daemon=True).start()
    return await future


# -- built-ins ---------------------------------------------------------------

class HandlerFailure(RuntimeError):
    """Raised on purpose by the ``fail`` and ``flaky`` handlers."""

def echo(payload: Any) -> Any:
    return payload

async def sleep(payload: Any) -> dict[str, float]:
    seconds = float((payload or {}).get("seconds", 1.0)) if isinstance(payload, dict) else float(payload or 1.0)
    started = time.monotonic()
    await asyncio.sleep(max(0.0, seconds))
    return {"slept": round(time.monotonic() - started, 3)}

def fail(payload: Any) -> Any:
    message = payload.get("message", "failed on purpose") if isinstance(payload, dict) else "failed on purpose"
    raise HandlerFailure(str(message))

def flaky(payload: Any, ctx: JobContext) -> dict[str, int]:
    """Fails the first ``fail_times`` tries of the job, counted over its whole history."""
    fail_times = int((payload or {}).get("fail_times", 1)) if isinstance(payload, dict) else 1
    if ctx.failures < fail_times:
        raise HandlerFailure(f"flaky: failure {ctx.failures + 1} of {fail_times}")
    return {"succeeded_after_failures": ctx.failures}

def increment(payload: Any) -> Any:
    """The benchmark's trivial job: return input + 1."""
    return (payload or 0) + 1

def default_registry() -> Registry:
    from .notes import NoteError, cards_handler  # noqa: PLC0415 - keeps import of the parser lazy

    reg = Registry()
    reg.register("echo", echo, inline=True)
    reg.register("sleep", sleep)
    reg.register("fail", fail, inline=True)
    reg.register("flaky", flaky, wants_context=True, inline=True)
    reg.register("increment", increment, inline=True)
    reg.register("notes.cards", cards_handler, permanent=(NoteError,))
    return reg


class HandlerImportError(LookupError):
    """A ``--import`` module is missing or has no ``register(registry)``."""

    exit_code = 2


def load_registry(modules: list[str]) -> Registry:
    """The built-ins plus what each operator module registers: handlers come only from here."""
    import importlib  # noqa: PLC0415

    reg = default_registry()
    for name in modules:
        try:
            module = importlib.import_module(name)
        except ImportError as exc:
            raise HandlerImportError(f"--import {name}: cannot import it ({exc})") from None
        register = getattr(module, "register", None)
        if not callable(register):
            raise HandlerImportError(f"--import {name}: the module has no register(registry) function")
        register(reg)
    return reg
