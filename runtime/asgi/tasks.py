"""Work a request starts to finish in the background (docs/contract.md, section 8),
tracked so that the lifespan's shutdown can wait for it. Each task runs in a
copy of the request's context, so its log lines carry the request id and its
spans join the request's trace. Work that waits between steps (a delivery
between attempts) waits with ``pause``, which ends as soon as the service
stops."""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import Coroutine
from typing import Any

from .error_tracking import report_exception
from .logging import get_logger

log = get_logger(__name__)
# True once the worker stops taking requests (the lifespan's shutdown), until
# the next lifespan starts; and what wakes the work that waits, per event loop.
_stopping = False
_wakers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Event] = (
    weakref.WeakKeyDictionary()
)


def stopping() -> bool:
    """Whether the worker is stopping: background work should finish, not wait."""
    return _stopping


def _waker() -> asyncio.Event:
    loop = asyncio.get_running_loop()
    if loop not in _wakers:
        _wakers[loop] = asyncio.Event()
    return _wakers[loop]


async def pause(seconds: float) -> None:
    """Sleep ``seconds``, or less if the worker starts stopping meanwhile."""
    if _stopping:
        return
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(_waker().wait(), seconds)


class BackgroundTasks:
    """Runs coroutines after the response; logs their failures; drains at shutdown."""

    def __init__(self) -> None:
        """Made as the lifespan starts: the worker is not stopping."""
        global _stopping
        self._tasks: set[asyncio.Task[Any]] = set()
        _stopping = False
        _wakers.clear()

    def __len__(self) -> int:
        return len(self._tasks)

    def spawn(self, coroutine: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        task = asyncio.create_task(coroutine, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._finished)
        return task

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            log.warning("background task cancelled", task=task.get_name())
        elif (error := task.exception()) is not None:
            log.error("background task failed", task=task.get_name(), exc_info=error)
            report_exception(error)

    async def drain(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds for running tasks, then cancel the rest."""
        global _stopping
        _stopping = True
        _waker().set()
        if not self._tasks:
            return
        _, pending = await asyncio.wait(set(self._tasks), timeout=timeout)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=1.0)
