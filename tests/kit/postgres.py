"""A private PostgreSQL server for the tests: its own data directory, a free
port on 127.0.0.1, a Unix socket in its own directory; stopped and started
at will to play a database outage."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

from .project import free_port
from .system import require

USER = "kit"
PASSWORD = "kit-password"


class Postgres:
    def __init__(self) -> None:
        self.bin = {name: require(name)[name] for name in ("initdb", "pg_ctl")}
        self.root = Path(tempfile.mkdtemp(prefix="kit-postgres-"))
        self.data = self.root / "data"
        self.port = free_port()
        # initdb refuses to run as root: hand the directory to the postgres user.
        self.owner = pwd.getpwnam("postgres") if os.geteuid() == 0 else None
        if self.owner is not None:
            os.chown(self.root, self.owner.pw_uid, self.owner.pw_gid)
        password_file = self.root / "password"
        password_file.write_text(PASSWORD)
        if self.owner is not None:
            os.chown(password_file, self.owner.pw_uid, self.owner.pw_gid)
        self._run(
            self.bin["initdb"],
            "-D",
            str(self.data),
            "-U",
            USER,
            "--pwfile",
            str(password_file),
            "--auth",
            "scram-sha-256",
            "--no-sync",
        )
        self.start()

    def _run(self, *command: str) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if self.owner is not None else []
        subprocess.run(
            [*prefix, *command], check=True, capture_output=True, timeout=120, cwd=self.root
        )

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{USER}:{PASSWORD}@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} -c fsync=off "
            "-c max_connections=60"
        )
        self._run(
            self.bin["pg_ctl"], "-D", str(self.data), "-o", options, "-l", "log", "-w", "start"
        )

    def stop(self) -> None:
        """A fast shutdown: the server closes every connection, as a crash or failover does."""
        self._run(self.bin["pg_ctl"], "-D", str(self.data), "-m", "fast", "-w", "stop")

    def close(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):  # already stopped
            self.stop()
        shutil.rmtree(self.root, ignore_errors=True)
