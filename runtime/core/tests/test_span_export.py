"""The OTLP exporter is made at the first batch, not at the worker's start:
nothing of it is imported before, the batch still reaches the collector, and
an exporter that cannot be made costs the service its spans, never a request."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from . import ROOT, runtime_module
from .receiver import Receiver

tracing = runtime_module("tracing")

# A worker's start, then one request's span; the modules the exporter brings
# (protobuf, the SDK's OTLP exporter, requests) before the span and after its batch.
WORKER = """
import json, sys
from opentelemetry.propagators.textmap import DefaultGetter
from {package}.runtime import config, tracing

def loaded():
    prefixes = ("google.protobuf", "opentelemetry.exporter", "requests")
    return sorted(name for name in sys.modules if name.startswith(prefixes))

provider = tracing.configure_tracing(config.Settings.from_env({{"OTEL_TRACES_EXPORTER": "otlp"}}))
before = loaded()
span = tracing.ServerSpan("GET", "/first", "http", {{}}, DefaultGetter())
span.finish("GET", "/first", 200, "")
span.end()
provider.force_flush()
print(json.dumps([before, loaded()]))
"""


def test_the_exporter_is_imported_at_the_first_batch(receiver: Receiver) -> None:
    package = tracing.__name__.split(".")[0]
    env = os.environ | {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"{receiver.url}/v1/traces"}
    env.pop("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", None)
    env.pop("OTEL_EXPORTER_OTLP_PROTOCOL", None)
    done = subprocess.run(
        [sys.executable, "-c", WORKER.format(package=package)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    before, after = json.loads(done.stdout.splitlines()[-1])
    assert before == []
    assert "opentelemetry.exporter.otlp.proto.http.trace_exporter" in after
    (batch,) = receiver.snapshot()
    assert batch.path == "/v1/traces"
    request = ExportTraceServiceRequest.FromString(batch.body)
    (span,) = request.resource_spans[0].scope_spans[0].spans
    assert span.name == "GET /first"
    assert {kv.key: kv.value.string_value for kv in span.attributes}["url.path"] == "/first"


class Recorder(SpanExporter):
    def __init__(self) -> None:
        self.batches: list[int] = []
        self.closed = False

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.batches.append(len(spans))
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        self.closed = True


def test_an_exporter_that_cannot_be_made_is_told_once(monkeypatch: pytest.MonkeyPatch) -> None:
    attempts: list[int] = []
    told: list[tuple[str, dict[str, Any]]] = []

    class Log:
        def error(self, event: str, **fields: Any) -> None:
            told.append((event, fields))

    monkeypatch.setattr(tracing, "log", Log())

    def make() -> SpanExporter:
        attempts.append(1)
        raise RuntimeError("no credentials")

    exporter = tracing.DeferredExporter(make)
    assert exporter.export([]) is SpanExportResult.FAILURE
    assert exporter.export([]) is SpanExportResult.FAILURE
    assert exporter.force_flush() is True
    exporter.shutdown()
    assert attempts == [1]
    ((event, fields),) = told
    assert event == "span exporter not created"
    assert "no credentials" in fields["error"]


def test_the_exporter_is_made_once_and_shut_down_with_the_processor() -> None:
    made: list[Recorder] = []

    def make() -> SpanExporter:
        made.append(Recorder())
        return made[-1]

    exporter = tracing.DeferredExporter(make)
    exporter.shutdown()
    assert made == []  # nothing was exported: nothing to import or close
    exporter = tracing.DeferredExporter(make)
    assert exporter.export([]) is SpanExportResult.SUCCESS
    assert exporter.export([]) is SpanExportResult.SUCCESS
    exporter.shutdown()
    (recorder,) = made
    assert recorder.batches == [0, 0]
    assert recorder.closed
    assert exporter.export([]) is SpanExportResult.FAILURE  # after shutdown, as the SDK's
