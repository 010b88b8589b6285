"""System programs some test tiers need, installed with apt-get when missing.

``python -m tests.kit.system`` runs before the suite (``make test``). Where a
program is missing and cannot be installed, the tiers that need it skip;
under ``CI=true`` they fail instead (see ``require``).
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys

import pytest

# Debian package -> programs it provides.
PACKAGES: dict[str, tuple[str, ...]] = {
    "postgresql": ("initdb", "pg_ctl", "postgres"),
    "prometheus": ("prometheus", "promtool"),
}


def find(program: str) -> str | None:
    """A program on PATH, or in PostgreSQL's versioned bin directory."""
    found = shutil.which(program)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{program}"), reverse=True)
    return candidates[0] if candidates else None


def missing_packages() -> list[str]:
    return [
        package
        for package, programs in PACKAGES.items()
        if not all(find(program) for program in programs)
    ]


def install(packages: list[str]) -> bool:
    if not packages:
        return True
    apt = shutil.which("apt-get")
    if apt is None:
        print(f"apt-get not found; cannot install {', '.join(packages)}", file=sys.stderr)
        return False
    sudo = [] if os.geteuid() == 0 else (["sudo", "-n"] if shutil.which("sudo") else None)
    if sudo is None:
        print(f"not root and no sudo; cannot install {', '.join(packages)}", file=sys.stderr)
        return False
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    print(f"installing {', '.join(packages)} with apt-get", flush=True)
    for command in (
        [*sudo, apt, "-qq", "update"],
        [*sudo, apt, "-qq", "install", "-y", "--no-install-recommends", *packages],
    ):
        if subprocess.run(command, env=env, check=False).returncode != 0:
            return False
    return not missing_packages()


def require(*programs: str) -> dict[str, str]:
    """Paths of ``programs``; skips the calling test when one is missing (fails in CI)."""
    paths = {program: find(program) for program in programs}
    absent = [program for program, path in paths.items() if path is None]
    if absent:
        message = f"missing system programs: {', '.join(absent)} (run `make test` to install)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return {program: path for program, path in paths.items() if path}


def main() -> int:
    missing = missing_packages()
    if install(missing):
        return 0
    still = missing_packages()
    print(f"still missing: {', '.join(still)}", file=sys.stderr)
    # Outside CI the tiers that need them skip; in CI that is a failure.
    return 1 if os.environ.get("CI") == "true" else 0


if __name__ == "__main__":
    sys.exit(main())
