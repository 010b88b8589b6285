"""Finding an interpreter that satisfies a generated project's requires-python.

The tests pick among the interpreters installed here (pyenv's, those on PATH
and uv's own); they never let uv download one. The test bootstrap
(``python -m kit.system``) installs the image's Python with uv when it
is missing.
"""

from __future__ import annotations

import functools
import glob
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

from packaging.specifiers import SpecifierSet
from packaging.version import Version


def _uv_python_dir() -> str:
    """Where ``uv python install`` puts interpreters ("" without uv)."""
    uv = shutil.which("uv")
    if uv is None:
        return ""
    try:
        return subprocess.run(
            [uv, "python", "dir"], capture_output=True, text=True, timeout=20, check=True
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


@functools.cache
def _candidates() -> dict[Version, str]:
    paths: list[str] = []
    if os.environ.get("KIT_PYTHON"):
        paths.append(os.environ["KIT_PYTHON"])
    paths += sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.*/bin/python3")))
    paths += [p for n in range(11, 16) if (p := shutil.which(f"python3.{n}"))]
    if uv_pythons := _uv_python_dir():
        paths += sorted(glob.glob(os.path.join(uv_pythons, "cpython-3.*", "bin", "python3")))
    paths += [sys.executable]
    found: dict[Version, str] = {}
    for path in paths:
        try:
            out = subprocess.run(
                [path, "-c", "import platform; print(platform.python_version())"],
                capture_output=True,
                text=True,
                timeout=20,
                check=True,
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            continue
        found.setdefault(Version(out), str(Path(path).resolve()))
    return found


def installed_pythons() -> dict[Version, str]:
    """Every interpreter found here, by version."""
    return dict(_candidates())


def rescan() -> None:
    """Forget the interpreters found so far (one was just installed)."""
    _candidates.cache_clear()


def python_for(version: str) -> str | None:
    """An installed interpreter of ``version`` ("3.13"), or None."""
    wanted = Version(version)
    for found, path in sorted(_candidates().items(), reverse=True):
        if found.release[:2] == wanted.release[:2]:
            return path
    return None


def _allowed(project: Path) -> list[Version]:
    meta = tomllib.loads((project / "pyproject.toml").read_text())["project"]
    spec = SpecifierSet(meta["requires-python"])
    allowed = [v for v in _candidates() if v in spec]
    if not allowed:
        raise RuntimeError(
            f"no installed Python satisfies requires-python {spec} of {project.name}; "
            f"found {sorted(map(str, _candidates()))}. Set KIT_PYTHON to one that does."
        )
    return allowed


def newest_python() -> str:
    """The newest interpreter installed here (``KIT_PYTHON`` when set)."""
    if os.environ.get("KIT_PYTHON"):
        return os.environ["KIT_PYTHON"]
    return _candidates()[max(_candidates())]


def interpreter_for(project: Path) -> str:
    """The newest installed Python allowed by the project's requires-python."""
    if os.environ.get("KIT_PYTHON"):
        return os.environ["KIT_PYTHON"]
    return _candidates()[max(_allowed(project))]


def oldest_interpreter_for(project: Path) -> str:
    """The oldest installed Python allowed by the project's requires-python."""
    return _candidates()[min(_allowed(project))]


if __name__ == "__main__":  # `make demo`: the interpreter for a rendered project
    print(interpreter_for(Path(sys.argv[1])))
