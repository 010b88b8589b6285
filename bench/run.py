"""The cost of the observability stack, measured (docs/performance.md).

For each framework, in one run and interleaved: the generated service as
shipped (JSON access log, metrics, tracing at 100% exporting over OTLP to a
local sink), the bare framework serving the same endpoints with the same
server settings, and the usual library stack. wrk drives each on a trivial
endpoint (``GET /``) and a database read (``GET /api/items/{item_id}``) on
SQLite and PostgreSQL. The server is pinned to one CPU and wrk to the other.

    make bench        # everything, a few minutes per framework: bench/results.json
    make bench-quick  # one short repeat of each cell: bench/quick.json, and how it agrees
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import json
import math
import os
import platform
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kit.postgres import PostgresServer  # noqa: E402
from kit.project import Project, free_port, procfile  # noqa: E402
from kit.render import FRAMEWORKS, render  # noqa: E402

APPS = ROOT / "bench" / "apps"
WORK = ROOT / ".bench"
RESULTS = ROOT / "bench" / "results.json"
QUICK = ROOT / "bench" / "quick.json"
ENDPOINTS = ("trivial", "sqlite", "postgresql")  # each framework's, in the tables' order
SEED_ITEMS = 100
ITEM_PATH = "/api/items/42"  # a seeded item: the database endpoint

# What each framework's baselines need on top of the generated project's own dependencies.
STACK_PACKAGES = {
    "fastapi": [
        "prometheus-fastapi-instrumentator>=7",
        "asgi-correlation-id>=4",  # the generated service no longer installs it
        "opentelemetry-instrumentation-fastapi",
        "opentelemetry-instrumentation-sqlalchemy",
    ],
    "flask": [
        "prometheus-flask-exporter>=0.23",
        "opentelemetry-instrumentation-flask",
        "opentelemetry-instrumentation-sqlalchemy",
    ],
    "django": [
        "django-prometheus>=2.3",
        "dj-database-url>=2",
        # The baselines pool PostgreSQL with Django's own pool (OPTIONS["pool"]).
        "psycopg-pool>=3.2",
        "opentelemetry-instrumentation-django",
        "opentelemetry-instrumentation-psycopg",
        "opentelemetry-instrumentation-sqlite3",
    ],
}
# Concurrent connections: threaded workers serve WEB_THREADS - 2 = 6 requests at
# once and shed the rest by design, so more would measure shedding, not throughput.
CONNECTIONS = {"fastapi": 16, "flask": 6, "django": 6}
# The bare and stack apps run under the same gunicorn worker as the generated service.
BASELINE_SERVER = {
    "fastapi": ["-k", "uvicorn_worker.UvicornWorker"],
    "flask": ["-k", "gthread", "--threads", "8"],
    "django": ["-k", "gthread", "--threads", "8"],
}


class DiscardingSink:
    """An OTLP/HTTP endpoint that accepts and drops spans: export happens, decoding does not."""

    def __init__(self) -> None:
        self.requests = 0
        self.bytes = 0
        sink = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                self.rfile.read(length)
                sink.requests += 1
                sink.bytes += length
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"


@dataclass
class Variant:
    name: str  # bare, generated, stack
    command: list[str]
    cwd: Path
    env: dict[str, str]


@dataclass
class Run:
    framework: str
    variant: str
    endpoint: str
    repeat: int
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int


@dataclass
class Results:
    machine: dict[str, Any] = field(default_factory=dict)
    runs: list[Run] = field(default_factory=list)
    cold_start_s: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    rss_kib: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)
    scrape_ms: dict[str, list[float]] = field(default_factory=dict)
    previous_scrape_ms: dict[str, list[float]] = field(default_factory=dict)
    spans_exported: dict[str, int] = field(default_factory=dict)
    versions: dict[str, dict[str, str]] = field(default_factory=dict)


def machine() -> dict[str, Any]:
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    wrk = subprocess.run(["wrk", "--version"], capture_output=True, text=True)
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "kernel": platform.release(),
        "wrk": (wrk.stdout or wrk.stderr).splitlines()[0] if (wrk.stdout or wrk.stderr) else "?",
        "loop_s": interpreter_speed(),
        "python": platform.python_version(),
    }


def interpreter_speed() -> float:
    """CPU seconds of ten million additions in a Python loop, the best of three.
    One machine here ran it in 0.66 to 0.77 s within an hour (and served the
    same bare app at a quarter of an earlier run's rate), so a run's milliseconds
    compare only with runs of a like figure; its ratios compare anywhere."""
    best = math.inf
    for _ in range(3):
        started, total = time.process_time(), 0
        for number in range(10_000_000):
            total += number
        best = min(best, time.process_time() - started)
    return round(best, 2)


def get(url: str, timeout: float = 2.0) -> int:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return int(response.status)
    except OSError:
        return 0


def seed_sqlite(url: str) -> None:
    with sqlite3.connect(url.removeprefix("sqlite:///")) as connection:
        connection.executemany(
            "INSERT INTO items (name) VALUES (?)", [(f"item {n}",) for n in range(SEED_ITEMS)]
        )


def seed_postgres(server: PostgresServer, database: str) -> None:
    with server.connect(database) as connection, connection.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO items (name) VALUES (%s)", [(f"item {n}",) for n in range(SEED_ITEMS)]
        )
        # Now, not when autovacuum gets to the new rows: it did so during the
        # first variant's run, about a minute after seeding (a short run's bare
        # PostgreSQL read measured at half its rate).
        cursor.execute("VACUUM ANALYZE items")


class Server:
    """One variant's process, pinned to CPU 0, logging to a file as a container would."""

    def __init__(self, variant: Variant, port: int, log: Path) -> None:
        self.port = port
        self.log = log.open("wb")
        env = {**variant.env, "PORT": str(port)}
        command = [part.replace("$PORT", str(port)) for part in variant.command]
        if shutil.which("taskset"):
            command = ["taskset", "-c", "0", *command]
        self.started = time.monotonic()
        self.process = subprocess.Popen(
            command,
            cwd=variant.cwd,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.ready_after = self._wait_ready()

    def _wait_ready(self, timeout: float = 60) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"server exited with {self.process.returncode}; see {self.log.name}"
                )
            if get(f"http://127.0.0.1:{self.port}/ready", timeout=1) == 200:
                return time.monotonic() - self.started
            time.sleep(0.01)
        raise RuntimeError(f"server not ready within {timeout}s; see {self.log.name}")

    def rss(self) -> dict[str, int]:
        pids = [self.process.pid, *children(self.process.pid)]
        return {
            ("master" if pid == self.process.pid else f"worker {n}"): rss_kib(pid)
            for n, pid in enumerate(pids)
        }

    def terminate(self) -> None:
        """Ask it to stop, once (``wait`` waits for it)."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)

    def wait(self) -> None:
        try:
            self.process.wait(timeout=40)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self.log.close()

    def stop(self) -> None:
        self.terminate()
        self.wait()


def stop_all(servers: Iterable[Server]) -> None:
    """All told to stop at once, then waited for: each takes about half a second."""
    servers = list(servers)
    for server in servers:
        server.terminate()
    for server in servers:
        server.wait()


def children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry))
    return sorted(found)


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


WRK_LINE = re.compile(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$")


def wrk(url: str, seconds: float, connections: int) -> tuple[float, float, float, int]:
    command = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency", url]
    if shutil.which("taskset"):
        command = ["taskset", "-c", "1", *command]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    errors = 0
    if match := re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out):
        errors += int(match.group(1))
    if match := re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out
    ):
        errors += sum(int(n) for n in match.groups())
    percentiles = {}
    for line in out.splitlines():
        if match := WRK_LINE.match(line):
            value = float(match.group(2)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[match.group(3)]
            percentiles[match.group(1)] = value
    return rps, percentiles.get("50", 0.0), percentiles.get("99", 0.0), errors


# The generated service with one part of its observability switched off: the
# difference to "generated" is what that part costs (docs/performance.md).
DECOMPOSITION = {
    "no export": {"OTEL_TRACES_EXPORTER": "none"},
    "no tracing": {"OTEL_SDK_DISABLED": "true"},
    "no access log": {"LOG_LEVEL": "warning"},
}
DECOMPOSED_ENDPOINTS = ("trivial", "sqlite")


def variants(
    framework: str,
    project: Project,
    base_env: dict[str, str],
    previous: Project | None = None,
    decompose: bool = False,
) -> list[Variant]:
    web = procfile(project.path)["web"].split()
    gunicorn = str(project.bin / "gunicorn")
    baseline = [
        gunicorn,
        "--workers",
        "1",
        "--bind",
        "0.0.0.0:$PORT",
        *BASELINE_SERVER[framework],
        "--keep-alive",
        "5",
        "--chdir",
        str(APPS),
    ]
    generated = [gunicorn if web[0] == "gunicorn" else web[0], *web[1:]]
    found = [
        Variant("bare", [*baseline, f"{framework}_bare:app"], APPS, base_env),
        Variant("generated", generated, project.path, base_env),
        Variant("stack", [*baseline, f"{framework}_stack:app"], APPS, base_env),
    ]
    if previous is not None:
        # The same web command in the earlier revision's project, with its own venv.
        env = {**base_env, "VIRTUAL_ENV": str(previous.path / ".venv")}
        env["PATH"] = f"{previous.bin}{os.pathsep}{base_env.get('PATH', '')}"
        command = [str(previous.bin / "gunicorn"), *web[1:]]
        found.append(Variant("previous", command, previous.path, env))
    if decompose:
        for name, switch in DECOMPOSITION.items():
            found.append(Variant(name, generated, project.path, {**base_env, **switch}))
    return found


def render_revision(framework: str, revision: str, directory: Path) -> Project:
    """The framework's template as it was at ``revision`` of the kit, rendered and installed."""
    source = directory / "kit"
    shutil.rmtree(directory, ignore_errors=True)
    source.mkdir(parents=True)
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", revision], capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(source)], input=archive, check=True)
    # A fresh interpreter in the old kit (the templates load the ``hooks``
    # package from the working directory): this one has the current kit's.
    subprocess.run(
        [
            sys.executable,
            "-m",
            "cookiecutter",
            str(source),
            "--directory",
            f"templates/{framework}",
            "--no-input",
            "--default-config",
            "--output-dir",
            str(directory),
        ],
        cwd=source,
        check=True,
    )
    (path,) = (entry for entry in directory.iterdir() if entry.name != "kit")
    project = Project(framework, Path(path))
    project.install(dev=False)
    return project


def production_env(sink: DiscardingSink) -> dict[str, str]:
    """The generated service's settings in the benchmark: production, one worker,
    every span sampled and exported to ``sink``."""
    return {
        "OTEL_EXPORTER_OTLP_ENDPOINT": sink.endpoint,
        "OTEL_TRACES_SAMPLER": "always_on",
        "WEB_CONCURRENCY": "1",
        "LOG_LEVEL": "info",
        "ENVIRONMENT": "production",
        "DJANGO_SECRET_KEY": "bench-" + "x" * 50,
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DJANGO_SSL_REDIRECT": "false",
        "DRAIN_DELAY": "0",
    }


_RENDERING = threading.Lock()  # cookiecutter's hooks read the process's environment


def set_up(framework: str) -> Project:
    """The framework's generated project, rendered afresh, with the stack's packages."""
    shutil.rmtree(WORK / framework, ignore_errors=True)
    with _RENDERING:
        project = Project(framework, render(framework, WORK / framework))
    project.install(dev=False)
    subprocess.run(
        [
            "uv",
            "pip",
            "install",
            "--quiet",
            # As the project's install: what these reinstall (Django itself,
            # for the Django stack) would be compiled again at every start.
            "--compile-bytecode",
            "--python",
            str(project.bin / "python"),
            *STACK_PACKAGES[framework],
        ],
        check=True,
    )
    return project


def bench_framework(
    project: Project,
    args: argparse.Namespace,
    results: Results,
    postgres: PostgresServer,
    sink: DiscardingSink,
) -> None:
    framework = project.framework
    print(f"== {framework}", flush=True)
    report = subprocess.run(
        [
            str(project.bin / "python"),
            "-c",
            "import importlib.metadata as m, json, platform\n"
            "names = ['fastapi', 'flask', 'django', 'gunicorn', 'uvicorn', 'sqlalchemy', 'psycopg',"
            " 'structlog', 'opentelemetry-sdk', 'prometheus-client']\n"
            "found = {n: m.version(n) for n in names if any(True for _ in m.distributions(name=n))}\n"
            "found['python'] = platform.python_version()\n"
            "print(json.dumps(found))",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    results.versions[framework] = json.loads(report.stdout)
    previous = (
        render_revision(framework, args.previous, WORK / framework / "previous")
        if args.previous
        else None
    )
    sqlite_url = f"sqlite:///{WORK / framework / 'bench.sqlite3'}"
    Path(sqlite_url.removeprefix("sqlite:///")).unlink(missing_ok=True)
    database = f"bench_{framework}"
    with postgres.connect() as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{database}"')
    pg_url = postgres.create_database(database)
    common = production_env(sink)
    for url in (sqlite_url, pg_url):
        project.release(**common, DATABASE_URL=url)
    if previous is not None:
        previous_sqlite = f"sqlite:///{WORK / framework / 'previous.sqlite3'}"
        Path(previous_sqlite.removeprefix("sqlite:///")).unlink(missing_ok=True)
        previous.release(**common, DATABASE_URL=previous_sqlite)
        seed_sqlite(previous_sqlite)
    seed_sqlite(sqlite_url)
    seed_postgres(postgres, database)

    # Each variant is started once per database and serves that database's
    # endpoints through every repeat: a start (one to three seconds) and a stop
    # per run were 81 of them. An idle server costs its neighbours
    # next to nothing. A server is warmed up on an endpoint before its first
    # run there; its later repeats find it warm.
    databases = [
        ("sqlite", sqlite_url, [("trivial", "/"), ("sqlite", ITEM_PATH)]),
        ("postgresql", pg_url, [("postgresql", ITEM_PATH)]),
    ]
    connections = args.connections or CONNECTIONS[framework]
    exported_before = sink.requests
    for database_name, url, endpoints in databases:
        env = project.env(**common, DATABASE_URL=url)
        decompose = args.decompose and any(e in DECOMPOSED_ENDPOINTS for e, _ in endpoints)
        found = variants(framework, project, env, previous, decompose=decompose)
        for variant in found:
            if variant.name == "previous" and url == sqlite_url:
                # Its own SQLite file, migrated by its own release process.
                variant.env = {**variant.env, "DATABASE_URL": previous_sqlite}
        with contextlib.ExitStack() as running:
            servers: dict[str, Server] = {}
            running.callback(stop_all, servers.values())
            for variant in found:
                log = WORK / framework / f"{variant.name}-{database_name}.log"
                servers[variant.name] = Server(variant, free_port(), log)
            for endpoint, path in endpoints:
                order = [
                    variant
                    for variant in found
                    if variant.name not in DECOMPOSITION or endpoint in DECOMPOSED_ENDPOINTS
                ]
                for repeat in range(args.repeats):
                    turn = repeat % len(order)
                    # Interleaved, rotating who goes first.
                    for variant in order[turn:] + order[:turn]:
                        server = servers[variant.name]
                        target = f"http://127.0.0.1:{server.port}{path}"
                        if repeat == 0:
                            wrk(target, args.warmup, connections)
                            # The warm-up's last requests still hold their slots
                            # when wrk exits: a threaded worker at its limit shed
                            # the run's first ones (1-3 on Django's PostgreSQL read).
                            time.sleep(0.25)
                        rps, p50, p99, errors = wrk(target, args.duration, connections)
                        if endpoint == "trivial" and repeat == 0:
                            rss = results.rss_kib.setdefault(framework, {})
                            rss[variant.name] = server.rss()
                        results.runs.append(
                            Run(framework, variant.name, endpoint, repeat, rps, p50, p99, errors)
                        )
                        print(
                            f"  {endpoint:10} {variant.name:9} #{repeat}: {rps:8.0f} req/s "
                            f"p50 {p50:6.2f} ms p99 {p99:6.2f} ms errors {errors}",
                            flush=True,
                        )
    results.spans_exported[framework] = sink.requests - exported_before

    env = project.env(**common, DATABASE_URL=sqlite_url)
    starts: dict[str, list[float]] = {}
    for _ in range(args.cold_starts):
        for variant in variants(framework, project, env):
            server = Server(variant, free_port(), WORK / framework / f"cold-{variant.name}.log")
            starts.setdefault(variant.name, []).append(server.ready_after)
            server.stop()
    results.cold_start_s[framework] = starts
    if args.quick:
        return
    results.scrape_ms[framework] = scrape_timings(project, env)
    if previous is not None:
        results.previous_scrape_ms[framework] = scrape_timings(
            previous, previous.env(**common, DATABASE_URL=previous_sqlite)
        )


@contextlib.contextmanager
def multiprocess_service(
    project: Project, env: dict[str, str], workers: int = 4
) -> Iterator[Server]:
    """The generated service with ``workers`` workers in multiprocess mode, each of which
    recorded 50 routes x 18 status codes x 2 methods, as after a day of varied traffic."""
    directory = WORK / project.framework / "multiproc"
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    env = {**env, "WEB_CONCURRENCY": str(workers), "PROMETHEUS_MULTIPROC_DIR": str(directory)}
    port = free_port()
    web = procfile(project.path)["web"].split()
    server = Server(
        Variant("generated", [str(project.bin / web[0]), *web[1:]], project.path, env),
        port,
        WORK / project.framework / "scrape.log",
    )
    # Revisions before the runtime had its own package kept metrics.py at the top.
    runtime = project.package + (
        ".runtime" if (project.path / project.package / "runtime").is_dir() else ""
    )
    try:
        # One import, then a process per worker's files (prometheus_client names
        # each file after the process that writes it); the importer's go.
        fill = (
            "import os\n"
            f"from {runtime}.metrics import observe_request\n"
            f"for _ in range({workers}):\n"
            "    if os.fork():\n"
            "        os.wait()\n"
            "        continue\n"
            "    for r in range(50):\n"
            "        for s in (200, 201, 204, 301, 304, 400, 401, 403, 404, 405, 409, 413, 422, 429, 500, 502, 503, 504):\n"
            "            for m in ('GET', 'POST'):\n"
            "                observe_request(m, f'/api/resource{r}/{{id}}', s, 'internal_error' if s >= 500 else '', 0.01)\n"
            "    os._exit(0)\n"
            "directory = os.environ['PROMETHEUS_MULTIPROC_DIR']\n"
            "for name in os.listdir(directory):  # the importing process's own\n"
            "    if name.endswith(f'_{os.getpid()}.db'):\n"
            "        os.remove(os.path.join(directory, name))\n"
        )
        subprocess.run([str(project.bin / "python"), "-c", fill], env=env, check=True)
        # The first scrape comes a short scrape interval after the files were
        # written, as Prometheus's would: long enough for each worker's
        # background parse of new series (a second after it looked last, then
        # its CPU time, four workers on one CPU here), not for a value to age.
        time.sleep(SCRAPE_INTERVAL_S)
        yield server
    finally:
        server.stop()


def scrape(port: int) -> float:
    """One /metrics scrape, in milliseconds."""
    started = time.perf_counter()
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        response.read()
    return (time.perf_counter() - started) * 1000


SCRAPE_INTERVAL_S = 5.0

# Requests served before each scrape: a service with traffic has new
# observations in its workers' files at every scrape, and an idle one only
# those of its own garbage collections (bench/notes.md), a cheaper scrape.
REQUESTS_PER_SCRAPE = 20


def scrape_timings(project: Project, env: dict[str, str]) -> list[float]:
    """One /metrics scrape with 50 routes x every status code, 4 workers, multiprocess
    mode, after ``REQUESTS_PER_SCRAPE`` requests to ``GET /``."""
    timings = []
    with multiprocess_service(project, env) as server:
        for _ in range(20):
            for _ in range(REQUESTS_PER_SCRAPE):
                get(f"http://127.0.0.1:{server.port}/")
            timings.append(scrape(server.port))
    return timings


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--frameworks", default=",".join(FRAMEWORKS))
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--connections", type=int, default=0, help="default: per framework")
    parser.add_argument("--cold-starts", type=int, default=3)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="1 repeat of 2 s after 0.5 s, no cold start, no scrape, into bench/quick.json "
        "(bench.agree)",
    )
    parser.add_argument(
        "--decompose",
        action="store_true",
        help="also run the generated service with export, tracing, access line off (slow)",
    )
    parser.add_argument(
        "--previous",
        default="",
        help="also measure the generated service of this kit revision (what later changes bought)",
    )
    args = parser.parse_args()
    if args.quick:
        args.duration, args.warmup, args.repeats, args.cold_starts = 2.0, 0.5, 1, 0
    output = QUICK if args.quick else RESULTS
    if not shutil.which("wrk"):
        print("wrk is missing: install it (apt-get install wrk)", file=sys.stderr)
        return 1

    WORK.mkdir(exist_ok=True)
    if len(os.sched_getaffinity(0)) > 1:
        # The OTLP sink in this process shares wrk's CPU, not the server's.
        os.sched_setaffinity(0, {1})
    results = Results(machine=machine())
    began = time.monotonic()
    sink = DiscardingSink()
    postgres = PostgresServer()
    try:
        frameworks = args.frameworks.split(",")
        # Set up side by side before anything is measured (uv and bytecode
        # compilation, a third of a quick run when one after the other).
        with concurrent.futures.ThreadPoolExecutor(len(frameworks)) as pool:
            projects = list(pool.map(set_up, frameworks))
        for project in projects:
            bench_framework(project, args, results, postgres, sink)
            # After each framework, so a failure later keeps what was measured.
            payload = asdict(results)
            payload["settings"] = {k: v for k, v in vars(args).items()}
            payload["elapsed_s"] = time.monotonic() - began
            payload["requests_per_scrape"] = REQUESTS_PER_SCRAPE
            payload["scrape_after_s"] = SCRAPE_INTERVAL_S
            output.write_text(json.dumps(payload, indent=2) + "\n")
    finally:
        postgres.close()
    print(f"wrote {output.relative_to(ROOT)}; `python -m bench.report` writes docs/performance.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
