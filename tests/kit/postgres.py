"""A private PostgreSQL server from the system's binaries, on a free loopback port.

PostgreSQL refuses to run as root, so under root (CI here) the cluster
belongs to the ``postgres`` user that Debian's package creates.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .project import free_port
from .system import require

USER = "app"


def _as_owner(command: list[str], owner: pwd.struct_passwd | None) -> list[str]:
    if owner is None:
        return command
    return ["runuser", "-u", owner.pw_name, "--", *command]


@contextmanager
def postgres_server() -> Iterator[str]:
    """Start a throw-away cluster; yields its URL (user ``app``, database ``app``)."""
    programs = require("initdb", "pg_ctl", "createdb")
    owner = pwd.getpwnam("postgres") if os.geteuid() == 0 else None
    # Not under pytest's tmp_path: its root-only parents would hide the cluster from its owner.
    root = Path(tempfile.mkdtemp(prefix="kit-postgres-"))
    if owner is not None:
        os.chown(root, owner.pw_uid, owner.pw_gid)
    data, port = root / "data", free_port()

    def run(*command: str) -> None:
        result = subprocess.run(
            _as_owner(list(command), owner), capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 0, f"{command[0]}:\n{result.stdout}\n{result.stderr}"

    try:
        run(programs["initdb"], "-D", str(data), "-U", USER, "--auth=trust", "--no-sync")
        options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
        log = str(root / "log")
        run(programs["pg_ctl"], "-D", str(data), "-o", options, "-l", log, "-w", "start")
        try:
            run(programs["createdb"], "-h", "127.0.0.1", "-p", str(port), "-U", USER, USER)
            yield f"postgresql://{USER}@127.0.0.1:{port}/{USER}"
        finally:
            run(programs["pg_ctl"], "-D", str(data), "-m", "fast", "-w", "stop")
    finally:
        shutil.rmtree(root, ignore_errors=True)
