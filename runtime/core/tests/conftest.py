"""Fixtures the runtime's tests share."""

from __future__ import annotations

import math
from types import ModuleType

import pytest

from . import runtime_module


@pytest.fixture
def refresh(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """The worker's readiness refresh (``refresh.py``) with no outcome yet, so
    its first check is due at once, and a ``READY_TIMEOUT`` of 0.2 s."""
    monkeypatch.setattr(runtime_module("readiness"), "_checked_at", -math.inf)
    settings = runtime_module("config").Settings.from_env({"READY_TIMEOUT": "0.2"})
    module = runtime_module("refresh")
    monkeypatch.setattr(module, "get_settings", lambda: settings)
    return module
