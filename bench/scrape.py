"""The multiprocess scrape on its own: ``runtime/core/multiprocess.py`` against an
older revision of it, interleaved in one run (bench/notes.md).

Four real processes write their files with prometheus_client's own multiprocess
writers into a temporary ``PROMETHEUS_MULTIPROC_DIR``: the bench's 50 routes x 18
status codes x 2 methods on the request duration histogram, as ``bench.run``
records them, and the service's few gauges. Each round then times, for every
reader in turn (the order alternating between rounds):

- *first*: a new reader's first scrape, as in a worker that just started;
- *prepare (background)*, *first, once prepared*: what a worker's background
  thread does before that scrape comes (``MultiprocessScrape.prepare``), then
  the scrape;
- *unchanged*: a later scrape, nothing written since the last one;
- *changed*: a later scrape after each worker recorded ``--requests`` more
  requests on routes picked at random (prometheus_client's writer again);
- *new worker*: a later scrape after a fifth worker's file appeared (a copy of
  a recorded one under a new pid), removed again after the round.

Wall time and the process's CPU time are reported (median and max): the
machine is shared, and CPU time is what the scrape itself costs.

    .venv/bin/python -m bench.scrape                  # this tree against HEAD
    .venv/bin/python -m bench.scrape --against 8040dde --rounds 30
"""

from __future__ import annotations

import argparse
import importlib.util
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from prometheus_client.mmap_dict import MmapedDict

ROOT = Path(__file__).resolve().parents[1]
MODULE = Path("runtime/core/multiprocess.py")
WORKERS = 4

# What a worker records: the histogram as runtime/core/metrics.py declares it,
# filled as bench.run's multiprocess_service fills it, and the gauges of every
# multiprocess mode the service uses.
FILL = """
import sys
from prometheus_client import Gauge, Histogram, values

pid = int(sys.argv[1])
values.ValueClass = values.MultiProcessValue(process_identifier=lambda: pid)
duration = Histogram(
    "http_server_request_duration_seconds",
    "Duration of HTTP server requests.",
    ["http_request_method", "http_route", "http_response_status_code", "error_type"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0),
)
codes = (200, 201, 204, 301, 304, 400, 401, 403, 404, 405, 409, 413, 422, 429, 500, 502, 503, 504)
for route in range(50):
    for code in codes:
        for method in ("GET", "POST"):
            error = "internal_error" if code >= 500 else ""
            duration.labels(method, f"/api/resource{route}/{{id}}", str(code), error).observe(0.01)
Gauge("http_server_active_requests", "In flight.", ["http_request_method"],
      multiprocess_mode="livesum").labels("GET").set(pid % 2)
Gauge("db_client_connections", "Connections.", ["state"],
      multiprocess_mode="liveall").labels("idle").set(pid)
Gauge("service_build_info", "Always 1.", ["version"],
      multiprocess_mode="livemax").labels("1.0").set(1)
Gauge("service_ready", "Ready.", multiprocess_mode="livemostrecent").set(1)
"""


def record(directory: Path) -> None:
    """The workers' files, each written by its own process."""
    env = {"PROMETHEUS_MULTIPROC_DIR": str(directory)}
    for pid in range(1, WORKERS + 1):
        subprocess.run([sys.executable, "-c", FILL, str(pid)], env=env, check=True)


def load(source: str, name: str) -> ModuleType:
    """The reader module from ``source`` (its text), importable under ``name``."""
    path = Path(tempfile.mkdtemp()) / f"{name}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def reader_at(revision: str) -> ModuleType:
    source = subprocess.run(
        ["git", "show", f"{revision}:{MODULE}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return load(source, f"reader_{revision.replace('-', '_')}")


def more_requests(directory: Path, requests: int, rng: random.Random) -> None:
    """Each worker records ``requests`` more requests, on label sets it already has."""
    for path in sorted(directory.glob("histogram_*.db")):
        values: Any = MmapedDict(str(path))  # type: ignore[no-untyped-call]
        try:
            keys = [k for k, _, _ in values.read_all_values() if '_bucket"' in k]
            for key in rng.sample(keys, min(requests, len(keys))):
                value, timestamp = values.read_value(key)
                values.write_value(key, value + 1, timestamp)
        finally:
            values.close()


class Timer:
    """Wall and CPU milliseconds of each call, by scenario and reader."""

    def __init__(self) -> None:
        self.wall: dict[tuple[str, str], list[float]] = {}
        self.cpu: dict[tuple[str, str], list[float]] = {}

    def time(self, scenario: str, reader: str, call: Callable[[], object]) -> None:
        wall, cpu = time.perf_counter(), time.process_time()
        call()
        cpu = (time.process_time() - cpu) * 1000
        wall = (time.perf_counter() - wall) * 1000
        self.wall.setdefault((scenario, reader), []).append(wall)
        self.cpu.setdefault((scenario, reader), []).append(cpu)

    def table(self) -> str:
        rows = [
            "| scenario | reader | n | wall median ms | wall max ms | CPU median ms | CPU max ms |",
            "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
        ]
        for (scenario, reader), walls in self.wall.items():
            cpus = self.cpu[(scenario, reader)]
            rows.append(
                f"| {scenario} | {reader} | {len(walls)} | {statistics.median(walls):.1f} "
                f"| {max(walls):.1f} | {statistics.median(cpus):.1f} | {max(cpus):.1f} |"
            )
        return "\n".join(rows)


def one_round(
    directory: Path,
    readers: list[tuple[str, ModuleType]],
    timer: Timer,
    args: argparse.Namespace,
    rng: random.Random,
) -> None:
    def scrape(reader: Any) -> Callable[[], object]:
        return lambda: reader.render(args.openmetrics)

    scrapes = []
    for name, module in readers:
        reader = module.MultiprocessScrape(str(directory))
        timer.time("first", name, scrape(reader))
        scrapes.append((name, reader))
        if hasattr(module.MultiprocessScrape, "prepare"):  # since 2026-12-03
            prepared = module.MultiprocessScrape(str(directory))
            timer.time("prepare (background)", name, prepared.prepare)
            timer.time("first, once prepared", name, scrape(prepared))
    for name, reader in scrapes:
        timer.time("unchanged", name, scrape(reader))
    more_requests(directory, args.requests, rng)
    for name, reader in scrapes:
        timer.time("changed", name, scrape(reader))
    newcomer = directory / "histogram_99.db"
    shutil.copyfile(directory / "histogram_1.db", newcomer)
    for name, reader in scrapes:
        timer.time("new worker", name, scrape(reader))
    newcomer.unlink()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--against", default="HEAD", help="the older revision's reader")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--requests", type=int, default=200, help="per worker between scrapes")
    parser.add_argument("--openmetrics", action="store_true")
    parser.add_argument(
        "--prometheus-client", action="store_true", help="also time MultiProcessCollector"
    )
    args = parser.parse_args()

    readers = [
        (f"{args.against} (before)", reader_at(args.against)),
        ("this tree", load((ROOT / MODULE).read_text(), "reader_tree")),
    ]
    timer = Timer()
    rng = random.Random(15)
    with tempfile.TemporaryDirectory() as temporary:
        directory = Path(temporary)
        record(directory)
        size = sum(p.stat().st_size for p in directory.glob("*.db")) / 1e6
        body = readers[-1][1].MultiprocessScrape(str(directory)).render(args.openmetrics)
        body = body if isinstance(body, str) else body.decode()  # bytes since 2026-12-03
        print(
            f"{WORKERS} workers, {size:.1f} MB of files; the body: "
            f"{body.count(chr(10))} lines, {len(body) / 1e6:.1f} MB",
            file=sys.stderr,
        )
        for number in range(args.rounds):
            one_round(directory, readers[:: 1 if number % 2 else -1], timer, args, rng)
        if args.prometheus_client:
            time_prometheus_client(directory, timer, args.openmetrics)
    print(timer.table())
    return 0


def time_prometheus_client(directory: Path, timer: Timer, openmetrics: bool) -> None:
    from prometheus_client import CollectorRegistry
    from prometheus_client.exposition import generate_latest
    from prometheus_client.multiprocess import MultiProcessCollector
    from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics

    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(directory))  # type: ignore[no-untyped-call]
    encode = generate_openmetrics if openmetrics else generate_latest
    for _ in range(3):
        timer.time("any", "prometheus_client", lambda: encode(registry))


if __name__ == "__main__":
    sys.exit(main())
