"""Stop generation with a clear message when the answers cannot work."""

import json
import sys

sys.path.insert(0, {{ (kit_root ~ "/hooks") | tojson }})

from kit_hooks import validate  # noqa: E402

CONTEXT = json.loads(r"""{{ cookiecutter | tojson }}""")

sys.exit(validate(CONTEXT))
