"""A service's web process, started from its Procfile on a free port.

Standard library only: the kit's tests use this module, and every generated
project carries a verbatim copy (``tests/resilience/``) for its own tests.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def procfile(project: Path) -> dict[str, str]:
    """The Procfile's processes, by name (``web``, ``release``)."""
    processes = {}
    for line in (project / "Procfile").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, command = line.partition(":")
            processes[name.strip()] = command.strip()
    return processes


def get(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    """Status and body of a GET, whatever the status; raises OSError when unreachable."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return int(response.status), bytes(response.read())
    except urllib.error.HTTPError as error:
        return int(error.code), bytes(error.read())


def failure(error: BaseException) -> str:
    """What kind of failure a request met: refused, reset, timeout (or the error's name)."""
    reason = getattr(error, "reason", error)
    if isinstance(reason, ConnectionRefusedError):
        return "refused"
    if isinstance(
        reason, ConnectionResetError | ConnectionAbortedError | http.client.HTTPException
    ):
        return "reset"
    if isinstance(reason, TimeoutError):
        return "timeout"
    return type(reason).__name__


def start_web(directory: Path, workdir: Path, env: dict[str, str], **service: Any) -> Service:
    """Run the Procfile's ``web`` command in the project ``directory`` with ``env``
    (``PORT`` set to a free port); return once ``/healthz`` answers.

    Its temporary files (TMPDIR) go in ``workdir``: a master that is killed
    (SIGKILL) leaves its private metrics directory behind.
    """
    temporary = workdir / "tmp"
    temporary.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = {**env, "TMPDIR": str(temporary), "PORT": str(port)}
    stdout = (workdir / "stdout.log").open("wb")
    stderr = (workdir / "stderr.log").open("wb")
    process = subprocess.Popen(
        ["bash", "-c", "exec " + procfile(directory)["web"]],
        cwd=directory,
        env=env,
        stdout=stdout,
        stderr=stderr,
        start_new_session=True,
    )
    cls = service.pop("cls", Service)
    started: Service = cls(
        process=process, port=port, workdir=workdir, env=env, files=[stdout, stderr], **service
    )
    started.wait_until_up()
    return started


@dataclass
class Service:
    """A running web process, its port and its output."""

    process: subprocess.Popen[bytes]
    port: int
    workdir: Path
    env: dict[str, str]
    files: list[IO[bytes]] = field(repr=False)
    project: Any = None
    sink: Any = None
    # What log_lines has parsed: the records of the whole lines up to ``_parsed_to``
    # bytes. A shared service's output grows through a session; each call reads
    # only what was written since.
    _records: list[dict[str, Any]] = field(default_factory=list, repr=False)
    _parsed_to: int = field(default=0, repr=False)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def get(self, path: str, timeout: float = 5.0) -> tuple[int, bytes]:
        return get(self.base_url + path, timeout)

    def wait_until_up(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(
                    f"web process exited with {self.process.returncode}:\n{self.output()}"
                )
            with contextlib.suppress(OSError):
                if self.get("/healthz", timeout=1)[0] == 200:
                    return
            time.sleep(0.1)
        self.kill()
        raise AssertionError(f"web process not up within {timeout}s:\n{self.output()}")

    def wait_for_output(self, text: str, timeout: float = 5.0) -> None:
        """Until ``text`` appears on stdout (checked every 2 ms)."""
        deadline = time.monotonic() + timeout
        while text not in self.stdout_text():
            assert time.monotonic() < deadline, f"{text!r} not in the output within {timeout}s"
            time.sleep(0.002)

    def poll(self, path: str, until: float, every: float = 0.02) -> list[tuple[float, int | str]]:
        """GET ``path``, each time on a new connection, until one is refused or
        ``until`` (``time.monotonic()``) passes: when each request ended, and
        its status or the kind of failure (``failure``)."""
        seen: list[tuple[float, int | str]] = []
        while time.monotonic() < until:
            try:
                status: int | str = self.get(path, timeout=1)[0]
            except (OSError, http.client.HTTPException) as error:
                status = failure(error)
            seen.append((time.monotonic(), status))
            if status == "refused":
                break
            time.sleep(every)
        return seen

    # --- output -------------------------------------------------------------

    def _read(self, name: str) -> str:
        for handle in self.files:
            handle.flush()
        return (self.workdir / name).read_text(errors="replace")

    def stdout_text(self) -> str:
        return self._read("stdout.log")

    def stderr_text(self) -> str:
        return self._read("stderr.log")

    def output(self) -> str:
        stdout, stderr = self.stdout_text()[-8000:], self.stderr_text()[-8000:]
        return f"--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}"

    def log_lines(self) -> list[dict[str, Any]]:
        """Every whole stdout line, parsed; a line that is not a JSON object fails
        the test. A last line not yet ended by its newline is still being written
        (a reader can see a write half done) and waits for the next call."""
        for handle in self.files:
            handle.flush()
        with (self.workdir / "stdout.log").open("rb") as stream:
            stream.seek(self._parsed_to)
            written = stream.read()
        running = self.process.poll() is None
        whole = written[: written.rfind(b"\n") + 1]
        self._records.extend(self._parse(whole))
        self._parsed_to += len(whole)
        if running or whole == written:
            return list(self._records)
        return [*self._records, *self._parse(written[len(whole) :])]

    def _parse(self, text: bytes) -> list[dict[str, Any]]:
        records = []
        number = len(self._records)  # the lines before: one record each
        for line in text.decode(errors="replace").splitlines():
            if not line.strip():
                continue
            number += 1
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
        for handle in self.files:
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
