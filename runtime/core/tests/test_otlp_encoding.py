"""The span encoder (otlp.py) writes what the SDK's encoder writes: the same
message, field by field, and the same bytes, for every span and attribute
value the SDK lets through (and leaves out what the SDK leaves out); its
exporter still sends with the SDK's headers, compression and retries."""

from __future__ import annotations

import enum
import gzip
import math
import random
import struct
from collections.abc import Sequence
from types import MappingProxyType
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http import trace_exporter as sdk_exporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
    OTLPSpanExporter as SdkSpanExporter,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceState

from . import runtime_module
from .receiver import Receiver

otlp = runtime_module("otlp")

TRACE_ID = 0x0AF7651916CD43DD8448EB211C80319C
RESOURCE = Resource.create({"service.name": "encoded", "service.version": "1.2.3", "pid": 7})


def differences(ours: Any, sdk: Any, path: str = "request") -> list[str]:
    """Where two messages differ, field by field; floats by their bits, so
    that a NaN equals itself."""
    mine = {field.name: value for field, value in ours.ListFields()}
    theirs = {field.name: value for field, value in sdk.ListFields()}
    found = [f"{path}.{name}: only ours has it" for name in mine.keys() - theirs.keys()]
    found += [f"{path}.{name}: ours lacks it" for name in theirs.keys() - mine.keys()]
    for name in sorted(mine.keys() & theirs.keys()):
        found += _value_differences(mine[name], theirs[name], f"{path}.{name}")
    return found


def _value_differences(ours: Any, sdk: Any, path: str) -> list[str]:
    if hasattr(sdk, "ListFields"):  # a message
        return differences(ours, sdk, path)
    if isinstance(sdk, (str, bytes, int, float)):
        # A field's type is fixed (a oneof's member is told by its name), so
        # the values alone are compared.
        same = _bits(ours) == _bits(sdk) if isinstance(sdk, float) else ours == sdk
        return [] if same else [f"{path}: {ours!r} != {sdk!r}"]
    if len(ours) != len(sdk):  # a repeated field
        return [f"{path}: {len(ours)} values, not {len(sdk)}"]
    found: list[str] = []
    for index, (mine, theirs) in enumerate(zip(ours, sdk, strict=True)):
        found += _value_differences(mine, theirs, f"{path}[{index}]")
    return found


def _bits(value: float) -> bytes:
    return struct.pack("<d", value)


def assert_encoded_as_the_sdk_does(spans: Sequence[ReadableSpan]) -> bytes:
    ours = otlp.SpanEncoder().encode(spans)
    sdk = encode_spans(spans)
    assert differences(ExportTraceServiceRequest.FromString(ours), sdk) == []
    assert ours == sdk.SerializeToString()
    return bytes(ours)


def recording_tracer(
    limits: SpanLimits | None = None,
) -> tuple[trace.Tracer, InMemorySpanExporter]:
    """A tracer, and where the spans it ends go."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=RESOURCE, span_limits=limits)
    provider.add_span_processor(SimpleSpanProcessor(memory))
    schema = "https://opentelemetry.io/schemas/1.21.0"
    return provider.get_tracer("kit.test", "0.1", schema_url=schema), memory


def request_spans(tracer: trace.Tracer, item: int, parent: Context | None = None) -> None:
    """A request's spans, as the service makes them: server, then a statement."""
    with tracer.start_as_current_span(
        "GET",
        parent,
        kind=SpanKind.SERVER,
        attributes={"http.request.method": "GET", "url.path": f"/api/items/{item}"},
    ) as server:
        with tracer.start_as_current_span(
            "SELECT app",
            kind=SpanKind.CLIENT,
            attributes={
                "db.system.name": "sqlite",
                "db.operation.name": "SELECT",
                "db.query.text": "SELECT items.id, items.name FROM items WHERE items.id = ?",
                "db.namespace": "app",
            },
        ):
            pass
        server.update_name("GET /api/items/{item_id}")
        server.set_attribute("http.route", "/api/items/{item_id}")
        server.set_attribute("http.response.status_code", 200 if item % 7 else 500)
        if not item % 7:
            server.record_exception(RuntimeError("the database went away ✗"))
            server.set_status(StatusCode.ERROR, "RuntimeError")


def test_the_services_spans_are_the_sdks_bytes() -> None:
    tracer, memory = recording_tracer()
    remote = trace.set_span_in_context(
        trace.NonRecordingSpan(
            SpanContext(
                TRACE_ID,
                0xB7AD6B7169203331,
                is_remote=True,
                trace_flags=trace.TraceFlags(trace.TraceFlags.SAMPLED),
            )
        )
    )
    for item in range(300):
        request_spans(tracer, item, remote if item % 3 == 0 else None)
    spans = memory.get_finished_spans()
    assert len(spans) == 600
    encoded = assert_encoded_as_the_sdk_does(spans)
    # The length prefixes of a batch this size take several bytes.
    assert len(encoded) > 1 << 14


class Colour(enum.IntEnum):
    RED = 1


class Shade(enum.StrEnum):
    DARK = "dark"


class Ratio(float):
    pass


class Blob(bytes):
    pass


# Every value the SDK's attribute type allows (AnyValue), at its edges.
VALUES: dict[str, Any] = {
    "ascii": "GET",
    "empty": "",
    "unicode": "żółw 🐢 \u0000 \uffff 中文",
    "long": "x" * 200,
    "longer": "y" * 20_000,
    "true": True,
    "false": False,
    "zero": 0,
    "one": 1,
    "varint_edge": 127,
    "two_bytes": 128,
    "minus_one": -1,
    "int64_min": -(1 << 63),
    "int64_max": (1 << 63) - 1,
    "float": 1.5,
    "float_zero": 0.0,
    "negative_zero": -0.0,
    "nan": math.nan,
    "inf": math.inf,
    "minus_inf": -math.inf,
    "tiny": 5e-324,
    "huge": 1.7976931348623157e308,
    "bytes": b"\x00\xff\x80",
    "empty_bytes": b"",
    "none": None,
    "strings": ("a", "", "é"),
    "bools": (True, False),
    "ints": (0, -1, 1 << 40),
    "floats": (0.5, math.nan, -math.inf),
    "empty_tuple": (),
    "with_none": ("a", None, "b"),
    "mixed": (1, "two", 3.0, True, None, b"4"),
    "nested": ((1, 2), (), ("x", ("deep",))),
    "mapping": {"a": 1, "b": {"c": ("d", 2.5)}, "": "empty key"},
    "empty_mapping": {},
    "list": [1, 2],
    "int_enum": Colour.RED,
    "str_enum": Shade.DARK,
    "float_subclass": Ratio(0.25),
    "bytes_subclass": Blob(b"blob"),
    "range": range(3),
    "bytearray": bytearray(b"ab"),
    "read_only_mapping": MappingProxyType({"a": (1, "b")}),
    "": "an empty key",
}


@pytest.mark.parametrize("key", VALUES)
def test_every_attribute_value_through_the_sdk(key: str) -> None:
    tracer, memory = recording_tracer()
    with tracer.start_as_current_span("span", attributes={key: VALUES[key]}) as span:
        span.add_event("event", {key: VALUES[key]})
    spans = memory.get_finished_spans()
    assert_encoded_as_the_sdk_does(spans)


def test_every_attribute_value_as_given() -> None:
    """Attributes as a span made by hand holds them (no SDK cleaning): a
    plain dict, the values as they are, on span, event, link, scope and resource."""
    context = SpanContext(TRACE_ID, 1, is_remote=False)
    span = ReadableSpan(
        "hand-made",
        context,
        attributes=dict(VALUES),
        events=[Event("event", dict(VALUES), timestamp=1)],
        links=[Link(context, dict(VALUES))],
        resource=Resource(dict(VALUES)),
        instrumentation_scope=InstrumentationScope("scope", attributes=dict(VALUES)),
        start_time=1,
        end_time=2,
    )
    assert_encoded_as_the_sdk_does([span])


@pytest.mark.parametrize(
    "value",
    [1 << 63, -(1 << 63) - 1, ("fine", 1 << 64), object(), "\ud800", {"k": "\udfff"}],
    ids=["above_int64", "below_int64", "in_a_sequence", "object", "surrogate", "in_a_mapping"],
)
def test_values_the_sdk_cannot_encode_are_left_out_as_it_does(value: Any) -> None:
    context = SpanContext(TRACE_ID, 1, is_remote=False)
    attributes = {"before": 1, "bad": value, "after": "kept"}
    span = ReadableSpan("bad", context, attributes=attributes, start_time=1, end_time=2)
    request = ExportTraceServiceRequest.FromString(assert_encoded_as_the_sdk_does([span]))
    kept = [a.key for a in request.resource_spans[0].scope_spans[0].spans[0].attributes]
    assert kept == ["before", "after"]


def test_every_span_field() -> None:
    limits = SpanLimits(
        max_span_attributes=3,
        max_events=2,
        max_links=1,
        max_event_attributes=1,
        max_link_attributes=1,
    )
    tracer, memory = recording_tracer(limits)
    state = TraceState([("vendor", "value"), ("other", "1")])
    remote = SpanContext(
        TRACE_ID, 2, is_remote=True, trace_flags=trace.TraceFlags(1), trace_state=state
    )
    local = SpanContext(TRACE_ID + 1, 3, is_remote=False, trace_state=state)
    remote_parent = trace.set_span_in_context(trace.NonRecordingSpan(remote))
    statuses = [
        Status(StatusCode.UNSET),
        Status(StatusCode.OK),
        Status(StatusCode.ERROR),
        Status(StatusCode.ERROR, "boom ✗"),
    ]
    for index, kind in enumerate(SpanKind):
        links = [Link(remote, {"a": 1, "b": 2}), Link(local)] if index % 2 else []
        with tracer.start_as_current_span(
            "" if index == 0 else f"span {index}",
            remote_parent if index % 2 else None,
            kind=kind,
            links=links,
            attributes={f"a{n}": n for n in range(index + 1)},
        ) as span:
            with tracer.start_as_current_span("child"):
                pass
            for number in range(index):
                span.add_event(f"event {number}", {"x": number, "y": str(number)})
            span.add_event("no attributes", timestamp=0)
            span.set_status(statuses[index % len(statuses)])
        try:
            with tracer.start_as_current_span("failed"):
                raise ValueError("Ünicode message")
        except ValueError:
            pass
    spans = memory.get_finished_spans()
    assert any(span.dropped_attributes for span in spans)
    assert any(span.dropped_events for span in spans)
    assert any(span.dropped_links for span in spans)
    assert any(span.parent and span.parent.is_remote for span in spans)
    assert_encoded_as_the_sdk_does(spans)


def test_unended_and_hand_made_spans() -> None:
    """No times, no scope, no parent, a remote link with a trace state (the
    SDK's encoder leaves a link's trace state out), a status with a message only."""
    state = TraceState([("k", "v")])
    context = SpanContext(TRACE_ID, 9, is_remote=True, trace_state=state)
    spans = [
        ReadableSpan("unended", context, start_time=5),
        ReadableSpan("bare", context),
        ReadableSpan(
            "linked",
            context,
            parent=context,
            links=[Link(context, {"k": "v"})],
            status=Status(StatusCode.UNSET, "ignored by the SDK's Status"),
            kind=SpanKind.CONSUMER,
            start_time=0,
            end_time=(1 << 64) - 1,
        ),
    ]
    assert_encoded_as_the_sdk_does(spans)


def test_an_empty_batch() -> None:
    assert_encoded_as_the_sdk_does([])


def test_spans_are_grouped_by_resource_then_scope_as_the_sdk_groups_them() -> None:
    """Equal objects group together whatever their identity, in the order of
    their first span; scopes are equal by name, version and schema URL alone."""
    schema = "https://opentelemetry.io/schemas/1.21.0"
    first = Resource({"service.name": "a"}, schema_url=schema)
    same_as_first = Resource({"service.name": "a"}, schema_url=schema)
    second = Resource({"service.name": "b"})
    scope = InstrumentationScope("lib", "1.0", schema, {"first": True})
    same_scope_other_attributes = InstrumentationScope("lib", "1.0", schema, {"second": True})
    other_scope = InstrumentationScope("other")
    order = [
        (first, scope),
        (second, other_scope),
        (same_as_first, other_scope),
        (first, None),
        (same_as_first, same_scope_other_attributes),
        (second, scope),
        (first, other_scope),
    ]
    spans = [
        ReadableSpan(
            f"span {n}",
            SpanContext(TRACE_ID, n + 1, is_remote=False),
            resource=resource,
            instrumentation_scope=scope,
            start_time=n + 1,
            end_time=n + 2,
        )
        for n, (resource, scope) in enumerate(order * 3)
    ]
    request = ExportTraceServiceRequest.FromString(assert_encoded_as_the_sdk_does(spans))
    assert len(request.resource_spans) == 2


def random_value(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(9 if depth < 3 else 7)
    if kind == 0:
        alphabet = "aZ09 -_/{}.é✓中\U0001f422\x00"
        return "".join(rng.choice(alphabet) for _ in range(rng.choice((0, 1, 5, 130, 300))))
    if kind == 1:
        return rng.random() < 0.5
    if kind == 2:
        edges = (0, 1, -1, 127, 128, 16383, 16384, -(1 << 63), (1 << 63) - 1)
        return rng.choice((*edges, rng.randrange(-(1 << 63), 1 << 63)))
    if kind == 3:
        if rng.random() < 0.3:  # any 64 bits: NaNs with payloads, subnormals, infinities
            return float(struct.unpack("<d", rng.randbytes(8))[0])
        return rng.choice((0.0, -0.0, math.inf, -math.inf, math.nan, rng.uniform(-1e9, 1e9)))
    if kind == 4:
        return rng.randbytes(rng.choice((0, 3, 200)))
    if kind == 5:
        return None
    if kind == 6:
        return rng.choice(("GET", "POST", "/api/items/{item_id}", 200, 404, True))  # repeated
    if kind == 7:
        return tuple(random_value(rng, depth + 1) for _ in range(rng.randrange(4)))
    return {f"k{n}": random_value(rng, depth + 1) for n in range(rng.randrange(3))}


def random_attributes(rng: random.Random) -> dict[str, Any]:
    keys = ("http.route", "url.path", "db.query.text", "k", "ключ", "")
    return {rng.choice(keys) + str(rng.randrange(3)): random_value(rng) for _ in range(6)}


def random_context(rng: random.Random) -> SpanContext:
    state = TraceState([("v", "x")]) if rng.random() < 0.2 else None
    return SpanContext(
        rng.getrandbits(128) or 1,
        rng.getrandbits(64) or 1,
        is_remote=rng.random() < 0.5,
        trace_state=state,
    )


@pytest.mark.parametrize("seed", range(20))
def test_random_spans(seed: int) -> None:
    rng = random.Random(seed)
    resources = [RESOURCE, Resource({"r": random_value(rng)}), Resource({"r": "x"})]
    scopes = [None, InstrumentationScope("a"), InstrumentationScope("b", "2", None, {"s": 1})]
    spans = []
    for _ in range(50):
        start = rng.getrandbits(62)
        events = [
            Event(rng.choice(("exception", "", "é")), random_attributes(rng), start + n)
            for n in range(rng.choice((0, 0, 1, 3)))
        ]
        links = [Link(random_context(rng), random_attributes(rng)) for _ in range(rng.randrange(2))]
        status = rng.choice(list(StatusCode))
        spans.append(
            ReadableSpan(
                rng.choice(("GET /", "SELECT app", "", "✓")),
                random_context(rng),
                parent=random_context(rng) if rng.random() < 0.6 else None,
                resource=rng.choice(resources),
                attributes=random_attributes(rng),
                events=events,
                links=links,
                kind=rng.choice(list(SpanKind)),
                status=Status(status, "why" if status is StatusCode.ERROR else None),
                start_time=start,
                end_time=start + rng.getrandbits(30),
                instrumentation_scope=rng.choice(scopes),
            )
        )
    assert_encoded_as_the_sdk_does(spans)


# The exporter


def some_spans() -> Any:
    tracer, memory = recording_tracer()
    for item in range(5):
        request_spans(tracer, item)
    return memory.get_finished_spans()


def test_the_exporter_sends_the_encoders_bytes_the_sdks_way(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its own encoder (were the SDK's hook gone, this fails), and the SDK's
    compression, headers and retries."""
    spans = some_spans()
    exporter = otlp.OTLPSpanExporter(
        endpoint=f"{receiver.url}/v1/traces",
        headers={"x-tenant": "kit"},
        compression=Compression.Gzip,
    )
    encoded: list[bytes] = []
    encode = exporter._span_encoder.encode

    def recorded(batch: Sequence[ReadableSpan]) -> bytes:
        encoded.append(encode(batch))
        return encoded[-1]

    monkeypatch.setattr(exporter._span_encoder, "encode", recorded)
    receiver.answer(503, then=200)  # the SDK retries a 503
    try:
        assert exporter.export(spans) is SpanExportResult.SUCCESS
    finally:
        exporter.shutdown()
    first, retried = receiver.snapshot()
    assert first.body == retried.body
    assert retried.path == "/v1/traces"
    assert retried.headers["x-tenant"] == "kit"
    assert retried.headers["content-type"] == "application/x-protobuf"
    assert retried.headers["content-encoding"] == "gzip"
    assert encoded == [gzip.decompress(retried.body)]
    assert encoded[0] == encode_spans(spans).SerializeToString()


def test_other_exporters_keep_the_sdks_encoder(receiver: Receiver) -> None:
    otlp.OTLPSpanExporter(endpoint=f"{receiver.url}/v1/traces").shutdown()
    spans = some_spans()
    assert getattr(sdk_exporter, otlp._SDK_ENCODER) is otlp._encode_spans
    assert isinstance(otlp._encode_spans(spans), ExportTraceServiceRequest)
    exporter: SpanExporter = SdkSpanExporter(endpoint=f"{receiver.url}/v1/traces")
    try:
        assert exporter.export(spans) is SpanExportResult.SUCCESS
    finally:
        exporter.shutdown()
    (received,) = receiver.snapshot()
    assert received.body == encode_spans(spans).SerializeToString()
