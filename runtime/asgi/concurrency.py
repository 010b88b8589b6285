"""How many requests a worker serves at once, for asyncio workers (config.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .config import Reader


def concurrency(env: Reader) -> tuple[int, int]:
    """``(threads, default MAX_IN_FLIGHT)``: one event loop per worker, no threads
    to size, so WEB_THREADS is not read."""
    return 0, 100
