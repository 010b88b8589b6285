"""A private PostgreSQL server for one test session, started from the server binaries.

Never a shared server: ``initdb`` in a temporary directory, a free port on
127.0.0.1, trust authentication, and durability switched off (tests do not
survive power loss; they only need speed). PostgreSQL refuses to run as
root, so as root the server runs as the ``postgres`` system user.

Standard library and psycopg only: the kit's tests use this module, and
every generated project carries a verbatim copy (``tests/resilience/``).
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import psycopg

PROGRAMS = ("initdb", "pg_ctl", "postgres")


class PostgresUnavailable(RuntimeError):
    """The PostgreSQL server programs are not installed here."""


def server_programs() -> dict[str, str]:
    """Paths of initdb, pg_ctl and postgres: on PATH, or in Debian's versioned directory."""
    found = {}
    for program in PROGRAMS:
        path = shutil.which(program) or next(
            iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{program}"), reverse=True)), None
        )
        if path is None:
            raise PostgresUnavailable(
                f"{program} not found: install the PostgreSQL server (apt-get install postgresql)"
            )
        found[program] = path
    return found


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PostgresServer:
    def __init__(self) -> None:
        self.bin = server_programs()
        # Not under pytest's base temp: that is private to root, and the server
        # may run as another user. /tmp itself is traversable by everyone.
        base = Path(tempfile.mkdtemp(prefix="kit-postgres-"))
        self.base = base
        self.data = base / "data"
        self.socket_dir = base / "socket"
        self.log = base / "postgres.log"
        self.port = _free_port()
        self._user = self._run_as()
        self.socket_dir.mkdir()
        if self._user is not None:
            for path in (base, self.socket_dir):
                os.chown(path, self._user.pw_uid, self._user.pw_gid)
        self._pg(
            self.bin["initdb"],
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=trust",
            "--encoding=UTF8",
            "--no-sync",
            "--no-instructions",
        )
        self.start()

    @staticmethod
    def _run_as() -> pwd.struct_passwd | None:
        if os.geteuid() != 0:
            return None
        for name in ("postgres", "nobody"):
            try:
                return pwd.getpwnam(name)
            except KeyError:
                continue
        raise RuntimeError("running as root and no 'postgres' or 'nobody' user to run PostgreSQL")

    def _pg(self, *command: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        user = self._user.pw_name if self._user else None
        result = subprocess.run(
            command,
            user=user,
            cwd=self.base,
            capture_output=True,
            text=True,
            timeout=timeout,
            env={"PATH": os.environ.get("PATH", ""), "LC_ALL": "C.UTF-8"},
        )
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}")
        return result

    @property
    def options(self) -> str:
        return " ".join(
            [
                f"-p {self.port}",
                "-c listen_addresses=127.0.0.1",
                f"-c unix_socket_directories={self.socket_dir}",
                "-c fsync=off",
                "-c synchronous_commit=off",
                "-c full_page_writes=off",
                "-c max_connections=200",
                "-c log_min_messages=warning",
                # Errors are logged with their SQLSTATE (57014: cancelled by statement_timeout).
                "-c log_error_verbosity=verbose",
            ]
        )

    def start(self) -> None:
        self._pg(
            self.bin["pg_ctl"],
            "-D",
            str(self.data),
            "-l",
            str(self.log),
            "-o",
            self.options,
            "-w",
            "-t",
            "60",
            "start",
        )

    def stop(self) -> None:
        self._pg(self.bin["pg_ctl"], "-D", str(self.data), "-m", "fast", "-w", "stop")

    def restart(self) -> None:
        """A real restart: every connection is terminated, then the server comes back."""
        self._pg(
            self.bin["pg_ctl"],
            "-D",
            str(self.data),
            "-l",
            str(self.log),
            "-o",
            self.options,
            "-m",
            "fast",
            "-w",
            "-t",
            "60",
            "restart",
        )

    def url(self, database: str = "postgres", port: int | None = None) -> str:
        return f"postgresql://postgres@127.0.0.1:{port or self.port}/{database}"

    def connect(self, database: str = "postgres") -> psycopg.Connection:
        return psycopg.connect(self.url(database), autocommit=True, connect_timeout=5)

    def create_database(self, name: str) -> str:
        with self.connect() as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def wait_until_accepting(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with self.connect():
                    return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def log_text(self) -> str:
        """The server's log so far."""
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def connections(self, database: str) -> int:
        """Client backends currently connected to ``database``."""
        with self.connect() as connection:
            row = connection.execute(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = %s AND backend_type = 'client backend'",
                (database,),
            ).fetchone()
        return int(row[0]) if row else 0

    def sampling(self, database: str) -> ConnectionSampler:
        """``with server.sampling(db) as sampled:``: ``sampled.peak`` is the most
        connections to ``db`` seen (every 50 ms) while the block ran."""
        return ConnectionSampler(self, database)

    def close(self) -> None:
        with contextlib.suppress(RuntimeError, subprocess.SubprocessError):
            self.stop()
        shutil.rmtree(self.base, ignore_errors=True)


class ConnectionSampler:
    def __init__(self, server: PostgresServer, database: str) -> None:
        self.server, self.database = server, database
        self.peak = 0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._done.is_set():
            self.peak = max(self.peak, self.server.connections(self.database))
            time.sleep(0.05)

    def __enter__(self) -> ConnectionSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()
