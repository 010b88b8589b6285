"""The worker's readiness refresh (refresh.py): stopping it at the worker's exit
waits for a check under way, within READY_TIMEOUT and a second, before the
database closes, and ends an idle wait at once."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from . import runtime_module

Answer = tuple[dict[str, Any], int]  # readiness.Answer
refresh, readiness, config = (
    runtime_module("refresh"),
    runtime_module("readiness"),
    runtime_module("config"),
)


@pytest.fixture(autouse=True)
def fresh_outcome(monkeypatch: pytest.MonkeyPatch) -> None:
    """No outcome yet, so the first check is due at once; READY_TIMEOUT 0.2 s."""
    monkeypatch.setattr(readiness, "_checked_at", -math.inf)
    settings = config.Settings.from_env({"READY_TIMEOUT": "0.2"})
    monkeypatch.setattr(refresh, "get_settings", lambda: settings)


def checking(seconds: float, events: list[str]) -> tuple[Callable[[], None], threading.Event]:
    """A refresh whose checks take ``seconds``; its stop, and an event set when a check begins."""
    started = threading.Event()

    def check() -> Answer:
        started.set()
        time.sleep(seconds)
        events.append("finished")
        answer: Answer = readiness.answer({"database": readiness.passed()})
        return answer

    return refresh.keep_ready_current(check), started


def timed(stop: Callable[[], None]) -> float:
    began = time.monotonic()
    stop()
    return time.monotonic() - began


def test_stopping_waits_for_a_check_under_way() -> None:
    events: list[str] = []
    stop, started = checking(0.3, events)
    assert started.wait(2)
    took = timed(stop)
    assert events == ["finished"]
    assert 0.2 < took < 1.0


def test_stopping_waits_no_longer_than_ready_timeout_and_a_second() -> None:
    events: list[str] = []
    stop, started = checking(3, events)
    assert started.wait(2)
    took = timed(stop)
    assert events == []
    assert 1.1 < took < 2.5


def test_stopping_between_checks_ends_the_wait_at_once() -> None:
    events: list[str] = []
    stop, started = checking(0, events)
    assert started.wait(2)
    time.sleep(0.1)  # the first check ended; the next is 10 s away
    assert timed(stop) < 0.1
    assert events == ["finished"]
