"""Contract section 2: configuration, by environment variables only."""

from __future__ import annotations

import ast
import json
import re
import time
import uuid
from pathlib import Path

import httpx
import pytest

from kit.metrics import samples, total
from kit.project import Project, procfile
from tests.conformance.helpers import (
    HEX32,
    Traffic,
    access_lines,
    create_item,
    rid,
    scrape,
    server_span,
)
from tests.conftest import Boot

pytestmark = pytest.mark.boot


@pytest.mark.parametrize(
    ("variable", "value", "others"),
    [
        ("DB_POOL_SIZE", "lots", {}),
        ("LOG_LEVEL", "loud", {}),
        ("GRACEFUL_TIMEOUT", "-1", {}),
        ("REQUEST_TIMEOUT", "soon", {}),
        ("DATABASE_URL", "mysql://db/x", {}),
        ("OTEL_TRACES_EXPORTER", "bogus", {}),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "bogus", {}),
        ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/json", {}),
        # The project is installed without the grpc extra.
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc", {}),
        ("OTEL_TRACES_SAMPLER", "sometimes", {}),
        ("OTEL_TRACES_SAMPLER_ARG", "1.5", {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio"}),
        ("OTEL_SDK_DISABLED", "yes", {}),
    ],
)
def test_an_invalid_setting_stops_the_service_with_one_clear_line(
    project: Project, variable: str, value: str, others: dict[str, str]
) -> None:
    result = project.run(procfile(project.path)["web"], timeout=60, **others, **{variable: value})
    assert result.returncode == 1
    assert result.stderr == ""
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    record = json.loads(lines[0])
    assert record["level"] == "error"
    assert record["variable"] == variable
    assert value in record["error"]


ENV_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")


def _reads_environment(call: ast.Call) -> bool:
    """``os.environ.get``/``setdefault``/``pop``, ``os.getenv``, the config reader's
    methods (``env.integer("PORT", ...)``), Django settings' ``_env`` and ``_flag``,
    and ``ConfigError``, which names the variable it rejects."""
    func = call.func
    if isinstance(func, ast.Attribute):
        owner = ast.unparse(func.value)
        return (
            (owner == "os.environ" and func.attr in {"get", "setdefault", "pop"})
            or (owner == "os" and func.attr == "getenv")
            or owner == "env"
        )
    return isinstance(func, ast.Name) and func.id in {"getenv", "_env", "_flag", "ConfigError"}


def variables_read(project: Path) -> set[str]:
    """Every environment variable the service's own code reads (its tests excepted)."""
    names: set[str] = set()
    for path in project.rglob("*.py"):
        if {".venv", "tests"} & set(path.relative_to(project).parts):
            continue
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            keys: list[ast.AST] = []
            if isinstance(node, ast.Call) and node.args and _reads_environment(node):
                keys = [node.args[0]]
            elif isinstance(node, ast.Subscript) and ast.unparse(node.value) == "os.environ":
                keys = [node.slice]
            for key in keys:
                names |= {
                    constant.value
                    for constant in ast.walk(key)
                    if isinstance(constant, ast.Constant)
                    and isinstance(constant.value, str)
                    and ENV_NAME.match(constant.value)
                }
    return names


def configuration_table(readme: str) -> set[str]:
    """The variables named in the first column of the README's configuration table."""
    section = readme.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    names: set[str] = set()
    for line in section.splitlines():
        if line.startswith("|"):
            names |= set(re.findall(r"`([A-Z][A-Z0-9_]*)`", line.split("|")[1]))
    return names


def test_the_readme_documents_every_variable_the_service_reads(project: Project) -> None:
    read = variables_read(project.path)
    # Reads through the config reader and os.environ.
    assert {"PORT", "DATABASE_URL", "PROMETHEUS_MULTIPROC_DIR"} <= read
    documented = configuration_table((project.path / "README.md").read_text())
    assert read - documented == set()
    # Nor does it document one it ignores, but the SDK's own OTEL_* variables.
    assert {name for name in documented if not name.startswith("OTEL_")} - read == set()


def test_otel_variables_configure_tracing(boot: Boot) -> None:
    service = boot(OTEL_SERVICE_NAME="renamed-service", OTEL_RESOURCE_ATTRIBUTES="team=core")
    trace_id = uuid.uuid4().hex
    httpx.get(
        service.base_url + "/api/items",
        headers={"traceparent": f"00-{trace_id}-{uuid.uuid4().hex[:16]}-01"},
    )
    resource = server_span(service.spans, trace_id).resource
    assert resource["service.name"] == "renamed-service"
    assert resource["team"] == "core"


def test_tracing_can_be_switched_off(boot: Boot) -> None:
    service = boot(OTEL_SDK_DISABLED="true")
    request_id = rid()
    with service.client(headers={"X-Request-ID": request_id}) as client:
        assert client.get("/api/items").status_code == 200
        create_item(client, "untraced")
        assert client.get("/ready").status_code == 200
    lines = access_lines(service, request_id, count=2)
    assert not any("trace_id" in line for line in lines)
    # Everything else keeps working: background work, metrics, readiness.
    service.wait_for_log(
        lambda r: r.get("event") == "items stored" and r.get("request_id") == request_id
    )
    metrics = scrape(service).text
    assert (
        total(metrics, "http_server_request_duration_seconds_count", http_route="/api/items") == 2
    )
    assert samples(metrics, "service_ready")[0].value == 1
    time.sleep(0.5)
    assert service.spans.requests == 0


def test_exporter_none_makes_spans_but_exports_none(quiet: Traffic) -> None:
    (error,) = [
        line
        for line in quiet.service.log_lines()
        if line.get("request_id") == quiet.request_ids["failed"] and line["level"] == "error"
    ]
    assert HEX32.match(error["trace_id"])  # the SDK made the request's span
    time.sleep(0.5)  # several export intervals
    assert quiet.service.spans.requests == 0
