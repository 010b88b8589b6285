"""Add the files this project shares with the kit's other templates."""

import json
import sys
from pathlib import Path

sys.path.insert(0, {{ (kit_root ~ "/hooks") | tojson }})

from kit_hooks import install_shared  # noqa: E402

CONTEXT = json.loads(r"""{{ cookiecutter | tojson }}""")

install_shared(CONTEXT, Path({{ kit_root | tojson }}), Path.cwd())
