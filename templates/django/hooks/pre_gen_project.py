"""Stop generation with a clear message when the answers cannot work."""

import sys

sys.path.insert(0, {{ (kit_root ~ "/hooks") | tojson }})
import kit_hooks  # noqa: E402  (the kit's one copy of the hook code)

kit_hooks.pre_gen(r"""{{ cookiecutter | tojson }}""")
