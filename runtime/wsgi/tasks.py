"""Work a request starts to finish in the background (docs/contract.md, section 8).

A small thread pool rather than a task queue: the work is short, belongs to
this process, and must be waited for when the worker stops (``drain``, which
the application registers with ``server.on_exit``). Each task runs in a copy
of the request's context, so its log lines carry the request id and its
spans join the request's trace. Work that waits between steps (a delivery
between attempts) waits with ``pause``, which ends as soon as the worker
stops.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait

from .error_tracking import report_exception
from .logging import get_logger

log = get_logger(__name__)
# Set once the worker stops taking requests (``drain``).
_stopping = threading.Event()


def stopping() -> bool:
    """Whether the worker is stopping: background work should finish, not wait."""
    return _stopping.is_set()


def pause(seconds: float) -> None:
    """Sleep ``seconds``, or less if the worker starts stopping meanwhile."""
    _stopping.wait(seconds)


class BackgroundTasks:
    def __init__(self, workers: int = 2) -> None:
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="background")
        self._running: set[Future[None]] = set()
        self._lock = threading.Lock()

    def spawn(self, work: Callable[[], object], name: str) -> Future[None]:
        context = contextvars.copy_context()
        future = self._executor.submit(context.run, self._run, work, name)
        with self._lock:
            self._running.add(future)
        future.add_done_callback(self._forget)
        return future

    @staticmethod
    def _run(work: Callable[[], object], name: str) -> None:
        try:
            work()
        except Exception as error:
            log.exception("background task failed", task=name)
            report_exception(error)

    def _forget(self, future: Future[None]) -> None:
        with self._lock:
            self._running.discard(future)

    def drain(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds for running tasks; drop the ones not started."""
        _stopping.set()
        with self._lock:
            running = set(self._running)
        wait(running, timeout=timeout)
        self._executor.shutdown(wait=False, cancel_futures=True)


_tasks = BackgroundTasks()


def spawn(work: Callable[[], object], name: str) -> Future[None]:
    """Run ``work`` in the background; a failure is logged, never raised."""
    return _tasks.spawn(work, name)


def drain(timeout: float) -> None:
    _tasks.drain(timeout)
