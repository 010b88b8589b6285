"""Where the generated service's CPU goes, sampled with py-spy (docs/performance.md).

For each framework, two profiles of the generated service as ``bench.run`` boots it:
``GET /`` under wrk (one worker), and repeated ``/metrics`` scrapes of four workers in
multiprocess mode. py-spy samples only the thread that holds the GIL, so each sample
is a moment of Python CPU time; it is charged to the innermost frame that belongs to
one part of the observability stack, or else to the framework and server.

    python -m bench.profile     # after bench.run, whose rendered projects it reuses
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.run import (
    CONNECTIONS,
    ITEM_PATH,
    WORK,
    DiscardingSink,
    Server,
    Variant,
    children,
    multiprocess_service,
    production_env,
    scrape,
    seed_sqlite,
    wrk,
)
from kit.project import Project, free_port, procfile
from kit.render import FRAMEWORKS, render

ROOT = Path(__file__).resolve().parents[1]
PROFILE = ROOT / "bench" / "profile.json"

Classifier = Callable[[str, str], str | None]
OTHER = "framework and server"
# What is profiled under load: the trivial endpoint and a read on SQLite.
ENDPOINTS = {"trivial": "/", "sqlite": ITEM_PATH}
FRAMEWORK_AND_SERVER = (
    "/gunicorn/",
    "/uvicorn/",
    "/uvicorn_worker/",
    "/httptools/",
    "/h11/",
    "/starlette/",
    "/fastapi/",
    "/anyio/",
    "/pydantic",
    "/flask/",
    "/werkzeug/",
    "/django/",
    "/asyncio/",
    "/concurrent/futures/",
    "/selectors.py",
    "/socket.py",
    "/threading.py",
)


# The runtime's database layer (pool metrics, statement spans, connection
# checks and deadlines), the drivers, and the ORMs with their pools: the bare
# app pays for the last two as well.
DATABASE_RUNTIME = (
    "/engine.py",
    "/database.py",
    "/postgres.py",
    "/backends/pooling.py",
    "/postgresql/base.py",
    "/sqlite3/base.py",
)
DATABASE_DRIVERS = ("/aiosqlite/", "/sqlite3/", "/psycopg/", "/psycopg_binary/")
ORM_AND_POOL = ("/sqlalchemy/", "/django/db/")


def request_part(package: str) -> Classifier:
    """The part of a request's handling that a frame (function, file) belongs to."""

    def classify(function: str, file: str) -> str | None:
        if any(
            part in file
            for part in ("opentelemetry/exporter/", "opentelemetry/proto/", "google/protobuf/")
        ) or any(part in file for part in ("/requests/", "/urllib3/", "/http/client.py")):
            return "span export"
        if "opentelemetry/sdk/trace/export" in file:
            return "span export"
        if "/opentelemetry/" in file or file.endswith(
            (
                f"{package}/runtime/tracing.py",
                f"{package}/runtime/spans.py",
                f"{package}/runtime/semconv.py",
            )
        ):
            return "spans"
        if "/structlog/" in file or "/logging/" in file or file.endswith("/runtime/logging.py"):
            return "access log"
        if "/prometheus_client/" in file or file.endswith(f"{package}/runtime/metrics.py"):
            return "metrics"
        if file.endswith(DATABASE_RUNTIME) and f"/{package}/runtime/" in file:
            return "database instrumentation"
        if any(part in file for part in DATABASE_DRIVERS):
            return "database driver"
        if any(part in file for part in ORM_AND_POOL):
            return "ORM and pool"
        if file.endswith((f"{package}/runtime/server.py", f"{package}/runtime/gunicorn.py")):
            return OTHER  # the service's gunicorn worker and hooks: the server's loop
        if f"/{package}/" in file:
            return "request ids, shedding, own middleware"
        if any(part in file for part in FRAMEWORK_AND_SERVER):
            return OTHER  # so that the middleware that called in is not charged for it
        return None

    return classify


# The functions of runtime/multiprocess.py, by part; the others render.
READING = frozenset(
    (
        "_collect",
        "_parsed_files",
        "_read",
        "_parse",
        "_new_file",
        "_new_slot",
        "_place",
        "_split_le",
        "_present_slots",
        "_unmap_unkept",
        "mapping",
        "refresh",
    )
)
MERGING = frozenset(("add_to", "_merge_unsummed", "_gather", "<lambda>"))


def scrape_part(package: str) -> Classifier:
    """The part of a multiprocess scrape that a frame belongs to."""

    def classify(function: str, file: str) -> str | None:
        function = function.rsplit(".", 1)[-1]  # py-spy gives qualified names
        if file.endswith(
            ("prometheus_client/process_collector.py", f"{package}/runtime/metrics.py")
        ):
            return "process metrics"
        if file.endswith(f"{package}/runtime/multiprocess.py"):  # the service's own reader
            if function in READING:
                return "reading the workers' files"
            if function in MERGING:
                return "merging samples"
            return "rendering the text"
        if file.endswith("prometheus_client/mmap_dict.py") or function in (
            "_read_metrics",
            "_parse_key",
        ):
            return "reading the workers' files"
        if file.endswith("prometheus_client/multiprocess.py"):
            return "merging samples"
        if file.endswith("prometheus_client/exposition.py") or file.endswith(
            "prometheus_client/openmetrics/exposition.py"
        ):
            return "rendering the text"
        if "/prometheus_client/" in file:
            return "merging samples"
        return None

    return classify


def frames(stack: str) -> list[tuple[str, str]]:
    """py-spy's raw stack ("fn (file:line);...") as (function, file), outermost first."""
    found = []
    for frame in stack.split(";"):
        function, _, where = frame.partition(" (")
        found.append((function, where.rsplit(":", 1)[0]))
    return found


def attribute(raw: Path, classify: Classifier) -> dict[str, Any]:
    shares: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        found = frames(stack)
        part = next((p for f in reversed(found) if (p := classify(*f)) is not None), OTHER)
        shares[part] += n
        function, file = found[-1]
        leaves[f"{function} ({'/'.join(file.split('/')[-2:])})"] += n
        total += n
    return {
        "samples": total,
        "shares": {part: n / total for part, n in shares.most_common()} if total else {},
        "top": [[leaf, n / total] for leaf, n in leaves.most_common(10)] if total else [],
    }


def record(pid: int, seconds: float, output: Path, subprocesses: bool = False) -> None:
    command = [
        "py-spy",
        "record",
        "--pid",
        str(pid),
        "--duration",
        str(round(seconds)),
        "--rate",
        "250",
        "--gil",
        "--nonblocking",
        "--full-filenames",
        "--format",
        "raw",
        "--output",
        str(output),
    ]
    if subprocesses:
        command.append("--subprocesses")
    subprocess.run(command, check=True, capture_output=True)


def prepared(framework: str, sink: DiscardingSink) -> tuple[Project, dict[str, str]]:
    """The project bench.run rendered (or a new render), migrated on its own SQLite file."""
    directory = WORK / framework
    existing = [p for p in directory.glob("*") if (p / ".venv").is_dir() and p.name != "previous"]
    if existing:
        project = Project(framework, existing[0])
    else:
        shutil.rmtree(directory, ignore_errors=True)
        project = Project(framework, render(framework, directory))
        project.install(dev=False)
    database = directory / "profile.sqlite3"
    database.unlink(missing_ok=True)
    settings = {**production_env(sink), "DATABASE_URL": f"sqlite:///{database}"}
    project.release(**settings)
    env = project.env(**settings)
    seed_sqlite(f"sqlite:///{database}")
    return project, env


def profile_requests(
    project: Project, env: dict[str, str], seconds: float, raw: Path, path: str = "/"
) -> float:
    """Sample the worker while wrk requests ``path``; the throughput it measured meanwhile."""
    web = procfile(project.path)["web"].split()
    command = [str(project.bin / web[0]), *web[1:]]
    port = free_port()
    server = Server(Variant("generated", command, project.path, env), port, raw.with_suffix(".log"))
    try:
        (worker,) = children(server.process.pid)
        url = f"http://127.0.0.1:{port}{path}"
        connections = CONNECTIONS[project.framework]
        wrk(url, 1, connections)
        measured: list[float] = []
        load = threading.Thread(
            target=lambda: measured.append(wrk(url, seconds + 2, connections)[0])
        )
        load.start()
        time.sleep(1)
        record(worker, seconds, raw)
        load.join()
    finally:
        server.stop()
    return measured[0]


def profile_scrapes(
    project: Project, env: dict[str, str], seconds: float, raw: Path
) -> dict[str, int]:
    with multiprocess_service(project, env) as server:
        size = scrape_size(server.port)
        stop = threading.Event()

        def scrape_until_stopped() -> None:
            while not stop.is_set():
                scrape(server.port)

        load = threading.Thread(target=scrape_until_stopped)
        load.start()
        try:
            record(server.process.pid, seconds, raw, subprocesses=True)
        finally:
            stop.set()
            load.join()
    return size


def import_times(project: Project, env: dict[str, str]) -> dict[str, Any]:
    """What importing the web process's application costs (``python -X importtime``),
    summed by top-level package: most of a cold start."""
    web = procfile(project.path)["web"].split()
    module = web[-1].split(":")[0]
    found = subprocess.run(
        [str(project.bin / "python"), "-X", "importtime", "-c", f"import {module}"],
        cwd=project.path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    by_package: Counter[str] = Counter()
    for line in found.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, own, _, name = (part.strip() for part in line.replace("import time:", "|").split("|"))
        by_package[name.split(".")[0]] += int(own)
    total = sum(by_package.values())
    return {
        "module": module,
        "total_ms": total / 1000,
        "top": [[package, us / 1000] for package, us in by_package.most_common(8)],
    }


def scrape_size(port: int) -> dict[str, int]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        body = response.read()
    lines = sum(1 for line in body.splitlines() if line and not line.startswith(b"#"))
    return {"bytes": len(body), "lines": lines}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--frameworks", default=",".join(FRAMEWORKS))
    parser.add_argument("--seconds", type=float, default=6.0)
    args = parser.parse_args()
    if not shutil.which("py-spy"):
        print("py-spy is missing: it comes with the bench dependency group", file=sys.stderr)
        return 1
    sink = DiscardingSink()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as scratch:
        for framework in args.frameworks.split(","):
            print(f"== {framework}", flush=True)
            project, env = prepared(framework, sink)
            results[framework] = {}
            for endpoint, path in ENDPOINTS.items():
                requests = Path(scratch) / f"{framework}-{endpoint}.txt"
                rps = profile_requests(project, env, args.seconds, requests, path)
                found = attribute(requests, request_part(project.package))
                results[framework][endpoint] = found | {"rps": rps}
            scrapes = Path(scratch) / f"{framework}-scrapes.txt"
            size = profile_scrapes(project, env, args.seconds, scrapes)
            results[framework]["scrape"] = attribute(scrapes, scrape_part(project.package)) | size
            for kind, found in results[framework].items():
                shares = ", ".join(f"{p} {100 * s:.0f}%" for p, s in found["shares"].items())
                print(f"  {kind}: {found['samples']} samples: {shares}", flush=True)
            results[framework]["imports"] = import_times(project, env)
            print(f"  imports: {results[framework]['imports']}", flush=True)
    PROFILE.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {PROFILE.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
