"""How many requests a worker serves at once, for threaded workers (config.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .config import Reader


def concurrency(env: Reader) -> tuple[int, int]:
    """``(threads, default MAX_IN_FLIGHT)``: WEB_THREADS threads, two of them kept
    free to answer probes and refusals."""
    threads = env.integer("WEB_THREADS", 8, minimum=3)
    return threads, threads - 2
