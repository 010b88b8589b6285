"""The gunicorn worker: uvicorn's HTTP protocol under gunicorn's supervision."""

from __future__ import annotations

import math
from typing import Any, ClassVar

from uvicorn_worker import UvicornWorker as _UvicornWorker

from .config import get_settings


class Worker(_UvicornWorker):  # type: ignore[misc]  # uvicorn-worker has no types
    CONFIG_KWARGS: ClassVar[dict[str, Any]] = {
        "loop": "auto",
        "http": "auto",
        "lifespan": "on",
        # The service writes its own access line (docs/contract.md, section 5).
        "access_log": False,
        "server_header": False,
    }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The stock worker ignores gunicorn's graceful_timeout: uvicorn would
        # wait for slow requests until gunicorn's SIGKILL, which skips the
        # lifespan shutdown that disposes the pool and exports the last spans.
        # gunicorn.py gives the master a margin beyond this.
        self.config.timeout_graceful_shutdown = math.ceil(get_settings().graceful_timeout)
