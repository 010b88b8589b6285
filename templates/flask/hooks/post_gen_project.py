"""Add what this project shares with the kit's other templates: the runtime,
the shared files and the observability assets."""

import sys

sys.path.insert(0, {{ (kit_root ~ "/hooks") | tojson }})
import kit_hooks  # noqa: E402  (the kit's one copy of the hook code)

kit_hooks.post_gen(r"""{{ cookiecutter | tojson }}""")
