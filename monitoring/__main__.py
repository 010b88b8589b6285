"""``python -m monitoring``: regenerate the committed dashboards, rules and README table.

``--check`` writes nothing and exits 1 when a committed file differs.
"""

from __future__ import annotations

import argparse
import sys

from .build import KIT_ROOT, generated_files


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m monitoring", description=__doc__)
    parser.add_argument("--check", action="store_true", help="only report stale files")
    args = parser.parse_args()
    stale = []
    for relative, text in generated_files().items():
        path = KIT_ROOT / relative
        if path.exists() and path.read_text(encoding="utf-8") == text:
            continue
        stale.append(relative)
        if not args.check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    for relative in stale:
        print(f"{'stale' if args.check else 'wrote'}: {relative}")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
