"""A generated project, installed with uv, and its processes started from the Procfile."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from .pythons import interpreter_for

# Variables of the test runner's environment that must not leak into a service.
_LEAKY_PREFIXES = ("OTEL_", "PROMETHEUS_", "DJANGO_", "FLASK_", "GUNICORN_", "UVICORN_")
_LEAKY = {
    "DATABASE_URL",
    "PORT",
    "LOG_LEVEL",
    "LOG_FORMAT",
    "WEB_CONCURRENCY",
    "VIRTUAL_ENV",
    "PYTHONPATH",
    "ENVIRONMENT",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def procfile(project: Path) -> dict[str, str]:
    processes = {}
    for line in (project / "Procfile").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, command = line.partition(":")
            processes[name.strip()] = command.strip()
    return processes


@dataclass
class Project:
    """A rendered project with its own virtualenv (``.venv``, made by ``uv sync``)."""

    framework: str
    path: Path

    @property
    def package(self) -> str:
        return self.path.name.replace("-", "_")

    @property
    def bin(self) -> Path:
        return self.path / ".venv" / "bin"

    def install(self) -> None:
        python = interpreter_for(self.path)
        env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never"}
        env.pop("VIRTUAL_ENV", None)
        subprocess.run(
            ["uv", "sync", "--python", python, "--quiet"],
            cwd=self.path,
            env=env,
            check=True,
            timeout=600,
        )

    def env(self, **overrides: str) -> dict[str, str]:
        env = {
            key: value
            for key, value in os.environ.items()
            if key not in _LEAKY and not key.startswith(_LEAKY_PREFIXES)
        }
        env["PATH"] = f"{self.bin}{os.pathsep}{env.get('PATH', '')}"
        env["VIRTUAL_ENV"] = str(self.path / ".venv")
        env.update(overrides)
        return env

    def run(
        self, command: str | list[str], timeout: float = 300, **env: str
    ) -> subprocess.CompletedProcess[str]:
        """Run a command in the project's directory and environment.

        A string goes through the shell, as a Procfile line does.
        """
        return subprocess.run(
            command,
            shell=isinstance(command, str),
            cwd=self.path,
            env=self.env(**env),
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def release(self, **env: str) -> subprocess.CompletedProcess[str]:
        result = self.run(procfile(self.path)["release"], **env)
        assert result.returncode == 0, f"release failed:\n{result.stdout}\n{result.stderr}"
        return result

    def start(self, workdir: Path, **env: str) -> Service:
        """Start the Procfile's web process on a free port; returns once it listens."""
        workdir.mkdir(parents=True, exist_ok=True)
        port = free_port()
        env = {"PORT": str(port), **env}
        stdout = open(workdir / "stdout.log", "wb")  # noqa: SIM115 - owned by the Service
        stderr = open(workdir / "stderr.log", "wb")  # noqa: SIM115
        process = subprocess.Popen(
            ["bash", "-c", "exec " + procfile(self.path)["web"]],
            cwd=self.path,
            env=self.env(**env),
            stdout=stdout,
            stderr=stderr,
            start_new_session=True,
        )
        service = Service(self, process, port, workdir, env, [stdout, stderr])
        service.wait_until_up()
        return service


@dataclass
class Service:
    """A running web process."""

    project: Project
    process: subprocess.Popen[bytes]
    port: int
    workdir: Path
    env: dict[str, str]
    _files: list[Any] = field(repr=False)
    sink: Any = None  # the OtlpSink the service exports to, when the tests gave it one

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, timeout=kwargs.pop("timeout", 10.0), **kwargs)

    def wait_until_up(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(
                    f"web process exited with {self.process.returncode}:\n{self.output()}"
                )
            try:
                if httpx.get(self.base_url + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.kill()
        raise AssertionError(f"web process not up within {timeout}s:\n{self.output()}")

    # --- output -------------------------------------------------------------

    def stdout_text(self) -> str:
        for handle in self._files:
            handle.flush()
        return (self.workdir / "stdout.log").read_text(errors="replace")

    def stderr_text(self) -> str:
        for handle in self._files:
            handle.flush()
        return (self.workdir / "stderr.log").read_text(errors="replace")

    def output(self) -> str:
        stdout, stderr = self.stdout_text()[-8000:], self.stderr_text()[-8000:]
        return f"--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}"

    def log_lines(self) -> list[dict[str, Any]]:
        """Every stdout line, parsed; a line that is not a JSON object fails the test."""
        records = []
        for number, line in enumerate(self.stdout_text().splitlines(), 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                raise AssertionError(f"stdout line {number} is not JSON: {line!r}") from None
            assert isinstance(record, dict), f"stdout line {number} is not an object: {line!r}"
            records.append(record)
        return records

    def wait_for_log(
        self, predicate: Callable[[dict[str, Any]], bool], count: int = 1, timeout: float = 10.0
    ) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while True:
            found = [record for record in self.log_lines() if predicate(record)]
            if len(found) >= count or time.monotonic() > deadline:
                assert len(found) >= count, (
                    f"expected {count} matching log line(s) within {timeout}s, got {len(found)}"
                )
                return found
            time.sleep(0.05)

    # --- lifecycle ----------------------------------------------------------

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def wait(self, timeout: float) -> int:
        return self.process.wait(timeout=timeout)

    def kill(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        for handle in self._files:
            handle.close()

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM, then wait for the exit status (SIGKILL if it does not come)."""
        if self.process.poll() is None:
            self.signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                raise
        status = self.process.returncode
        self.kill()
        return status


def iter_json_lines(text: str) -> Iterator[dict[str, Any]]:
    for line in text.splitlines():
        if line.strip():
            yield json.loads(line)
