"""A CLIENT span per statement (engine.py's ``trace_statements``), child of the
request's span, whichever way SQLAlchemy runs it (with parameters, without,
``executemany``); a failed statement's span says what failed."""

from __future__ import annotations

from pathlib import Path

import pytest
from opentelemetry.propagators.textmap import DefaultGetter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from sqlalchemy import create_engine, exc, text

from . import runtime_module

engine_module = runtime_module("engine")
spans = runtime_module("spans")
tracing = runtime_module("tracing")


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> InMemorySpanExporter:
    memory = InMemorySpanExporter()
    provider = spans.Provider(Resource.create({}), shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(memory))
    monkeypatch.setattr(tracing, "_tracer", spans.Tracer(provider, "kit.statements"))
    return memory


def test_each_statement_is_a_client_span_of_the_request(
    tmp_path: Path, recorded: InMemorySpanExporter
) -> None:
    database = tmp_path / "app.sqlite3"
    engine = create_engine(f"sqlite:///{database}")
    engine_module.trace_statements(engine)
    with engine.connect():  # the dialect's first-connect queries, outside any trace
        pass
    request = tracing.ServerSpan("GET", "/api/items", "http", {}, DefaultGetter())
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT)")
        connection.execute(
            text("INSERT INTO items (name) VALUES (:name)"), [{"name": "a"}, {"name": "b"}]
        )
        connection.execute(text("SELECT name FROM items WHERE id = :id"), {"id": 1})
        with pytest.raises(exc.OperationalError):
            connection.execute(text("SELECT name FROM no_such_table"))
    request.finish("GET", "/api/items", 200, "")
    request.end()
    engine.dispose()

    finished = recorded.get_finished_spans()
    (server,) = [span for span in finished if span.kind is SpanKind.SERVER]
    statements = [span for span in finished if span.kind is SpanKind.CLIENT]
    described = [dict(span.attributes or {}) for span in statements]
    assert [attributes["db.operation.name"] for attributes in described] == [
        "CREATE",
        "INSERT",
        "SELECT",
        "SELECT",
    ]
    for span, attributes in zip(statements, described, strict=True):
        assert span.parent is not None
        assert span.parent.span_id == server.context.span_id
        assert attributes["db.system.name"] == "sqlite"
        assert attributes["db.namespace"] == str(database)
        assert str(attributes["db.query.text"]).startswith(str(attributes["db.operation.name"]))
    *succeeded, failed = statements
    assert all(
        span.status.status_code is StatusCode.UNSET and not span.events for span in succeeded
    )
    assert failed.status.status_code is StatusCode.ERROR
    assert failed.status.description == "OperationalError"
    (event,) = failed.events
    assert event.name == "exception"
    assert event.attributes is not None
    assert event.attributes["exception.type"] == "sqlite3.OperationalError"


def test_statements_outside_a_request_make_no_span(
    tmp_path: Path, recorded: InMemorySpanExporter
) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'app.sqlite3'}")
    engine_module.trace_statements(engine)
    with engine.connect() as connection:
        connection.execute(text("SELECT 1"))
    engine.dispose()
    assert recorded.get_finished_spans() == ()
