"""Readiness kept current in an asyncio worker (readiness.py): a task of the
application's lifespan runs the readiness check whenever it is due."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from .logging import get_logger
from .readiness import REFRESH_SECONDS, Answer, due_in

log = get_logger(__name__)


async def keep_ready_current(check: Callable[[], Awaitable[Answer]]) -> None:
    """Run ``check`` (what ``/ready`` runs) whenever the outcome is due, until cancelled."""
    while True:
        wait = due_in()
        if wait > 0:
            await asyncio.sleep(wait)
            continue
        try:
            await check()
        except Exception:  # the checks report their own failures; this is a bug
            log.exception("readiness refresh failed")
            await asyncio.sleep(REFRESH_SECONDS)
