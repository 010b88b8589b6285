"""Jinja extension that tells the hooks where the kit is checked out.

Hooks run from a temporary copy, and cookiecutter's ``_repo_dir`` may be a
relative path (cookiecutter#1802), so neither can locate the shared files.
Each template's ``local_extensions.py`` (cookiecutter's ``_extensions``)
loads this module from the kit's ``hooks/``: its location is the kit's. No
symbolic links, so a checkout without them and the repository's zip archive
render alike.
"""

from __future__ import annotations

from pathlib import Path

from jinja2 import Environment
from jinja2.ext import Extension

KIT_ROOT = Path(__file__).resolve().parent.parent


class KitPaths(Extension):
    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        environment.globals["kit_root"] = str(KIT_ROOT)
