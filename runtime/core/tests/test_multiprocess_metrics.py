"""The multiprocess ``/metrics`` body is what prometheus_client renders for the same files."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import generate_latest
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics

from . import runtime_module

multiprocess = runtime_module("multiprocess")
MultiprocessScrape, Unsupported = multiprocess.MultiprocessScrape, multiprocess.Unsupported

# One worker's metrics, written as worker ``pid`` in ``phase`` 1, 2 or 3: a
# later phase reopens the same files and updates values in place; phase 2
# also appends new series, phase 3 does not ("big" appends enough series for
# the file to outgrow its first 64 KiB; "zero" only sets some gauges to -0.0).
WORKER = """
import sys
from prometheus_client import Counter, Gauge, Histogram, Summary, values

pid, phase = int(sys.argv[1]), sys.argv[2]
values.ValueClass = values.MultiProcessValue(process_identifier=lambda: pid)
MODES = ("all", "liveall", "min", "livemin", "max", "livemax", "sum", "livesum",
         "mostrecent", "livemostrecent")
if phase == "lone":  # a series at zero that only this worker has
    Gauge("g_livesum", "A gauge.", ["x"], multiprocess_mode="livesum").labels(f"lone{pid}").set(0)
    sys.exit()
if phase == "zero":  # no timestamps change (as the most recent ones' would)
    for mode in MODES[:8]:
        Gauge(f"g_{mode}", "A gauge.", ["x"], multiprocess_mode=mode).labels("zero").set(-0.0)
    sys.exit()
jobs = Counter("jobs", 'Jobs "done"\\\\ and\\nmore', ["kind"])
jobs.labels('a"b\\\\c\\nd').inc(pid)
jobs.labels("plain").inc(1.5)
if pid != 2:
    jobs.labels(f"only{pid}").inc(1e21)
# Sums of these depend on the order the files are added in.
Counter("fractions", "Tenths.").inc(pid / 10)
for mode in MODES:
    gauge = Gauge(f"g_{mode}", "A gauge.", ["x"], multiprocess_mode=mode)
    gauge.labels("1").set(pid * (-1 if pid % 2 else 1) * (2 if phase == "2" else 1))
    gauge.labels(f"p{pid % 2}").set(float("inf") if pid == 3 else 1234567.5)
    gauge.labels("nan").set(float("nan") if pid == 2 else pid)
    # Zero, then negative zero: equal, but written differently.
    gauge.labels("zero").set(-0.0 if phase == "3" else 0.0)
    gauge.labels("unset")  # a most recent value that was never set is not shown
Summary("latency", "A summary.").observe(pid)
histogram = Histogram("h", "A histogram.", ["route"], buckets=(0.1, 1, 10))
histogram.labels("x").observe(pid / 2)
histogram.labels(f"y{pid}").observe(100)
histogram.labels("fractions").observe(pid / 10)
histogram.labels("nan").observe(float("nan") if pid == 1 else 1)
Histogram("bare", "No labels.").observe(0.3 * (2 if phase == "2" else 1))
if phase == "2":
    histogram.labels("late").observe(0.05)
    Counter("late", "Appears in phase 2.").inc()
if phase == "big":
    for route in range(400):
        histogram.labels(f"/a/rather/long/route/template/number/{route}/{{id}}").observe(0.2)
"""


def write(directory: Path, pid: int, phase: int | str = 1) -> None:
    subprocess.run(
        [sys.executable, "-c", WORKER, str(pid), str(phase)],
        env={"PROMETHEUS_MULTIPROC_DIR": str(directory)},
        check=True,
    )


def expected(directory: Path, openmetrics: bool) -> list[str]:
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(directory))  # type: ignore[no-untyped-call]
    body = (generate_openmetrics if openmetrics else generate_latest)(registry).decode()
    return sorted(body.splitlines())


def rendered(scrape: Any, openmetrics: bool) -> list[str]:
    return sorted(
        (scrape.render(openmetrics).decode() + ("# EOF\n" if openmetrics else "")).splitlines()
    )


@pytest.mark.parametrize("openmetrics", [False, True], ids=["text", "openmetrics"])
def test_the_body_matches_prometheus_client_as_workers_come_and_go(
    tmp_path: Path, openmetrics: bool
) -> None:
    for pid in (1, 2, 3):
        write(tmp_path, pid)
    scrape = MultiprocessScrape(str(tmp_path))
    first = rendered(scrape, openmetrics)
    assert first == expected(tmp_path, openmetrics)
    assert 'jobs_total{kind="a\\"b\\\\c\\nd"} 6.0' in first
    assert 'bare_bucket{le="+Inf"} 3.0' in first
    assert 'g_max{x="nan"} NaN' in first or 'g_max{x="nan"} 3.0' in first
    assert not any('x="unset"' in line for line in first if line.startswith("g_mostrecent"))

    write(tmp_path, 2, phase=2)  # new values and new series in a file already read
    write(tmp_path, 4)  # a new worker
    again = rendered(scrape, openmetrics)
    assert again == expected(tmp_path, openmetrics)
    assert again != first
    assert 'h_bucket{le="0.1",route="late"} 1.0' in again

    # Its live gauges go, its counts stay.
    mark_process_dead(3, str(tmp_path))  # type: ignore[no-untyped-call]
    want = expected(tmp_path, openmetrics)
    # A worker's file, created but not yet sized (prometheus_client fails on it).
    (tmp_path / "gauge_all_9.db").touch()
    last = rendered(scrape, openmetrics)
    assert last == want
    assert not any('pid="3"' in line for line in last if line.startswith("g_liveall"))
    assert any('pid="3"' in line for line in last if line.startswith("g_all"))


@pytest.mark.parametrize("openmetrics", [False, True], ids=["text", "openmetrics"])
def test_values_written_in_place_are_rendered_again(tmp_path: Path, openmetrics: bool) -> None:
    for pid in (1, 2, 3):
        write(tmp_path, pid)
    scrape = MultiprocessScrape(str(tmp_path))
    assert rendered(scrape, openmetrics) == expected(tmp_path, openmetrics)

    write(tmp_path, 1, phase=3)  # no new series: values only, some now -0.0
    write(tmp_path, 3, phase=3)
    want = expected(tmp_path, openmetrics)
    assert rendered(scrape, openmetrics) == want
    assert 'g_all{pid="1",x="zero"} -0.0' in want
    assert rendered(scrape, openmetrics) == want  # nothing written since
    # The other format from the same reader.
    assert rendered(scrape, not openmetrics) == expected(tmp_path, not openmetrics)


def test_a_gauge_gone_from_zero_to_negative_zero_is_rendered_again(tmp_path: Path) -> None:
    write(tmp_path, 3)  # workers without a NaN, which is never equal to the last one
    write(tmp_path, 4)
    scrape = MultiprocessScrape(str(tmp_path))
    assert rendered(scrape, False) == expected(tmp_path, False)
    write(tmp_path, 4, phase="zero")  # the only change
    assert rendered(scrape, False) == expected(tmp_path, False)
    assert 'g_all{pid="4",x="zero"} -0.0' in rendered(scrape, False)


def test_a_series_at_zero_goes_with_the_last_file_that_had_it(tmp_path: Path) -> None:
    write(tmp_path, 1)
    write(tmp_path, 2)
    write(tmp_path, 2, phase="lone")
    scrape = MultiprocessScrape(str(tmp_path))
    assert 'g_livesum{x="lone2"} 0.0' in rendered(scrape, False)
    mark_process_dead(2, str(tmp_path))  # type: ignore[no-untyped-call]
    after = rendered(scrape, False)
    assert after == expected(tmp_path, False)
    assert not any("lone2" in line for line in after)  # its value did not change: 0 either way


def test_a_file_that_outgrows_its_mapping_is_mapped_again(tmp_path: Path) -> None:
    write(tmp_path, 1)
    write(tmp_path, 2)
    scrape = MultiprocessScrape(str(tmp_path))
    assert rendered(scrape, False) == expected(tmp_path, False)
    size = (tmp_path / "histogram_1.db").stat().st_size
    write(tmp_path, 1, phase="big")
    assert (tmp_path / "histogram_1.db").stat().st_size > size
    assert rendered(scrape, False) == expected(tmp_path, False)


def test_files_beyond_those_kept_mapped_are_read_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(multiprocess, "_KEPT_MAPPED", 2)
    for pid in (1, 2, 3):
        write(tmp_path, pid)
    scrape = MultiprocessScrape(str(tmp_path))
    assert rendered(scrape, False) == expected(tmp_path, False)
    write(tmp_path, 3, phase=2)
    write(tmp_path, 1, phase=3)
    assert rendered(scrape, False) == expected(tmp_path, False)


def test_a_file_written_anew_under_the_same_name_is_parsed_anew(tmp_path: Path) -> None:
    write(tmp_path, 1)
    write(tmp_path, 2, phase=2)
    scrape = MultiprocessScrape(str(tmp_path))
    assert rendered(scrape, False) == expected(tmp_path, False)
    (tmp_path / "histogram_2.db").unlink()
    (tmp_path / "counter_2.db").unlink()
    write(tmp_path, 2)  # fewer series than before, in new files
    assert rendered(scrape, False) == expected(tmp_path, False)


def test_a_prepared_reader_only_joins_the_body(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``prepare`` does a scrape's work ahead of it when the files gained series:
    new files, a file's new series, their lines (laid out and rendered), each
    file's place in the merge."""
    for pid in (1, 2, 3):
        write(tmp_path, pid)
    scrape = MultiprocessScrape(str(tmp_path))
    scrape.prepare()
    write(tmp_path, 2, phase=2)  # new series in a file already parsed
    write(tmp_path, 4)  # a new worker
    write(tmp_path, 4, phase="big")  # most of the slots in a file: merged by ``_gather``
    scrape.prepare()

    def done_already(*args: object) -> None:
        raise AssertionError("prepare() left this to the scrape")

    rendered_again: list[object] = []
    render = multiprocess._Buckets.render

    def counted(self: Any, *args: Any) -> None:
        rendered_again.append(self.labels)
        render(self, *args)

    with monkeypatch.context() as patched:
        patched.setattr(scrape, "_parse", done_already)
        patched.setattr(multiprocess._Buckets, "layout", done_already)
        patched.setattr(multiprocess._Buckets, "render", counted)
        patched.setattr(multiprocess, "_gather", done_already)
        assert rendered(scrape, False) == expected(tmp_path, False)
    # A NaN sum is never equal to the last one: its lines are rendered at every scrape.
    assert set(rendered_again) == {(("route", "nan"),)}

    # A new worker's file of series already known: their sums change.
    shutil.copyfile(tmp_path / "histogram_1.db", tmp_path / "histogram_9.db")
    scrape.prepare()
    rendered_again.clear()
    with monkeypatch.context() as patched:
        patched.setattr(multiprocess._Buckets, "render", counted)
        assert rendered(scrape, False) == expected(tmp_path, False)
    assert set(rendered_again) == {(("route", "nan"),)}
    assert 'h_bucket{le="0.1",route="late"} 1.0' in rendered(scrape, False)

    write(tmp_path, 1, phase=3)  # values only: left to the scrape, which reads them anyway
    with monkeypatch.context() as patched:
        patched.setattr(scrape, "_collect", done_already)
        scrape.prepare()
    assert rendered(scrape, False) == expected(tmp_path, False)

    # A few new series (under the share set here): parsed, their lines left to
    # the scrape, as reading every value would cost more than they do.
    write(tmp_path, 3, phase=2)
    with monkeypatch.context() as patched:
        patched.setattr(multiprocess, "_RENDER_AHEAD", 0.5)
        patched.setattr(scrape, "_collect", done_already)
        scrape.prepare()
    with monkeypatch.context() as patched:
        patched.setattr(scrape, "_parse", done_already)
        assert rendered(scrape, False) == expected(tmp_path, False)


def test_a_worker_prepares_its_scrapes_in_the_background(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    metrics = runtime_module("metrics")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    metrics._multiprocess_scrape.cache_clear()
    reader = metrics._multiprocess_scrape(os.getpid())
    write(tmp_path, 1)
    preparer = metrics.prepare_scrapes(interval=0.02)
    try:
        write(tmp_path, 2, phase=2)  # after the thread started: only it can parse it
        deadline = time.monotonic() + 10
        while "late" not in reader._families and time.monotonic() < deadline:
            time.sleep(0.02)
        assert "late" in reader._families  # no scrape asked for it
    finally:
        preparer.stop()
        metrics._multiprocess_scrape.cache_clear()
    assert rendered(reader, False) == expected(tmp_path, False)
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR")
    assert metrics.prepare_scrapes() is None  # single process: nothing to prepare


def test_what_it_does_not_know_is_left_to_prometheus_client(tmp_path: Path) -> None:
    write(tmp_path, 1)
    (tmp_path / "histogram_1.db").rename(tmp_path / "gaugehistogram_1.db")
    scrape = MultiprocessScrape(str(tmp_path))
    with pytest.raises(Unsupported):
        scrape.render(openmetrics=False)


def test_the_masters_children_are_read_from_its_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    """The scrape's process metrics name each child of the master: listed by
    the master's threads (``/proc/<pid>/task/<tid>/children``), as a scan of
    all of ``/proc`` would find them."""
    metrics = runtime_module("metrics")
    sleepers = [subprocess.Popen(["sleep", "60"]) for _ in range(3)]
    try:
        scanned = metrics._scanned_children(os.getpid())
        assert {sleeper.pid for sleeper in sleepers} <= set(scanned)
        monkeypatch.setattr(metrics, "_scanned_children", lambda parent: [])
        assert metrics._children(os.getpid()) == scanned
    finally:
        for sleeper in sleepers:
            sleeper.kill()
            sleeper.wait()
