"""Where the kit is, for the hooks (``_extensions`` in cookiecutter.json).

This file is the template's own; the extension itself is the kit's one copy.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "hooks"))
from kit_paths import KitPaths  # noqa: E402

__all__ = ["KitPaths"]
