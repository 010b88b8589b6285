"""What encoding a batch of spans for OTLP costs, per span: the SDK's encoder
against the runtime's (runtime/core/otlp.py).

Run it with the interpreter of a generated project, from its directory (it
imports the project's runtime)::

    .venv/bin/python <kit>/bench/otlp_encoding.py

The spans are the service's own: each request makes a SERVER span and a
CLIENT span for its statement, through the runtime's tracing helpers, with
the resource the service builds; each request has its own path, as real
traffic has (so the encoder's table of repeated attributes does not hold
them). Each round encodes a batch never encoded before, once with the SDK's
encoder (``encode_spans(spans).SerializePartialToString()``, what its
exporter does) and once as the runtime's exporter hands it over, the order
alternating between rounds; the figure is the CPU time of the thread
(``time.thread_time_ns``: the machine is shared) per span, the median of the
rounds, for a full batch (512 spans, the batch processor's default) and for
the batch of one request.
"""

from __future__ import annotations

import functools
import gc
import importlib
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

ROUNDS = 41
STATEMENT = "SELECT items.id, items.name, items.created_at FROM items WHERE items.id = ?"


def runtime(name: str) -> ModuleType:
    (package,) = (p.name for p in Path.cwd().iterdir() if (p / "runtime" / "build.py").is_file())
    sys.path.insert(0, str(Path.cwd()))
    return importlib.import_module(f"{package}.runtime.{name}")


def batches(requests: int, count: int) -> list[Sequence[ReadableSpan]]:
    """``count`` batches of ``requests`` requests' spans, each path new."""
    tracing, memory = runtime("tracing"), recorder()
    headers: dict[str, str] = {}
    made: list[Sequence[ReadableSpan]] = []
    for batch in range(count):
        for request in range(requests):
            path = f"/api/items/{batch * requests + request}"
            server = tracing.ServerSpan("GET", path, "http", headers, _Getter())
            span = tracing.database_span("sqlite", "app", None, None, STATEMENT)
            tracing.end_database_span(span)
            server.finish("GET", "/api/items/{item_id}", 200, "")
            server.end()
        made.append(memory.get_finished_spans())
        memory.clear()
    return made


@functools.cache
def recorder() -> InMemorySpanExporter:
    """Where the service's spans go: the global provider, set once."""
    config, tracing = runtime("config"), runtime("tracing")
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=tracing.build_resource(config.Settings.from_env({})))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    trace.set_tracer_provider(provider)
    return memory


class _Getter:
    def get(self, carrier: dict[str, str], key: str) -> list[str] | None:
        value = carrier.get(key)
        return [value] if value is not None else None

    def keys(self, carrier: dict[str, str]) -> list[str]:
        return list(carrier)


def measure(requests: int) -> dict[str, Any]:
    otlp = runtime("otlp")
    encoder = otlp.SpanEncoder()

    def sdk(spans: Sequence[ReadableSpan]) -> bytes:
        return bytes(encode_spans(spans).SerializePartialToString())

    def ours(spans: Sequence[ReadableSpan]) -> bytes:
        # What the SDK's exporter does with the runtime's batch.
        return bytes(otlp._encode_spans(otlp._Batch(spans, encoder)).SerializePartialToString())

    # Enough batches that a round times at least ~1,000 spans.
    per_round = max(1, 500 // requests)
    rounds = batches(requests, ROUNDS * per_round + 1)
    assert sdk(rounds[-1]) == ours(rounds[-1])  # and warms both up
    gc.collect()  # the setup's garbage is not the encoders' to collect
    times: dict[str, list[float]] = {"sdk": [], "ours": []}
    for index in range(ROUNDS):
        these = rounds[index * per_round : (index + 1) * per_round]
        spans = sum(len(b) for b in these)
        pair: list[tuple[str, Callable[[Sequence[ReadableSpan]], bytes]]] = [
            ("sdk", sdk),
            ("ours", ours),
        ]
        for name, encode in pair if index % 2 else reversed(pair):
            started = time.thread_time_ns()
            for batch in these:
                encode(batch)
            times[name].append((time.thread_time_ns() - started) / spans / 1000)
    sdk_us, ours_us = statistics.median(times["sdk"]), statistics.median(times["ours"])
    return {
        "spans": 2 * requests,
        "sdk": sdk_us,
        "ours": ours_us,
        "sdk_range": (min(times["sdk"]), max(times["sdk"])),
        "ours_range": (min(times["ours"]), max(times["ours"])),
    }


def main() -> None:
    import opentelemetry.sdk.version as sdk_version

    print(f"OpenTelemetry SDK {sdk_version.__version__}, Python {sys.version.split()[0]}")
    print("| Batch | SDK µs/span | runtime µs/span | SDK / runtime | SDK range | runtime range |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for requests in (256, 1):
        r = measure(requests)
        print(
            f"| {r['spans']} spans | {r['sdk']:.2f} | {r['ours']:.2f} | {r['sdk'] / r['ours']:.2f} "
            f"| {r['sdk_range'][0]:.1f}-{r['sdk_range'][1]:.1f} "
            f"| {r['ours_range'][0]:.1f}-{r['ours_range'][1]:.1f} |"
        )


if __name__ == "__main__":
    main()
