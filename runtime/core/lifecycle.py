"""Whether the service is stopping, shared by the gunicorn master and its workers.

The master receives SIGTERM; the workers answer ``/ready``. This module is
imported by the gunicorn configuration (``gunicorn.py``) in the master, so
the one-byte anonymous shared mapping below exists before the workers are
forked and every worker sees the flag flip at once, without a system call
per probe.
"""

from __future__ import annotations

import mmap

_draining = mmap.mmap(-1, 1)


def begin_draining() -> None:
    _draining[0] = 1


def is_draining() -> bool:
    return _draining[0] == 1
