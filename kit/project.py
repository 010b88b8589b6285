"""A generated project, installed with uv, and its processes started from the Procfile."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from . import process
from .deploy import dockerfile
from .process import free_port, procfile, start_web
from .pythons import interpreter_for
from .update import UserEdit

if TYPE_CHECKING:
    from .otlp import OtlpSink

__all__ = ["RUN_TIMEOUT", "Project", "Service", "free_port", "procfile"]

# Seconds a command run in a project may take unless its caller says otherwise.
RUN_TIMEOUT = 300

# Set by the test session (tests/conftest.py): where the renders' mypy caches go.
MYPY_CACHES = "KIT_MYPY_CACHES"
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


def compile_project(path: Path) -> None:
    """The project's own code compiled to bytecode by the image build's step
    that does it (the Dockerfile's ``compileall`` line), run in place."""
    (command,) = (
        step.arguments
        for step in dockerfile(path / "Dockerfile")
        if step.keyword == "RUN" and "compileall" in step.arguments
    )
    subprocess.run(["bash", "-c", command], cwd=path, check=True, timeout=300)


@dataclass
class Project:
    """A rendered project with its own virtualenv (``.venv``, made by ``uv sync``)."""

    framework: str
    path: Path
    # How it came to be, when it was updated from an older kit (kit/update.py).
    user_edits: list[UserEdit] = field(default_factory=list)
    update_report: str = ""

    @property
    def package(self) -> str:
        return self.path.name.replace("-", "_")

    @property
    def bin(self) -> Path:
        return self.path / ".venv" / "bin"

    def install(self, locked: bool = False, dev: bool = True) -> None:
        """``uv sync``; ``locked``, from the project's uv.lock as it is (stale fails);
        without ``dev``, what the service runs on alone (the bench: 5.5 s against 9).

        Compiled to bytecode as the image's build does (UV_COMPILE_BYTECODE, then
        the project's own code): with PYTHONDONTWRITEBYTECODE set, every boot
        would compile every import again (a Django worker's imports took 2.5-2.9
        s instead of 0.9-1.2 s)."""
        python = interpreter_for(self.path)
        env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never"}
        env.pop("VIRTUAL_ENV", None)
        subprocess.run(
            [
                "uv",
                "sync",
                "--python",
                python,
                "--quiet",
                "--compile-bytecode",
                *(["--locked"] if locked else []),
                *([] if dev else ["--no-dev"]),
            ],
            cwd=self.path,
            env=env,
            check=True,
            timeout=600,
        )
        compile_project(self.path)

    def env(self, **overrides: str) -> dict[str, str]:
        env = {
            key: value
            for key, value in os.environ.items()
            if key not in _LEAKY and not key.startswith(_LEAKY_PREFIXES)
        }
        env["PATH"] = f"{self.bin}{os.pathsep}{env.get('PATH', '')}"
        env["VIRTUAL_ENV"] = str(self.path / ".venv")
        if MYPY_CACHES in env:
            # One cache per framework for every render the tests check: mypy
            # takes a module's cached result only when its source hashes alike
            # (other renders and environments included) and checks the rest, so
            # a planted fault is still found; a Django render's cold check is 12 s
            # of CPU, a warm one 1.3.
            env["MYPY_CACHE_DIR"] = os.path.join(env[MYPY_CACHES], self.framework)
        env.update(overrides)
        return env

    def run(
        self, command: str | list[str], timeout: float = RUN_TIMEOUT, **env: str
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
        result = self.run(procfile(self.path)["release"], timeout=RUN_TIMEOUT, **env)
        assert result.returncode == 0, f"release failed:\n{result.stdout}\n{result.stderr}"
        return result

    def start(self, workdir: Path, **env: str) -> Service:
        """Start the Procfile's web process on a free port; returns once it listens."""
        service = start_web(self.path, workdir, self.env(**env), cls=Service, project=self)
        assert isinstance(service, Service)
        return service


class Service(process.Service):
    """A running web process of a generated project, with an HTTP client."""

    sink: OtlpSink | None  # where the process exports its spans, once the tests set it

    @property
    def spans(self) -> OtlpSink:
        """The sink of the process's spans; a service booted without one fails here."""
        assert self.sink is not None, "this service exports its spans nowhere"
        return self.sink

    def client(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, timeout=kwargs.pop("timeout", 10.0), **kwargs)

    @contextlib.contextmanager
    def items_table_dropped(self) -> Iterator[None]:
        """A bug, for as long as the block runs: the code finds a schema it does
        not expect (its SQLite database has no ``items`` table)."""
        database = Path(self.env["DATABASE_URL"].removeprefix("sqlite:///"))
        with sqlite3.connect(database) as connection:
            (schema,) = connection.execute(
                "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'items'"
            ).fetchone()
            connection.execute("DROP TABLE items")
        try:
            yield
        finally:
            with sqlite3.connect(database) as connection:
                connection.execute(schema)


@dataclass
class Held:
    """Requests kept in flight by the service's own database (``Service.hold``)."""

    responses: list[httpx.Response] = field(default_factory=list)


def _post_item(service: Service, name: str, headers: dict[str, str], held: Held) -> None:
    with service.client(timeout=60.0) as client:
        held.responses.append(client.post("/api/items", json={"name": name}, headers=headers))


@contextlib.contextmanager
def database_locked(service: Service) -> Iterator[None]:
    """Writes wait, for as long as the block runs: another connection holds the
    SQLite database's write lock (they get it, or a 503, within DB_STATEMENT_TIMEOUT)."""
    database = Path(service.env["DATABASE_URL"].removeprefix("sqlite:///"))
    connection = sqlite3.connect(database, isolation_level=None)
    try:
        connection.execute("BEGIN EXCLUSIVE")
        yield
    finally:
        connection.execute("ROLLBACK")
        connection.close()


@contextlib.contextmanager
def requests_in_flight(
    service: Service, count: int, settle: float = 0.5, headers: dict[str, str] | None = None
) -> Iterator[Held]:
    """``count`` item creations that the service is serving for as long as the
    block runs: they wait for its database (``database_locked``), and finish
    (201) when the block ends. A slow upload would not do: a threaded worker
    serves a request only once its body has arrived."""
    held = Held()
    # The service's first connection puts the database in WAL mode, where the
    # lock below keeps writers waiting but not readers (readiness checks).
    # The warm-up goes where the held requests go (their Host), not under
    # their request id: tests count the held requests' access lines.
    warm_up = {k: v for k, v in (headers or {}).items() if k.lower() == "host"}
    with service.client(headers=warm_up) as client:
        assert client.get("/api/items").status_code == 200
    threads = [
        threading.Thread(
            target=_post_item,
            args=(service, f"in flight {n}", dict(headers or {}), held),
            daemon=True,
        )
        for n in range(count)
    ]
    with database_locked(service):
        for thread in threads:
            thread.start()
        time.sleep(settle)
        yield held
    for thread in threads:
        thread.join(60)


def iter_json_lines(text: str) -> Iterator[dict[str, Any]]:
    for line in text.splitlines():
        if line.strip():
            yield json.loads(line)
