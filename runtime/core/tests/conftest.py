"""Fixtures the runtime's tests share."""

from __future__ import annotations

import math
from collections.abc import Iterator
from types import ModuleType

import pytest

from . import runtime_module
from .receiver import Receiver


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A receiver on 127.0.0.1 (``receiver.py``), closed after the test."""
    receiver = Receiver()
    yield receiver
    receiver.close()


@pytest.fixture
def refresh(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """The worker's readiness refresh (``refresh.py``) with no outcome yet, so
    its first check is due at once, and a ``READY_TIMEOUT`` of 0.2 s."""
    readiness = runtime_module("readiness")
    monkeypatch.setattr(readiness, "_checked_at", -math.inf)
    settings = runtime_module("config").Settings.from_env({"READY_TIMEOUT": "0.2"})
    monkeypatch.setattr(readiness, "get_settings", lambda: settings)
    return runtime_module("refresh")
