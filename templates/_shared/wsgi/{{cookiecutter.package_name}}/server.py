"""The gunicorn worker: gunicorn's threaded worker, adjusted for the
contract's shutdown (docs/contract.md, section 8)."""

from __future__ import annotations

import math

from gunicorn.workers.gthread import ThreadWorker as _ThreadWorker

from .config import get_settings


class ThreadWorker(_ThreadWorker):  # type: ignore[misc]  # gunicorn has no types
    def init_process(self) -> None:
        # Runs in the worker, after fork. gunicorn.conf.py gives the master
        # GRACEFUL_TIMEOUT plus a margin before its SIGKILL; the worker waits
        # only GRACEFUL_TIMEOUT for in-flight requests, so its clean-up
        # (worker_exit: pool, spans) always runs.
        self.cfg.set("graceful_timeout", math.ceil(get_settings().graceful_timeout))
        super().init_process()

    def set_accept_enabled(self, enabled: bool) -> None:
        super().set_accept_enabled(enabled)
        if not enabled and not self.alive:
            # Stopping: close this worker's copy of the listening socket too.
            # While any process holds it, connections that arrive during the
            # drain wait in the backlog and are reset when the worker exits;
            # once every copy is closed they are refused at once.
            for listener in self.sockets:
                listener.close()
