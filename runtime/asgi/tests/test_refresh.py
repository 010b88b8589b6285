"""The lifespan's readiness refresh (refresh.py): stopping it lets a check under
way finish, within READY_TIMEOUT and a second, and ends an idle wait at once."""

from __future__ import annotations

import asyncio
import time
from types import ModuleType
from typing import Any

from . import runtime_module

Answer = tuple[dict[str, Any], int]  # readiness.Answer
readiness = runtime_module("readiness")


def passed() -> Answer:
    answer: Answer = readiness.answer({"database": readiness.passed()})
    return answer


def stopped_during_a_check(refresh: ModuleType, seconds: float) -> tuple[list[str], float]:
    """What a check taking ``seconds`` went through when the refresh was stopped
    while it ran, and how long stopping took."""
    events: list[str] = []

    async def run() -> float:
        started = asyncio.Event()

        async def check() -> Answer:
            started.set()
            try:
                await asyncio.sleep(seconds)
            except asyncio.CancelledError:
                events.append("cancelled")
                raise
            events.append("finished")
            return passed()

        stop = refresh.keep_ready_current(check)
        await started.wait()
        began = time.monotonic()
        await stop()
        return time.monotonic() - began

    return events, asyncio.run(run())


def test_a_check_under_way_is_let_finish(refresh: ModuleType) -> None:
    events, took = stopped_during_a_check(refresh, 0.3)
    assert events == ["finished"]
    assert 0.25 < took < 1.0


def test_a_check_that_overruns_is_cancelled_after_ready_timeout_and_a_second(
    refresh: ModuleType,
) -> None:
    events, took = stopped_during_a_check(refresh, 10)
    assert events == ["cancelled"]
    assert 1.1 < took < 2.5


def test_stopping_between_checks_ends_the_wait_at_once(refresh: ModuleType) -> None:
    checks: list[float] = []

    async def run() -> float:
        async def check() -> Answer:
            checks.append(time.monotonic())
            return passed()

        stop = refresh.keep_ready_current(check)
        await asyncio.sleep(0.1)  # the first check ran; the next is 10 s away
        began = time.monotonic()
        await stop()
        return time.monotonic() - began

    assert asyncio.run(run()) < 0.1
    assert len(checks) == 1
