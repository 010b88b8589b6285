"""What a request costs each variant in instructions: the decomposition without
the machine's noise.

Throughput on this shared two-CPU machine moves by up to 2x between repeats,
and a ratio by up to 0.15 between runs of the same code (docs/performance.md).
Instructions do not: each variant's application is driven in process
(``bench/drive.py``, no server, no client) under valgrind's callgrind, twice,
with ``--requests`` and with a fifth of them; the difference over the
difference in requests is the instructions one request costs, start-up and
exit apart. Two runs of FastAPI's ``GET /`` gave 620,953 and 621,041: with
one hash seed, the export by batch only and the readiness check run once,
nothing in a run depends on how long it takes.

The variants are the bare app, the generated service, and the generated
service with one part switched off (``bench/run.py``'s decomposition, plus
its metrics): what a part costs is the generated service's count less that
variant's. Instructions are not time (a cache miss costs many), and the
server's own work is not in them: they decide where to look, and
``make bench`` still decides the targets.

    python -m bench.instructions                          # everything, about 50 minutes
    python -m bench.instructions --frameworks flask --endpoints sqlite
    python -m bench.instructions --endpoints postgresql   # a private PostgreSQL server
    python -m bench.instructions --frameworks fastapi --endpoints trivial --cpu 8 --requests 10000

``--cpu`` measures time instead, the process's CPU time a request (every
thread's, the span export's included) without valgrind: noisy here (runs of
one variant differ by up to 30%), but it shows what instructions cannot, how
long a part's instructions take (docs/performance.md).

It uses the projects ``make bench`` set up in ``.bench/`` (or sets them up),
needs ``valgrind``, and writes ``bench/instructions.json``.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

from bench.run import (
    APPS,
    DECOMPOSITION,
    ITEM_PATH,
    WORK,
    DiscardingSink,
    production_env,
    seed_postgres,
    seed_sqlite,
    set_up,
)
from kit.postgres import PostgresServer
from kit.project import Project, procfile
from kit.render import FRAMEWORKS

ROOT = Path(__file__).resolve().parents[1]
DRIVER = ROOT / "bench" / "drive.py"
OUT = ROOT / "bench" / "instructions.json"
PATHS = {"trivial": "/", "sqlite": ITEM_PATH, "postgresql": ITEM_PATH}
INTERFACE = {"fastapi": "asgi", "flask": "wsgi", "django": "wsgi"}
# The generated service with one part off: its environment, or the driver's switch.
SWITCHES: dict[str, tuple[dict[str, str], list[str]]] = {
    **{name: (env, []) for name, env in DECOMPOSITION.items()},
    "no metrics": ({}, ["--no-metrics"]),
}
VARIANTS = ("bare", "generated", *SWITCHES)
COLLECTED = re.compile(r"Collected : (\d+)")
CPU = re.compile(r"^cpu ([\d.]+)$", re.M)


def collected(command: list[str], cwd: Path, env: dict[str, str]) -> int:
    """Instructions the command executed, all its threads together."""
    run = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *command],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    found = COLLECTED.search(run.stderr)
    if run.returncode != 0 or found is None:
        raise RuntimeError(f"{' '.join(command)} failed:\n{run.stdout[-2000:]}{run.stderr[-3000:]}")
    return int(found.group(1))


def driven(
    project: Project, variant: str, path: str, env: dict[str, str], count: int, warm: int
) -> tuple[list[str], Path, dict[str, str]]:
    """The driver's command for ``variant`` serving ``count`` requests, its
    directory and its environment."""
    framework = project.framework
    switched_env, switch = SWITCHES.get(variant, ({}, []))  # none for bare and generated
    if variant == "bare":
        app, cwd = f"{framework}_bare:app", APPS
    else:
        app, cwd = procfile(project.path)["web"].split()[-1], project.path
        env = {**env, **switched_env}
    if ":" not in app:
        app += ":application"  # gunicorn's default
    command = [str(project.bin / "python"), str(DRIVER), INTERFACE[framework], app, path]
    return [*command, str(count), "--warm", str(warm), *switch], cwd, env


def per_request(
    project: Project, variant: str, path: str, env: dict[str, str], requests: int, warm: int
) -> float:
    fewer = requests // 5

    def serving(count: int) -> int:
        return collected(*driven(project, variant, path, env, count, warm))

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        many, few = pool.map(serving, (requests, fewer))
    return (many - few) / (requests - fewer)


def _on_one_cpu() -> None:
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})


def cpu_per_request(
    project: Project,
    variant: str,
    path: str,
    env: dict[str, str],
    requests: int,
    warm: int,
    pin: bool,
) -> float:
    """The process's CPU µs a request, without valgrind; on one CPU with ``pin``."""
    command, cwd, env = driven(project, variant, path, env, requests, warm)
    run = subprocess.run(
        [*command, "--cpu"],
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        timeout=600,
        preexec_fn=_on_one_cpu if pin else None,
    )
    found = CPU.search(run.stderr)
    if run.returncode != 0 or found is None:
        raise RuntimeError(
            f"{' '.join(command)} exited with {run.returncode}:\n{run.stderr[-3000:]}"
        )
    return float(found.group(1))


def cpu_medians(
    project: Project,
    variants: list[str],
    endpoint: str,
    env: dict[str, str],
    args: argparse.Namespace,
) -> dict[str, float]:
    """Each variant's CPU µs a request, the median of ``args.cpu`` runs, interleaved
    with the first to go rotating."""
    runs: dict[str, list[float]] = {variant: [] for variant in variants}
    for turn in range(args.cpu):
        turn %= len(variants)
        for variant in variants[turn:] + variants[:turn]:
            spent = cpu_per_request(
                project, variant, PATHS[endpoint], env, args.requests, args.warm, args.pin
            )
            runs[variant].append(spent)
            print(f"{project.framework:8} {endpoint:8} {variant:14} {spent:>8.1f} µs", flush=True)
    return {variant: statistics.median(spent) for variant, spent in runs.items()}


def prepared(
    project: Project, endpoint: str, sink: DiscardingSink, postgres: PostgresServer | None
) -> dict[str, str]:
    """The environment the endpoint's runs share, its database made and seeded:
    SQLite (the trivial endpoint's too) or a database of the private PostgreSQL
    server, whose own instructions are not counted."""
    common = production_env(sink)
    if endpoint == "postgresql":
        assert postgres is not None
        database = f"instructions_{project.framework}"
        with postgres.connect() as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{database}"')
        url = postgres.create_database(database)
        project.release(**common, DATABASE_URL=url)
        seed_postgres(postgres, database)
    else:
        url = f"sqlite:///{WORK / project.framework / 'instructions.sqlite3'}"
        for suffix in ("", "-wal", "-shm"):
            Path(url.removeprefix("sqlite:///") + suffix).unlink(missing_ok=True)
        project.release(**common, DATABASE_URL=url)
        seed_sqlite(url)
    # Spans are exported when a batch is full or at exit, not every 5 s: a
    # run lasts a minute under valgrind, and how many batches a timer cut
    # would differ between the two runs. One hash seed: dicts and sets
    # laid out alike in both.
    return project.env(
        **common,
        DATABASE_URL=url,
        OTEL_BSP_SCHEDULE_DELAY=str(24 * 3600 * 1000),
        PYTHONHASHSEED="0",
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--frameworks", default=",".join(FRAMEWORKS))
    parser.add_argument("--endpoints", default=",".join(PATHS))
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--requests", type=int, default=250)
    parser.add_argument("--warm", type=int, default=100)
    parser.add_argument(
        "--cpu",
        type=int,
        default=0,
        metavar="ROUNDS",
        help="instead: the process's CPU µs a request, the median of ROUNDS "
        "interleaved runs of --requests each (not written to the JSON)",
    )
    parser.add_argument("--pin", action="store_true", help="with --cpu: each run on one CPU")
    args = parser.parse_args()
    if not args.cpu and shutil.which("valgrind") is None:
        print("valgrind is needed (apt-get install valgrind)", file=sys.stderr)
        return 1
    variants = args.variants.split(",")
    unknown = set(variants) - set(VARIANTS)
    if unknown or not {"bare", "generated"} <= set(variants):
        parser.error(f"variants are {', '.join(VARIANTS)}; bare and generated are needed")
    sink = DiscardingSink()
    # A run of some frameworks or endpoints replaces only their figures.
    results: dict[str, dict[str, dict[str, float]]] = (
        json.loads(OUT.read_text()) if OUT.exists() and not args.cpu else {}
    )
    endpoints = args.endpoints.split(",")
    postgres = PostgresServer() if "postgresql" in endpoints else None
    try:
        for framework in args.frameworks.split(","):
            path = WORK / framework / "example-service"
            project = Project(framework, path) if (path / ".venv").is_dir() else set_up(framework)
            for endpoint in endpoints:
                env = prepared(project, endpoint, sink, postgres)
                if args.cpu:
                    results.setdefault(framework, {})[endpoint] = cpu_medians(
                        project, variants, endpoint, env, args
                    )
                    continue
                counts = results.setdefault(framework, {})[endpoint] = {}
                for variant in variants:
                    counts[variant] = per_request(
                        project, variant, PATHS[endpoint], env, args.requests, args.warm
                    )
                    print(
                        f"{framework:8} {endpoint:10} {variant:14} {counts[variant]:>12,.0f}",
                        flush=True,
                    )
    finally:
        if postgres is not None:
            postgres.close()
    if args.cpu:
        print(f"\nThe process's CPU µs a request, median of {args.cpu} runs\n")
        print(table(results))
        return 0
    OUT.write_text(json.dumps(results, indent=2) + "\n")
    print()
    print(table(results))
    return 0


# What a part costs: the generated service's count less the count without it
# (spans: tracing without its export, which has its own column).
PARTS = {
    "span export": ("generated", "no export"),
    "spans": ("no export", "no tracing"),
    "access log": ("generated", "no access log"),
    "metrics": ("generated", "no metrics"),
}


def table(results: dict[str, dict[str, dict[str, float]]]) -> str:
    """Instructions a request, bare over generated (as a throughput ratio
    would be), and what each part of the runtime costs; the rest is the
    pipeline, the request id, the log context and the framework's adapter."""
    lines = [
        "| Framework | Endpoint | bare | generated | bare / generated | "
        + " | ".join(PARTS)
        + " | the rest |",
        "| --- | --- | ---: | ---: | ---: | " + " | ".join("---:" for _ in PARTS) + " | ---: |",
    ]
    for framework, endpoints in results.items():
        for endpoint, counts in endpoints.items():
            bare, generated = counts["bare"], counts["generated"]
            costs = [
                counts[with_it] - counts[without] if {with_it, without} <= counts.keys() else None
                for with_it, without in PARTS.values()
            ]
            cells = [f"{cost:,.0f}" if cost is not None else "-" for cost in costs]
            rest = (
                f"{generated - bare - sum(c for c in costs if c is not None):,.0f}"
                if None not in costs
                else "-"
            )
            lines.append(
                f"| {framework} | {endpoint} | {bare:,.0f} | {generated:,.0f} | "
                f"{bare / generated:.2f} | " + " | ".join(cells) + f" | {rest} |"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
