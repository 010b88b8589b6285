"""The kit's runtime: everything the service does for every request and at every
stage of its life, apart from your own code (README.md, "Where things go").

It comes from the kit the project was generated from, and ``cruft update``
replaces it with a newer kit's; change it there, not here. Your code uses only
what this module names in ``__all__`` (and settings.py, the settings it
imports); nothing in here imports your code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .exports import lazy_exports

# Each name of the surface, and the module it comes from.
_WHERE = {
    "ConfigError": "config",
    "Settings": "config",
    "ValidationFailed": "handlers",
    "database_settings": "database",
    "deliver": "http_client",
    "get_logger": "logging",
    "get_settings": "config",
    "get_wsgi_application": "application",
    "http_client": "http_client",
    "problem": "errors",
    "read_json": "handlers",
    "spawn": "database",
}

__all__ = sorted(_WHERE)

if TYPE_CHECKING:
    from .application import get_wsgi_application as get_wsgi_application
    from .config import ConfigError as ConfigError
    from .config import Settings as Settings
    from .config import get_settings as get_settings
    from .database import database_settings as database_settings
    from .database import spawn as spawn
    from .errors import problem as problem
    from .handlers import ValidationFailed as ValidationFailed
    from .handlers import read_json as read_json
    from .http_client import deliver as deliver
    from .http_client import http_client as http_client
    from .logging import get_logger as get_logger


__getattr__ = lazy_exports(__name__, _WHERE)
