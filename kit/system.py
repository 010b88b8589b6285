"""System programs some test tiers need, installed with apt-get when missing,
and the container image's Python, installed with uv when missing.

``python -m kit.system`` runs before the suite (``make test``). Where a
program is missing and cannot be installed, the tiers that need it skip;
under ``CI=true`` (set by ``.ci/run``) they fail instead (see ``unavailable``).
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
from typing import NoReturn

import pytest

from .deploy import image_python
from .pythons import python_for, rescan
from .render import KIT_ROOT

# Debian package -> programs it provides.
PACKAGES: dict[str, tuple[str, ...]] = {
    "postgresql": ("initdb", "pg_ctl", "postgres"),
    "prometheus": ("prometheus", "promtool"),
    "wrk": ("wrk",),
    "valgrind": ("valgrind",),
}
# What the test suite needs; the benchmark asks for wrk (and valgrind) itself.
FOR_TESTS = ("postgresql", "prometheus")
# The generated projects' Dockerfile: the tests replay its build with its Python.
IMAGE_PYTHON = image_python(KIT_ROOT / "templates" / "_shared" / "deploy" / "Dockerfile")


def find(program: str) -> str | None:
    """A program on PATH, or in PostgreSQL's versioned bin directory."""
    found = shutil.which(program)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{program}"), reverse=True)
    return candidates[0] if candidates else None


def missing_packages(wanted: tuple[str, ...] = FOR_TESTS) -> list[str]:
    return [
        package for package in wanted if not all(find(program) for program in PACKAGES[package])
    ]


def install(packages: list[str], wanted: tuple[str, ...] = FOR_TESTS) -> bool:
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
    return not missing_packages(wanted)


def unavailable(message: str) -> NoReturn:
    """A test tier cannot run here: it skips, and under ``CI=true`` it fails."""
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def require(*programs: str) -> dict[str, str]:
    """Paths of ``programs``; skips the calling test when one is missing (fails in CI)."""
    paths = {program: find(program) for program in programs}
    absent = [program for program, path in paths.items() if path is None]
    if absent:
        unavailable(f"missing system programs: {', '.join(absent)} (run `make test` to install)")
    return {program: path for program, path in paths.items() if path}


def require_python(version: str) -> str:
    """An interpreter of Python ``version``; skips the calling test without one (fails in CI)."""
    path = python_for(version)
    if path is None:
        unavailable(f"Python {version} is not installed (run `make test` to install it)")
    return path


def install_python(version: str) -> bool:
    """``uv python install`` when no interpreter of ``version`` is installed here."""
    if python_for(version):
        return True
    uv = shutil.which("uv")
    if uv is None:
        print(f"uv not found; cannot install Python {version}", file=sys.stderr)
        return False
    print(f"installing Python {version} with uv", flush=True)
    if subprocess.run([uv, "python", "install", version], check=False).returncode != 0:
        return False
    rescan()
    return python_for(version) is not None


def main() -> int:
    wanted = tuple(sys.argv[1:]) or FOR_TESTS
    missing = missing_packages(wanted)
    ready = install(missing, wanted)
    if not ready:
        print(f"still missing: {', '.join(missing_packages(wanted))}", file=sys.stderr)
    if not sys.argv[1:] and not install_python(IMAGE_PYTHON):
        print(f"still missing: Python {IMAGE_PYTHON} (the image's)", file=sys.stderr)
        ready = False
    # Outside CI the tiers that need them skip; in CI that is a failure.
    return 1 if not ready and os.environ.get("CI") == "true" else 0


if __name__ == "__main__":
    sys.exit(main())
