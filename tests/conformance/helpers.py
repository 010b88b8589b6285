"""Constants and functions shared by the conformance modules."""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any, NamedTuple

import httpx

from kit.otlp import OtlpSink, SpanRecord
from kit.project import Service

HEX32 = re.compile(r"^[0-9a-f]{32}$")
HEX16 = re.compile(r"^[0-9a-f]{16}$")
ITEM_ROUTE = "/api/items/{item_id}"


def rid() -> str:
    """A fresh, valid request id, to find a request's traces in logs and spans."""
    return "t-" + uuid.uuid4().hex


def access_lines(service: Service, request_id: str, count: int = 1) -> list[dict[str, Any]]:
    return service.wait_for_log(
        lambda r: (
            r.get("request_id") == request_id
            and r.get("event") == "request"
            and str(r.get("logger", "")).endswith(".access")
        ),
        count=count,
    )


def server_span(sink: OtlpSink, trace_id: str) -> SpanRecord:
    (span,) = sink.wait_for(lambda s: s.trace_id == trace_id and s.kind == "SERVER")
    return span


def create_item(client: httpx.Client, name: str) -> dict[str, Any]:
    response = client.post("/api/items", json={"name": name})
    assert response.status_code == 201, response.text
    item: dict[str, Any] = response.json()
    return item


def scrape(service: Service, accept: str | None = None) -> httpx.Response:
    headers = {"Accept": accept} if accept else {}
    response = httpx.get(service.base_url + "/metrics", headers=headers)
    assert response.status_code == 200
    return response


def server_pids(master: int) -> set[int]:
    """The master and its children, from /proc."""
    pids = {master}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_bytes().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == master:
            pids.add(int(stat.parent.name))
    return pids


class Traffic(NamedTuple):
    """A service with settings of its own, and the requests a fixture sent it."""

    service: Service
    request_ids: dict[str, str]
