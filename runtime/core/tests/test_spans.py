"""The runtime's spans (spans.py) export what the SDK's spans export: the
service's own spans, and whatever a user's code does to the current span, go
through the runtime's tracer and encoder and through the SDK's tracer and
encoder, and the two messages must agree field by field (times aside), with
the same warnings logged, under the SDK's span limits and samplers. Where a
processor could tell the two spans apart, the SDK's span is used."""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.propagators.textmap import DefaultGetter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import ReadableSpan, SpanLimits, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace import Span as SdkSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    Decision,
    ParentBased,
    Sampler,
    StaticSampler,
    TraceIdRatioBased,
)
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags, TraceState

from . import runtime_module
from .test_otlp_encoding import RESOURCE, VALUES, differences

spans = runtime_module("spans")
tracing = runtime_module("tracing")
otlp = runtime_module("otlp")

NAME = "kit.spans"
Scenario = Callable[[Any], list[trace.Span]]


class SeededIds(IdGenerator):
    """Both tracers draw the same ids in the same order."""

    def __init__(self) -> None:
        self._random = random.Random(15)

    def generate_span_id(self) -> int:
        return self._random.getrandbits(64)

    def generate_trace_id(self) -> int:
        return self._random.getrandbits(128)

    def is_trace_id_random(self) -> bool:
        return True


def headers(trace_id: int, flags: str, state: str = "") -> dict[str, str]:
    carrier = {"traceparent": f"00-{trace_id:032x}-00f067aa0ba902b7-{flags}"}
    if state:
        carrier["tracestate"] = state
    return carrier


def the_services_spans(tracer: Any) -> list[trace.Span]:
    """Requests as the pipeline and the database and HTTP clients record them
    (``run`` has made ``tracer`` theirs)."""
    started: list[trace.Span] = []
    carriers: list[dict[str, str]] = [
        {},
        headers(0x4BF92F3577B34DA6A3CE929D0E0E4736, "01"),
        headers(0x5BF92F3577B34DA6A3CE929D0E0E4736, "00"),
        headers(0x6BF92F3577B34DA6A3CE929D0E0E4736, "01", "vendor=value,other=1"),
        {"traceparent": "garbage"},
    ]
    for number in range(2 * len(carriers)):
        carrier = carriers[number % len(carriers)]
        server = tracing.ServerSpan("GET", f"/api/items/{number}", "http", carrier, DefaultGetter())
        started.append(server.span)
        statement = tracing.database_span(
            "postgresql", "app", "db.internal", 5432, "SELECT items.id FROM items WHERE id = %s"
        )
        started.append(statement)
        if number % 4 == 3:
            tracing.end_database_span(statement, ConnectionError("the database went away ✗"))
        else:
            tracing.end_database_span(statement)
        call = tracing.client_span("POST", "api.example.com", 443, "https://api.example.com/v1")
        started.append(call)
        call.set_attribute("http.response.status_code", 201)
        call.end()
        if number % 5 == 4:
            try:
                raise RuntimeError(f"request {number} failed")
            except RuntimeError as error:
                server.record_exception(error)
            server.finish("GET", "/api/items/{item_id}", 500, "")
        else:
            server.finish("GET", "/api/items/{item_id}" if number % 7 else "", 200, "")
        server.end()
    return started


def what_users_do(tracer: Any) -> list[trace.Span]:
    """A user's code on the current span: every kind of value, keys the SDK
    rejects, events, links, statuses, exceptions, and calls after the end."""
    span = tracer.start_span(
        "work", kind=SpanKind.SERVER, attributes={"url.path": "/", "http.request.method": "GET"}
    )
    linked = SpanContext(0x1234, 0x5678, is_remote=True, trace_state=TraceState([("k", "v")]))
    with trace.use_span(span):
        current = trace.get_current_span()
        current.set_attribute("url.path", "/first")  # set again: moved to the end
        for key, value in VALUES.items():
            current.set_attribute(key, value)
        current.set_attribute("ascii", "again")  # and again, past the plain dict
        current.set_attribute(None, "no key")  # type: ignore[arg-type]
        current.set_attributes({"plain": 1, "list": [1, 2], "other": "x"})
        current.set_attributes({3: "a key that is not a str", "": "empty", "after": True})  # type: ignore[dict-item]
        current.add_event("cache miss", {"key": "items:42", "sizes": [1, 2], "big": "z" * 50})
        current.add_event("stamped", timestamp=1_700_000_000_000_000_000)
        current.add_link(linked, {"why": "batch", "n": 3})
        current.add_link(SpanContext(0, 0, is_remote=False))  # invalid: not kept
        current.add_link(trace.INVALID_SPAN_CONTEXT, {"kept": "for its attributes"})
        current.record_exception(ValueError("bad ✗"), {"extra": 1}, escaped=True)
        current.set_status(Status(StatusCode.ERROR, "first"), "ignored description")
        current.set_status(StatusCode.UNSET)
        current.set_status(Status(StatusCode.UNSET))
        current.set_status(StatusCode.ERROR, "second")
        current.update_name("work done")
    span.end()
    span.set_attribute("late", 1)
    span.set_attributes({"late": 1})
    span.add_event("late")
    span.add_link(linked)
    span.update_name("late")
    span.set_status(StatusCode.OK)
    span.end()
    ok = tracer.start_span("ok")
    ok.set_attributes({"a": 1, "b": "two", "c": 2.5})
    ok.set_attributes({"a": False})
    ok.set_status(StatusCode.OK, "fine")
    ok.set_status(StatusCode.ERROR, "too late: OK is final")
    ok.end()
    with tracer.start_span("quiet") as quiet:
        pass
    try:
        with tracer.start_span("raises") as raising:
            raise KeyError("missing")
    except KeyError:
        pass
    # Past the SDK's default limits (128 attributes, 128 events).
    many = tracer.start_span("many", attributes={f"k{n}": n for n in range(100)})
    for number in range(130):
        many.set_attribute(f"m{number}", number)
        many.add_event(f"e{number}")
    many.end()
    # A mapping whose value needs cleaning, past the room left: the SDK warns
    # of the value before the evictions.
    crowded = tracer.start_span("crowded")
    crowded.set_attributes({f"c{n}": n for n in range(127)})
    crowded.set_attributes({"b": 1, "c": 2, "opaque": object()})
    crowded.end()
    return [span, ok, quiet, raising, many, crowded]


SCENARIOS = {"the_services_spans": the_services_spans, "what_users_do": what_users_do}
LIMITS = {
    "default": None,
    "tight": SpanLimits(
        max_span_attributes=3,
        max_span_attribute_length=4,
        max_events=1,
        max_links=1,
        max_event_attributes=1,
        max_link_attributes=1,
        max_attribute_length=2,
    ),
    "none": SpanLimits(max_span_attributes=0, max_events=0, max_links=0),
    "long": SpanLimits(max_span_attribute_length=12),
}
SAMPLERS: dict[str, Sampler | None] = {
    "default": None,
    "always_off": ALWAYS_OFF,
    "ratio": TraceIdRatioBased(0.5),
    "parent_or_off": ParentBased(ALWAYS_OFF),
    "record_only": StaticSampler(Decision.RECORD_ONLY),
}


def run(
    scenario: Scenario,
    lean: bool,
    limits: SpanLimits | None,
    sampler: Sampler | None,
    monkeypatch: pytest.MonkeyPatch,
) -> tuple[list[ReadableSpan], list[trace.Span]]:
    memory = InMemorySpanExporter()
    options: dict[str, Any] = {
        "resource": RESOURCE,
        "span_limits": limits,
        "id_generator": SeededIds(),
        "sampler": sampler,
        "shutdown_on_exit": False,
    }
    tracer: Any
    if lean:
        provider = spans.Provider(**options)
        tracer = spans.Tracer(provider, NAME)
    else:
        provider = TracerProvider(**options)
        tracer = provider.get_tracer(NAME)
    provider.add_span_processor(SimpleSpanProcessor(memory))
    monkeypatch.setattr(tracing, "_tracer", tracer)
    started = scenario(tracer)
    return list(memory.get_finished_spans()), started


def timeless(message: ExportTraceServiceRequest) -> ExportTraceServiceRequest:
    for resource_spans in message.resource_spans:
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                span.start_time_unix_nano = span.end_time_unix_nano = 0
                for event in span.events:
                    if event.name != "stamped":
                        event.time_unix_nano = 0
    return message


def started_as(span: trace.Span) -> tuple[Any, ...]:
    context = span.get_span_context()
    return (
        span.is_recording(),
        context.trace_id,
        context.span_id,
        int(context.trace_flags),
        context.trace_state.to_header(),
        context.is_remote,
    )


@pytest.fixture
def warnings(caplog: pytest.LogCaptureFixture) -> Iterator[Callable[[], list[str]]]:
    def taken() -> list[str]:
        found = [r.getMessage() for r in caplog.records if r.name.startswith("opentelemetry")]
        caplog.clear()
        return found

    with caplog.at_level(logging.WARNING):
        yield taken


# Limits bear on what a span records, samplers on whether it records: each
# is tried with the other's default.
CASES = [(limits, "default") for limits in LIMITS] + [
    ("default", sampler) for sampler in SAMPLERS if sampler != "default"
]


@pytest.mark.parametrize(("limits", "sampler"), CASES)
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_the_runtimes_spans_export_what_the_sdks_do(
    scenario: str,
    limits: str,
    sampler: str,
    warnings: Callable[[], list[str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    options = (LIMITS[limits], SAMPLERS[sampler], monkeypatch)
    sdk_spans, sdk_started = run(SCENARIOS[scenario], False, *options)
    sdk_warnings = warnings()
    ours, our_started = run(SCENARIOS[scenario], True, *options)
    assert warnings() == sdk_warnings
    assert [started_as(span) for span in our_started] == [started_as(s) for s in sdk_started]
    if SAMPLERS[sampler] is None:
        # Not the SDK's span: otherwise this test would compare the SDK with itself.
        recorded = [span for span in our_started if not isinstance(span, trace.NonRecordingSpan)]
        assert {type(span) for span in recorded} == {spans.RecordingSpan}
        assert len(ours) == len(recorded)
    assert [span.name for span in ours] == [span.name for span in sdk_spans]
    for span in ours:
        assert span.start_time is not None
        assert span.end_time is not None
        assert 0 < span.start_time <= span.end_time
        assert all(e.timestamp >= span.start_time for e in span.events if e.name != "stamped")
    encoded = ExportTraceServiceRequest.FromString(otlp.SpanEncoder().encode(ours))
    assert differences(timeless(encoded), timeless(encode_spans(sdk_spans))) == []


class Watching(SpanProcessor):
    def __init__(self) -> None:
        self.started: list[trace.Span] = []

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        self.started.append(span)


def test_another_processor_gets_the_sdks_span() -> None:
    provider = spans.Provider(RESOURCE, shutdown_on_exit=False)
    tracer = spans.Tracer(provider, NAME)
    provider.add_span_processor(SimpleSpanProcessor(InMemorySpanExporter()))
    assert type(tracer.start_span("lean")) is spans.RecordingSpan
    watching = Watching()
    provider.add_span_processor(watching)
    span = tracer.start_span("seen")
    assert isinstance(span, SdkSpan)
    assert watching.started == [span]


def test_the_sdks_own_metrics_get_the_sdks_span(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED", "true")
    provider = spans.Provider(RESOURCE, shutdown_on_exit=False)
    assert isinstance(spans.Tracer(provider, NAME).start_span("counted"), SdkSpan)


def test_a_disabled_sdk_records_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    provider = spans.Provider(RESOURCE, shutdown_on_exit=False)
    assert not spans.Tracer(provider, NAME).start_span("off").is_recording()


def test_an_unsampled_parent_gives_spans_that_record_nothing() -> None:
    provider = spans.Provider(RESOURCE, shutdown_on_exit=False)
    tracer = spans.Tracer(provider, NAME)
    parent = SpanContext(7, 8, is_remote=True, trace_flags=TraceFlags(TraceFlags.DEFAULT))
    span = tracer.start_span("child", trace.set_span_in_context(trace.NonRecordingSpan(parent)))
    assert not span.is_recording()
    assert span.get_span_context().trace_id == 7
