"""Readiness kept current in an asyncio worker (readiness.py): a task of the
application's lifespan runs the readiness check whenever it is due."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from .logging import get_logger
from .readiness import REFRESH_SECONDS, Answer, due_in, stop_within

log = get_logger(__name__)


def keep_ready_current(check: Callable[[], Awaitable[Answer]]) -> Callable[[], Awaitable[None]]:
    """Run ``check`` (what ``/ready`` runs) whenever the outcome is due, in a task
    of its own; returns what stops it (at shutdown, before the database closes).

    A check under way then is let finish, within ``READY_TIMEOUT`` and a second:
    cancelled while it opened a connection, aiosqlite left that connection open
    past the pool's disposal, and its thread wrote a traceback at exit."""
    stopped = asyncio.Event()

    async def pause(seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopped.wait(), seconds)

    async def run() -> None:
        while not stopped.is_set():
            wait = due_in()
            if wait > 0:
                await pause(wait)
                continue
            try:
                await check()
            except Exception:  # the checks report their own failures; this is a bug
                log.exception("readiness refresh failed")
                await pause(REFRESH_SECONDS)

    task = asyncio.create_task(run(), name="readiness-refresh")

    async def stop() -> None:
        stopped.set()
        _, running = await asyncio.wait({task}, timeout=stop_within())
        if running:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    return stop
