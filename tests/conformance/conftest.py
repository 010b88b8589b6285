"""Services with settings of their own, shared by the modules of several sections.

Session-scoped like those of tests/conftest.py, so each is booted once per framework.
"""

from __future__ import annotations

import uuid

import pytest

from kit.project import Service
from tests.conformance.helpers import Traffic, rid
from tests.conftest import Boot


@pytest.fixture(scope="session")
def quiet(boot: Boot) -> Traffic:
    """Spans made but exported nowhere; only warnings and errors logged."""
    service = boot(OTEL_TRACES_EXPORTER="none", LOG_LEVEL="warning")
    ids = {"served": rid(), "created": rid(), "failed": rid()}
    with service.client() as client:
        assert client.get("/api/items", headers={"X-Request-ID": ids["served"]}).status_code == 200
        created = client.post(
            "/api/items", json={"name": "quiet"}, headers={"X-Request-ID": ids["created"]}
        )
        assert created.status_code == 201
        with service.items_table_dropped():
            failed = client.get("/api/items", headers={"X-Request-ID": ids["failed"]})
        assert failed.status_code == 500
    service.wait_for_log(lambda r: r.get("request_id") == ids["failed"] and r["level"] == "error")
    return Traffic(service, ids)


@pytest.fixture(scope="session")
def verbose(boot: Boot) -> Traffic:
    """Spans written to the log, only those of sampled callers, and every debug line."""
    service = boot(
        OTEL_TRACES_EXPORTER="console",
        OTEL_TRACES_SAMPLER="parentbased_traceidratio",
        OTEL_TRACES_SAMPLER_ARG="0",
        LOG_LEVEL="debug",
    )
    secret = "s3cr3t" + uuid.uuid4().hex
    ids = {"unsampled": rid(), "sampled": rid(), "secret": secret}
    ids["trace_id"], ids["parent"] = uuid.uuid4().hex, uuid.uuid4().hex[:16]
    headers = {"Authorization": f"Bearer {secret}-auth", "Cookie": f"session={secret}-cookie"}
    with service.client(headers=headers) as client:
        client.get("/api/items", headers={"X-Request-ID": ids["unsampled"]})
        client.post("/api/items", json={"name": "verbose"})
        client.post("/api/items", content=b"{", headers={"Content-Type": "application/json"})
        client.get(
            "/api/items",
            headers={
                "X-Request-ID": ids["sampled"],
                "traceparent": f"00-{ids['trace_id']}-{ids['parent']}-01",
            },
        )
    # The server span ends after its children: once it is written, they are.
    service.wait_for_log(
        lambda r: (
            r["event"] == "span"
            and r["span"]["trace_id"] == ids["trace_id"]
            and r["span"]["kind"] == "SERVER"
        )
    )
    return Traffic(service, ids)


@pytest.fixture(scope="session")
def two_workers(boot: Boot) -> Service:
    """The service with two worker processes, for tests that do not count requests."""
    return boot(WEB_CONCURRENCY="2")
