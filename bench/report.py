"""Turn bench/results.json into docs/performance.md and docs/performance.png."""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path
from typing import Any

from bench import agree, instructions
from bench.run import ENDPOINTS, ITEM_PATH, QUICK

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results.json"
PROFILE = ROOT / "bench" / "profile.json"
# What the figures mean: the reasons behind missed targets, with the profile that shows them.
NOTES = ROOT / "bench" / "notes.md"
DOC = ROOT / "docs" / "performance.md"
PLOT = ROOT / "docs" / "performance.png"
VARIANTS = ("bare", "generated", "stack", "previous")
# Variants of the generated service with one part switched off (bench/run.py).
DECOMPOSITION = ("no export", "no tracing", "no access log")
TARGETS = {"trivial": 0.60, "sqlite": 0.90, "postgresql": 0.90}
STACK_TARGET = 2.0  # generated x the usual stack
SCRAPE_TARGET_MS, FIRST_SCRAPE_TARGET_MS = 50, 200


def medians(runs: list[dict[str, Any]]) -> dict[tuple[str, str, str], dict[str, float]]:
    grouped: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for run in runs:
        grouped.setdefault((run["framework"], run["endpoint"], run["variant"]), []).append(run)
    return {
        key: {
            metric: statistics.median(r[metric] for r in group)
            for metric in ("rps", "p50_ms", "p99_ms", "errors")
        }
        | {"repeats": len(group)}
        | {"rps_min": min(r["rps"] for r in group), "rps_max": max(r["rps"] for r in group)}
        for key, group in grouped.items()
    }


def plot(table: dict[tuple[str, str, str], dict[str, float]], frameworks: list[str]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(frameworks), figsize=(4.5 * len(frameworks), 4), squeeze=False)
    for axis, framework in zip(axes[0], frameworks, strict=True):
        positions = range(len(ENDPOINTS))
        highest = STACK_TARGET + 0.1  # the stack target stays in view
        for offset, (versus, colour) in enumerate((("bare", "#4c78a8"), ("stack", "#f58518"))):
            ratios = [
                table[(framework, e, "generated")]["rps"] / table[(framework, e, versus)]["rps"]
                for e in ENDPOINTS
            ]
            highest = max(highest, *ratios)
            axis.bar(
                [p + offset * 0.38 for p in positions],
                ratios,
                width=0.36,
                color=colour,
                label=f"generated / {versus}",
            )
        for p, endpoint in zip(positions, ENDPOINTS, strict=True):
            axis.hlines(TARGETS[endpoint], p - 0.2, p + 0.2, colors="black", linestyles="dashed")
        axis.axhline(STACK_TARGET, color="#f58518", linestyle=":", linewidth=1)
        axis.set_ylim(0, highest * 1.1)
        axis.set_xticks([p + 0.19 for p in positions], ENDPOINTS)
        axis.set_title(framework)
        axis.set_ylabel("throughput ratio")
        axis.legend(fontsize=8, loc="upper right")
    fig.suptitle("Throughput of the generated service relative to the bare app and the usual stack")
    fig.tight_layout()
    fig.savefig(PLOT, dpi=110)


def where_the_time_goes(
    table: dict[tuple[str, str, str], dict[str, float]], frameworks: list[str], previous: str
) -> list[str]:
    """The generated service's cost per request over bare, split by switching parts off.

    The server has one CPU to itself, so 1/throughput is the CPU time a request
    takes; the difference between two variants is what the switched-off part costs.
    """
    lines = [
        "## Where the time goes",
        "",
        "The server process has one CPU to itself, so 1 / throughput is the CPU time",
        "of a request. Each column is the difference between two variants of the same",
        "run, in microseconds per request: the generated service with its OTLP export",
        "off (`OTEL_TRACES_EXPORTER=none`), with tracing off (`OTEL_SDK_DISABLED=true`)",
        "and with its access line off (`LOG_LEVEL=warning`). *Rest* is request ids,",
        "metrics, load shedding and the middleware itself.",
        "",
        "| Framework | Endpoint | bare µs | generated µs | overhead µs | span export | spans | access line | rest |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    decomposed = len(lines)
    for framework in frameworks:
        for endpoint in ENDPOINTS:
            keys = [(framework, endpoint, v) for v in ("bare", "generated", *DECOMPOSITION)]
            if not all(key in table for key in keys):
                continue
            us = {key[2]: 1e6 / table[key]["rps"] for key in keys}
            export = us["generated"] - us["no export"]
            spans = us["no export"] - us["no tracing"]
            access = us["generated"] - us["no access log"]
            rest = us["no tracing"] - us["bare"] - access
            lines.append(
                f"| {framework} | {endpoint} | {us['bare']:.0f} | {us['generated']:.0f} | "
                f"{us['generated'] - us['bare']:.0f} | {export:.0f} | {spans:.0f} | "
                f"{access:.0f} | {rest:.0f} |"
            )
    if len(lines) == decomposed:  # run without --decompose: the profile below splits the cost
        lines = []
    lines.append("")
    if previous:
        lines += [
            f"## What the changes since `{previous}` bought",
            "",
            f"`previous` is the generated service of kit revision `{previous}`, measured",
            "in the same run.",
            "",
            "| Framework | Endpoint | previous req/s | generated req/s | gain |",
            "| --- | --- | ---: | ---: | ---: |",
        ]
        for framework in frameworks:
            for endpoint in ENDPOINTS:
                if (framework, endpoint, "previous") not in table:
                    continue
                before = table[(framework, endpoint, "previous")]["rps"]
                after = table[(framework, endpoint, "generated")]["rps"]
                lines.append(
                    f"| {framework} | {endpoint} | {before:.0f} | {after:.0f} | {after / before:.2f}x |"
                )
        lines.append("")
    return lines


REQUEST_PARTS = (
    "spans",
    "span export",
    "access log",
    "metrics",
    "database instrumentation",
    "request ids, shedding, own middleware",
    "framework and server",
)
DATABASE_PARTS = ("database driver", "ORM and pool")
OTHER = "framework and server"
SCRAPE_PARTS = (
    "reading the workers' files",
    "merging samples",
    "rendering the text",
    "process metrics",
    "framework and server",
)


def shares_table(
    profile: dict[str, Any], frameworks: list[str], kind: str, parts: tuple[str, ...]
) -> list[str]:
    lines = [
        "| Framework | samples | " + " | ".join(parts) + " |",
        "| --- | ---: | " + " | ".join("---:" for _ in parts) + " |",
    ]
    for framework in frameworks:
        if kind in profile.get(framework, {}):
            found = profile[framework][kind]
            shares = " | ".join(f"{100 * found['shares'].get(p, 0):.0f}%" for p in parts)
            lines.append(f"| {framework} | {found['samples']} | {shares} |")
    return lines


def microseconds_table(profile: dict[str, Any], frameworks: list[str]) -> list[str]:
    """Each part's share of the samples times the CPU time of a request while
    profiled (one worker on one CPU: 1 / throughput), in microseconds."""
    parts = (*REQUEST_PARTS[:-1], *DATABASE_PARTS, OTHER)
    lines = [
        "Microseconds per request by part: the part's share of the samples times the",
        "CPU time of a request while it was profiled (1 / throughput; the worker has",
        "one CPU to itself). The Python time of threads not holding the GIL (the",
        "database driver's, a write to stdout) is in the total but no part's share.",
        "",
        "| Framework | Endpoint | µs per request | " + " | ".join(parts) + " |",
        "| --- | --- | ---: | " + " | ".join("---:" for _ in parts) + " |",
    ]
    for framework in frameworks:
        for endpoint in ("trivial", "sqlite"):
            found = profile.get(framework, {}).get(endpoint)
            if not found or not found.get("rps"):
                continue
            total = 1e6 / found["rps"]
            cells = " | ".join(f"{total * found['shares'].get(p, 0):.0f}" for p in parts)
            lines.append(f"| {framework} | {endpoint} | {total:.0f} | {cells} |")
    return lines


def the_profile(profile: dict[str, Any], frameworks: list[str]) -> list[str]:
    """bench/profile.json: py-spy's samples of the generated service, by part."""
    lines = [
        "## The profile",
        "",
        "`python -m bench.profile` (run by `make bench`) samples the generated service's",
        "worker with py-spy at 250 Hz, only the thread holding the GIL, so each sample is",
        "a moment of Python CPU time. A sample is charged to the innermost frame that",
        "belongs to a part of the observability stack, otherwise to the framework and server.",
        "",
        "`GET /` under wrk, one worker (share of samples):",
        "",
        *shares_table(profile, frameworks, "trivial", REQUEST_PARTS),
        "",
        f"`GET {ITEM_PATH}` on SQLite (share of samples):",
        "",
        *shares_table(profile, frameworks, "sqlite", (*REQUEST_PARTS[:-1], *DATABASE_PARTS, OTHER)),
        "",
        *microseconds_table(profile, frameworks),
        "",
        "`/metrics` scraped in a loop, 4 workers in multiprocess mode, 50 routes x 18",
        "status codes x 2 methods recorded by each (share of samples):",
        "",
        *shares_table(profile, frameworks, "scrape", SCRAPE_PARTS),
    ]
    lines += ["", "The scrape's size:", ""]
    for framework in frameworks:
        if framework in profile and "bytes" in profile[framework]["scrape"]:
            found = profile[framework]["scrape"]
            lines.append(
                f"- {framework}: {found['lines']} sample lines in {found['bytes'] / 1e6:.1f} MB."
            )
    lines += [
        "",
        "Importing the web process's application (`python -X importtime`), own import",
        "time summed by top-level package; most of a cold start:",
        "",
    ]
    for framework in frameworks:
        if framework in profile and "imports" in profile[framework]:
            found = profile[framework]["imports"]
            top = ", ".join(f"{package} {ms:.0f} ms" for package, ms in found["top"])
            lines.append(
                f"- {framework} (`import {found['module']}`): {found['total_ms']:.0f} ms; {top}."
            )
    lines += ["", "Functions with the most samples of their own (`GET /`):", ""]
    for framework in frameworks:
        if framework not in profile:
            continue
        top = ", ".join(
            f"`{leaf}` {100 * share:.1f}%"
            for leaf, share in profile[framework]["trivial"]["top"][:6]
        )
        lines.append(f"- {framework}: {top}.")
    lines.append("")
    return lines


def main() -> int:
    data = json.loads(RESULTS.read_text())
    table = medians(data["runs"])
    frameworks = sorted({run["framework"] for run in data["runs"]})
    settings = data["settings"]
    lines = [
        "# Performance",
        "",
        "What observability costs in a generated service, measured by `make bench`",
        "(`bench/run.py`). Every figure below comes from one run of that command on the",
        "machine described; nothing is estimated. Regenerate with `make bench`.",
        "",
        "## Method",
        "",
        "- For each framework, three variants serve the same endpoints with the same",
        "  server (gunicorn, one worker, the same worker class and threads): **bare**",
        "  (the framework alone, serving the example's endpoints as the template writes",
        "  them), **generated** (the template as shipped: JSON access",
        "  log, metrics, tracing sampled at 100% and exported over OTLP to a local",
        "  sink, request ids) and **stack** (the bare app with the usual libraries;",
        "  see `bench/apps`).",
        "- wrk, one thread, 16 connections for FastAPI and 6 for Flask and Django (threaded",
        "  workers serve `WEB_THREADS - 2` = 6 requests at once and shed the rest, by design),",
        f"  {settings['duration']:g} s each (a server's first run on an endpoint after a "
        f"{settings['warmup']:g} s warm-up), {settings['repeats']} repeats interleaved (the",
        "  variant that goes first rotates); tables show medians, and *range* the lowest",
        "  and highest of the repeats. The server is pinned",
        "  to CPU 0 and wrk to CPU 1 with `taskset`.",
        "- Endpoints: `GET /` (trivial, touches nothing) and `GET /api/items/42` on SQLite",
        "  and on a local PostgreSQL 15.",
        "- Each variant is started once per database and serves that database's endpoints",
        "  through every repeat: 18 starts in all, against 81 when each run had its own.",
        f"- This run took {data.get('elapsed_s', 0) / 60:.1f} minutes (`python -m bench.run`),",
        "  the profile below about two more. `make bench-quick` is the quick mode (see",
        "  *Quick mode* at the end).",
        "",
        "## Machine",
        "",
        f"- {data['machine']['cpu']}, {data['machine']['cpus']} CPUs, Linux {data['machine']['kernel']};"
        f" measured {data['machine']['date']}; {data['machine']['wrk']}.",
        *(
            [
                f"- Interpreter speed: ten million additions in a Python loop took"
                f" {data['machine']['loop_s']} s of CPU (Python {data['machine']['python']},"
                " the best of three). Milliseconds compare only between runs of a like"
                " figure; ratios compare across runs."
            ]
            if "loop_s" in data["machine"]
            else []
        ),
    ]
    for framework in frameworks:
        versions = ", ".join(f"{k} {v}" for k, v in sorted(data["versions"][framework].items()))
        lines.append(f"- {framework}: {versions}.")
    lines += ["", "## Throughput and latency", ""]
    for framework in frameworks:
        lines += [
            f"### {framework}",
            "",
            "| Endpoint | Variant | req/s | range | p50 ms | p99 ms | non-2xx | vs bare | vs stack |",
            "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for endpoint in ENDPOINTS:
            bare = table[(framework, endpoint, "bare")]["rps"]
            stack = table[(framework, endpoint, "stack")]["rps"]
            for variant in VARIANTS:
                if (framework, endpoint, variant) not in table:
                    continue
                row = table[(framework, endpoint, variant)]
                lines.append(
                    f"| {endpoint} | {variant} | {row['rps']:.0f} | "
                    f"{row['rps_min']:.0f}-{row['rps_max']:.0f} | {row['p50_ms']:.2f} | "
                    f"{row['p99_ms']:.2f} | {row['errors']:.0f} | {row['rps'] / bare:.2f} | "
                    f"{row['rps'] / stack:.2f} |"
                )
        lines.append("")
    lines += where_the_time_goes(table, frameworks, data["settings"].get("previous", ""))
    lines += [
        "## Targets",
        "",
        "| Framework | Target | Measured | Met |",
        "| --- | --- | ---: | --- |",
    ]
    for framework in frameworks:
        for endpoint in ENDPOINTS:
            generated = table[(framework, endpoint, "generated")]["rps"]
            ratio = generated / table[(framework, endpoint, "bare")]["rps"]
            lines.append(
                f"| {framework} | {endpoint}: ≥ {TARGETS[endpoint]:.2f} x bare | {ratio:.2f} | "
                f"{'yes' if ratio >= TARGETS[endpoint] else 'no'} |"
            )
            versus_stack = generated / table[(framework, endpoint, "stack")]["rps"]
            lines.append(
                f"| {framework} | {endpoint}: ≥ {STACK_TARGET:g} x stack | {versus_stack:.2f} | "
                f"{'yes' if versus_stack >= STACK_TARGET else 'no'} |"
            )
        starts = data["cold_start_s"][framework]
        cold = statistics.median(starts["generated"]) / statistics.median(starts["bare"])
        lines.append(
            f"| {framework} | cold start ≤ 1.5 x bare | {cold:.2f} | {'yes' if cold <= 1.5 else 'no'} |"
        )
        first, *later = data["scrape_ms"][framework]
        scrape = statistics.median(later)
        lines.append(
            f"| {framework} | one scrape, 4 workers, ≤ {SCRAPE_TARGET_MS} ms | {scrape:.1f} ms | "
            f"{'yes' if scrape <= SCRAPE_TARGET_MS else 'no'} |"
        )
        lines.append(
            f"| {framework} | the first scrape, ≤ {FIRST_SCRAPE_TARGET_MS} ms | {first:.1f} ms | "
            f"{'yes' if first <= FIRST_SCRAPE_TARGET_MS else 'no'} |"
        )
    lines += [
        "",
        "## Cold start, memory, scrape",
        "",
        "| Framework | Variant | exec → /ready 200, median s | RSS master KiB | RSS worker KiB |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    for framework in frameworks:
        for variant in VARIANTS:
            if variant not in data["cold_start_s"][framework]:
                continue
            rss = data["rss_kib"].get(framework, {}).get(variant, {})
            worker = next((v for k, v in rss.items() if k.startswith("worker")), 0)
            lines.append(
                f"| {framework} | {variant} | {statistics.median(data['cold_start_s'][framework][variant]):.2f} | "
                f"{rss.get('master', 0)} | {worker} |"
            )
    lines += [
        "",
        "One `/metrics` scrape of the generated service with 4 workers in multiprocess",
        "mode, after each worker recorded 50 routes x 18 status codes x 2 methods"
        + (
            f", each after {data['requests_per_scrape']} requests to `GET /` (light traffic):"
            if data.get("requests_per_scrape")
            else " (no requests between the scrapes):"
        )
        + (
            f" the first {data['scrape_after_s']:g} s after the workers' files were written,"
            " as a short scrape interval would (the workers parse new series in the"
            " background, docs/contract.md section 7)."
            if data.get("scrape_after_s")
            else ""
        ),
        "",
    ]
    for framework in frameworks:
        timings = sorted(data["scrape_ms"][framework])
        lines.append(
            f"- {framework}: median {statistics.median(timings):.1f} ms, "
            f"max {timings[-1]:.1f} ms over {len(timings)} scrapes."
        )
        earlier = sorted(data.get("previous_scrape_ms", {}).get(framework, []))
        if earlier:
            lines.append(
                f"  The previous revision ({data['settings']['previous']}): median "
                f"{statistics.median(earlier):.1f} ms, max {earlier[-1]:.1f} ms."
            )
    lines += ["", "Spans exported to the sink during the throughput runs (OTLP requests):", ""]
    for framework in frameworks:
        lines.append(f"- {framework}: {data['spans_exported'][framework]} export requests.")
    lines += ["", "![Throughput ratios](performance.png)", ""]
    if PROFILE.exists():
        lines += the_profile(json.loads(PROFILE.read_text()), frameworks)
    if QUICK.exists():
        lines += ["## Quick mode", "", *agree.table(data, json.loads(QUICK.read_text())), ""]
    if instructions.OUT.exists():
        lines += [
            "## Instructions a request",
            "",
            "`make bench-instructions` (`bench/instructions.py`, a run of its own, not this",
            "one's): each variant's application driven in process under callgrind, no",
            "server or client; instructions one request costs, and what each part of the",
            "runtime costs (the generated service less the service with that part off).",
            "",
            instructions.table(json.loads(instructions.OUT.read_text())),
            "",
        ]
    if NOTES.exists():
        lines += [NOTES.read_text()]
    DOC.write_text("\n".join(lines))
    plot(table, frameworks)
    print(f"wrote {DOC.relative_to(ROOT)} and {PLOT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
