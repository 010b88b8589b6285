"""The worker's readiness refresh (refresh.py): stopping it at the worker's exit
waits for a check under way, within READY_TIMEOUT and a second, before the
database closes, and ends an idle wait at once."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from types import ModuleType
from typing import Any

from . import runtime_module

Answer = tuple[dict[str, Any], int]  # readiness.Answer
readiness = runtime_module("readiness")


def checking(
    refresh: ModuleType, seconds: float, events: list[str]
) -> tuple[Callable[[], None], threading.Event]:
    """A refresh whose checks take ``seconds``; its stop, and an event set when a check begins."""
    started = threading.Event()

    def check() -> Answer:
        started.set()
        time.sleep(seconds)
        events.append("finished")
        answer: Answer = readiness.answer({"database": readiness.passed()})
        return answer

    stop: Callable[[], None] = refresh.keep_ready_current(check)
    return stop, started


def timed(stop: Callable[[], None]) -> float:
    began = time.monotonic()
    stop()
    return time.monotonic() - began


def test_stopping_waits_for_a_check_under_way(refresh: ModuleType) -> None:
    events: list[str] = []
    stop, started = checking(refresh, 0.3, events)
    assert started.wait(2)
    took = timed(stop)
    assert events == ["finished"]
    assert 0.2 < took < 1.0


def test_stopping_waits_no_longer_than_ready_timeout_and_a_second(refresh: ModuleType) -> None:
    events: list[str] = []
    stop, started = checking(refresh, 3, events)
    assert started.wait(2)
    took = timed(stop)
    assert events == []
    assert 1.1 < took < 2.5


def test_stopping_between_checks_ends_the_wait_at_once(refresh: ModuleType) -> None:
    events: list[str] = []
    stop, started = checking(refresh, 0, events)
    assert started.wait(2)
    time.sleep(0.1)  # the first check ended; the next is 10 s away
    assert timed(stop) < 0.1
    assert events == ["finished"]
