"""Reading a generated project's deployment artifacts the way their tools do.

No Docker engine or cluster runs here, so the artifacts are checked
statically: each file is parsed, the validators of its ecosystem run on it,
and the values that must agree across files are extracted for comparison.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .process import procfile as procfile_lines

BIN = Path(sys.executable).parent

# Kubernetes versions the manifests are validated against: the oldest minor
# the project still supports, and the newest that kubernetes-validate knows.
K8S_VERSIONS = ("1.35.0", "1.37.0")
OVERLAYS = ("staging", "production")


def tool(name: str) -> str:
    """A validator installed in the kit's environment (the `test` dependency group)."""
    path = BIN / name
    if not path.exists():
        raise AssertionError(f"{name} is not installed in {BIN}; run `uv sync` in the kit")
    return str(path)


def run(*command: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=120)


def actionlint(workflow: Path) -> subprocess.CompletedProcess[str]:
    """actionlint with ShellCheck on the ``run:`` scripts, as a developer's install has it."""
    return run(tool("actionlint"), "-no-color", "-shellcheck", tool("shellcheck"), str(workflow))


# --- Dockerfile -------------------------------------------------------------


@dataclass(frozen=True)
class Instruction:
    keyword: str
    arguments: str
    stage: int  # index of the FROM this instruction belongs to


def dockerfile(path: Path) -> list[Instruction]:
    """The Dockerfile's instructions, continuation lines joined, comments dropped."""
    instructions: list[Instruction] = []
    stage = -1
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):  # a comment inside a continued instruction
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = (pending + line).strip()
        pending = ""
        keyword, _, arguments = full.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            stage += 1
        instructions.append(Instruction(keyword, arguments.strip(), stage))
    return instructions


def image_python(path: Path) -> str:
    """The Python version a Dockerfile builds on: its global ``ARG PYTHON_VERSION``."""
    (version,) = [
        s.arguments.split("=", 1)[1]
        for s in dockerfile(path)
        if s.keyword == "ARG" and s.stage == -1 and s.arguments.startswith("PYTHON_VERSION=")
    ]
    return version


def env_pairs(arguments: str) -> dict[str, str]:
    """``ENV a=1 b="two"`` as a mapping."""
    pairs = {}
    for word in shlex.split(arguments):
        key, sep, value = word.partition("=")
        assert sep, f"ENV without '=' is deprecated: {arguments!r}"
        pairs[key] = value
    return pairs


def _glob_regex(pattern: str) -> str:
    """Go's filepath.Match syntax, plus ``**`` for any number of directories."""
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        elif pattern[i] == "[" and "]" in pattern[i + 1 :]:
            close = pattern.index("]", i + 1)
            body = pattern[i + 1 : close]
            out += "[" + ("^" + body[1:] if body.startswith(("!", "^")) else body) + "]"
            i = close + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return out


def dockerignored(patterns: list[str], relative: str) -> bool:
    """Whether Docker's build context leaves ``relative`` out.

    Written here because no maintained Python package implements
    .dockerignore's rules: globs, ``**``, ``!`` exceptions, the last matching
    pattern wins, and a pattern that matches a directory covers its contents.
    """
    excluded = False
    parts = relative.split("/")
    candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    for pattern in patterns:
        negate = pattern.startswith("!")
        regex = _glob_regex(pattern.removeprefix("!").strip("/"))
        if any(re.fullmatch(regex, candidate) for candidate in candidates):
            excluded = not negate
    return excluded


def dockerignore_patterns(path: Path) -> list[str]:
    lines = (line.strip() for line in path.read_text().splitlines())
    return [line for line in lines if line and not line.startswith("#")]


# --- Procfile and the service's own settings --------------------------------


def procfile(project: Path) -> dict[str, list[str]]:
    """The Procfile's commands as argument lists, as a container runs them."""
    return {name: shlex.split(command) for name, command in procfile_lines(project).items()}


def setting_defaults(runtime: Path) -> dict[str, Any]:
    """Defaults of the environment variables the runtime's settings read
    (config.py and what it calls): ``env.kind("NAME", default)``."""
    defaults: dict[str, Any] = {}
    trees = [ast.parse(path.read_text()) for path in sorted(runtime.glob("*.py"))]
    for node in (node for tree in trees for node in ast.walk(tree)):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and len(node.args) >= 2
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
            and isinstance(node.args[1], ast.Constant)
        ):
            defaults[node.args[0].value] = node.args[1].value
    return defaults


def module_constant(path: Path, name: str) -> Any:
    for node in ast.parse(path.read_text()).body:
        if (
            isinstance(node, ast.Assign)
            and any(isinstance(target, ast.Name) and target.id == name for target in node.targets)
            and isinstance(node.value, ast.Constant)
        ):
            return node.value.value
    raise AssertionError(f"{path.name} defines no constant {name}")


# --- YAML: compose, Kubernetes ------------------------------------------------


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def kustomize(overlay: Path) -> list[dict[str, Any]]:
    """``kubectl kustomize <overlay>``: the objects ``kubectl apply -k`` would send."""
    result = run(tool("kubectl"), "kustomize", str(overlay))
    assert result.returncode == 0, f"kustomize {overlay}:\n{result.stderr}"
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def one(objects: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = [obj for obj in objects if obj["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def seconds(value: str | int | float) -> float:
    """A compose duration (``35s``, ``1m30s``) or a number of seconds."""
    if isinstance(value, int | float):
        return float(value)
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001, "us": 1e-6}
    total, rest = 0.0, value
    for number, unit in re.findall(r"(\d+(?:\.\d+)?)(h|ms|us|m|s)", value):
        total += float(number) * units[unit]
        rest = rest.replace(number + unit, "", 1)
    assert not rest, f"not a duration: {value!r}"
    return total


def json_list(text: str) -> list[str]:
    value = json.loads(text)
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), text
    return value


# --- The image's build stage, replayed without Docker ---------------------------

_MOUNT = re.compile(r"--mount=(\S+)\s+")


def replay_build_stage(project: Path, workdir: Path, python: str) -> list[str]:
    """Run the Dockerfile's build stage on this machine; returns the commands run.

    Only what the build context would hold is used (.dockerignore applies),
    a RUN sees just its bind mounts until ``COPY . .`` has happened, and the
    stage's ENV applies. ``COPY --from`` brings uv, which is on PATH here.
    """
    steps = dockerfile(project / "Dockerfile")
    (stage,) = {s.stage for s in steps if s.keyword == "FROM" and s.arguments.endswith(" AS build")}
    patterns = dockerignore_patterns(project / ".dockerignore")
    context = [
        path
        for path in sorted(project.rglob("*"))
        if path.is_file() and not dockerignored(patterns, path.relative_to(project).as_posix())
    ]
    workdir.mkdir(parents=True)
    env = {**os.environ, "UV_PYTHON": python}
    for name in ("VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT"):
        env.pop(name, None)
    copied, ran = False, []
    for step in (s for s in steps if s.stage == stage):
        if step.keyword == "ENV":
            env.update(env_pairs(step.arguments))
        elif step.keyword == "COPY" and step.arguments == ". .":
            for path in context:
                target = workdir / path.relative_to(project)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, target)
            copied = True
        elif step.keyword == "RUN":
            mounts = _MOUNT.findall(step.arguments)
            command = _MOUNT.sub("", step.arguments)
            if not copied:
                for mount in mounts:
                    options = dict(option.split("=", 1) for option in mount.split(","))
                    if options["type"] == "bind":
                        shutil.copy2(project / options["source"], workdir / options["target"])
            result = subprocess.run(
                ["bash", "-c", command],
                cwd=workdir,
                env=env,
                capture_output=True,
                text=True,
                timeout=600,
            )
            assert result.returncode == 0, f"RUN {command}:\n{result.stdout}\n{result.stderr}"
            ran.append(command)
            if not copied:  # bind mounts are gone once the step ends
                for mount in mounts:
                    options = dict(option.split("=", 1) for option in mount.split(","))
                    if options["type"] == "bind":
                        (workdir / options["target"]).unlink()
    return ran
