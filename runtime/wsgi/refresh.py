"""Readiness kept current in a threaded worker (readiness.py): a daemon thread
runs the readiness check whenever it is due."""

from __future__ import annotations

import threading
from collections.abc import Callable

from .logging import get_logger
from .readiness import REFRESH_SECONDS, Answer, due_in, stop_within

log = get_logger(__name__)


def keep_ready_current(check: Callable[[], Answer]) -> Callable[[], None]:
    """Run ``check`` (what ``/ready`` runs) whenever the outcome is due, in a
    thread of its own; returns what stops it (at the worker's exit, before the
    database closes). A check under way then is let finish, within
    ``READY_TIMEOUT`` and a second, so the pool is not closed under it."""
    stopped = threading.Event()

    def run() -> None:
        while not stopped.wait(max(due_in(), 0.0)):
            if due_in() > 0:
                continue
            try:
                check()
            except Exception:  # the checks report their own failures; this is a bug
                log.exception("readiness refresh failed")
                stopped.wait(REFRESH_SECONDS)

    thread = threading.Thread(target=run, name="readiness-refresh", daemon=True)
    thread.start()

    def stop() -> None:
        stopped.set()
        thread.join(stop_within())

    return stop
