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
    "Settings": "config",
    "ValidationFailed": "handlers",
    "get_logger": "logging",
    "get_session": "database",
    "get_sessions": "database",
    "deliver": "http_client",
    "get_settings": "config",
    "http_client": "http_client",
    "init_app": "app",
    "problem": "errors",
    "run_migrations": "migrations",
    "spawn": "tasks",
}

__all__ = sorted(_WHERE)

if TYPE_CHECKING:
    from .app import init_app as init_app
    from .config import Settings as Settings
    from .config import get_settings as get_settings
    from .database import get_session as get_session
    from .database import get_sessions as get_sessions
    from .errors import problem as problem
    from .handlers import ValidationFailed as ValidationFailed
    from .http_client import deliver as deliver
    from .http_client import http_client as http_client
    from .logging import get_logger as get_logger
    from .migrations import run_migrations as run_migrations
    from .tasks import spawn as spawn


__getattr__ = lazy_exports(__name__, _WHERE)
