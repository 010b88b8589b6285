"""The kit's runtime: everything the service does for every request and at every
stage of its life, apart from your own code (README.md, "Where things go").

It comes from the kit the project was generated from, and ``cruft update``
replaces it with a newer kit's; change it there, not here. Your code uses only
what this module names in ``__all__``; nothing in here imports your code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .exports import lazy_exports

# Each name of the surface, and the module it comes from.
_WHERE = {
    "HttpClient": "app",
    "Session": "database",
    "Sessions": "database",
    "Settings": "config",
    "Tasks": "app",
    "create_app": "app",
    "deliver": "http_client",
    "get_logger": "logging",
    "get_settings": "config",
    "run_migrations": "migrations",
}

__all__ = sorted(_WHERE)

if TYPE_CHECKING:
    from .app import HttpClient as HttpClient
    from .app import Tasks as Tasks
    from .app import create_app as create_app
    from .config import Settings as Settings
    from .config import get_settings as get_settings
    from .database import Session as Session
    from .database import Sessions as Sessions
    from .http_client import deliver as deliver
    from .logging import get_logger as get_logger
    from .migrations import run_migrations as run_migrations


__getattr__ = lazy_exports(__name__, _WHERE)
