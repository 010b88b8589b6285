"""Process lifecycle state shared by the gunicorn master and its workers.

The master receives SIGTERM; the workers answer ``/ready``. This module is
imported by ``gunicorn.conf.py`` in the master, so the one-byte anonymous
shared mapping below exists before the workers are forked and every worker
sees the flag flip at once, without a system call per probe.
"""

from __future__ import annotations

import mmap
from collections.abc import Callable

_draining = mmap.mmap(-1, 1)
_shutdown_callbacks: list[Callable[[], None]] = []


def begin_draining() -> None:
    _draining[0] = 1


def is_draining() -> bool:
    return _draining[0] == 1


def on_worker_exit(callback: Callable[[], None]) -> None:
    """Run ``callback`` when this worker stops (gunicorn's ``worker_exit``)."""
    _shutdown_callbacks.append(callback)


def run_worker_exit_callbacks() -> None:
    while _shutdown_callbacks:
        _shutdown_callbacks.pop()()
