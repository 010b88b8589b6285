"""What a traced outbound HTTP call costs, per call, for each client the kit could ship.

Run it with the interpreter of a generated project (it needs requests, httpx2
and OpenTelemetry's httpx and requests instrumentations, which the projects
install)::

    .venv/bin/python <kit>/bench/outbound.py

A local receiver (its own process) answers every request at once; each variant
makes the same POST of a small JSON body, on a kept-alive connection, inside a
sampled server span, with the SDK's batch processor and an exporter that drops
what it gets (export is not the client's cost). Variants:

- ``bare``: the client alone;
- ``own``: a CLIENT span made by hand (as runtime/core/tracing.py makes the
  others), ``traceparent`` injected, ``X-Request-ID`` and the duration histogram;
- ``otel``: OpenTelemetry's instrumentation for the client (the span and the
  propagation), plus ``X-Request-ID`` and the histogram as in ``own``.

Each variant runs in a fresh process (the requests instrumentation patches the
library globally); the figure is the client process's CPU time per call
(``time.process_time``: the receiver's is not in it), the fastest of seven rounds of 1,000 calls (the
machine is shared, and noise only ever adds time).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

CALLS = 1000
ROUNDS = 7
BODY = {"event": "item.created", "item": {"id": 1, "name": "bench"}}
RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok"


def serve(port_file: str) -> None:
    """The receiver: answers each request as soon as its body has arrived."""

    class Receiver(asyncio.Protocol):
        def connection_made(self, transport: Any) -> None:
            self.transport, self.buffer = transport, b""

        def data_received(self, data: bytes) -> None:
            self.buffer += data
            while b"\r\n\r\n" in self.buffer:
                head, _, rest = self.buffer.partition(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                if len(rest) < length:
                    return
                self.buffer = rest[length:]
                self.transport.write(RESPONSE)

    async def main() -> None:
        server = await asyncio.get_running_loop().create_server(Receiver, "127.0.0.1", 0)
        with open(port_file, "w") as handle:
            handle.write(str(server.sockets[0].getsockname()[1]))
        await server.serve_forever()

    asyncio.run(main())


def tracing() -> Any:
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import (
        BatchSpanProcessor,
        SpanExporter,
        SpanExportResult,
    )

    class Drop(SpanExporter):
        def export(self, spans: Sequence[Any]) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(Drop()))
    trace.set_tracer_provider(provider)
    return trace.get_tracer("bench")


def recorder() -> Any:
    from prometheus_client import Histogram

    histogram = Histogram(
        "http_client_request_duration_seconds",
        "",
        ["http_request_method", "server_address", "http_response_status_code", "error_type"],
    )

    def record(method: str, host: str, status: int, seconds: float) -> None:
        histogram.labels(method, host, str(status), "").observe(seconds)

    return record


def own_span(tracer: Any, method: str, url: str, host: str, port: int) -> Any:
    from opentelemetry import trace

    return tracer.start_span(
        method,
        kind=trace.SpanKind.CLIENT,
        attributes={
            "http.request.method": method,
            "server.address": host,
            "server.port": port,
            "url.full": url,
        },
    )


def run_sync(client: str, variant: str, url: str) -> list[float]:
    from opentelemetry import propagate, trace

    tracer = tracing()
    record = recorder()
    host, port = "127.0.0.1", int(url.rsplit(":", 1)[1].split("/")[0])
    if client == "requests":
        import requests

        if variant == "otel":
            from opentelemetry.instrumentation.requests import RequestsInstrumentor

            RequestsInstrumentor().instrument()
        session: Any = requests.Session()

        def post(headers: dict[str, str]) -> int:
            return int(session.post(url, json=BODY, headers=headers, timeout=(2, 5)).status_code)

    else:
        import httpx2

        transport: Any = httpx2.HTTPTransport()
        if variant == "otel":
            from opentelemetry.instrumentation.httpx import (
                SyncOpenTelemetryTransportHttpx2 as SyncOpenTelemetryTransport,
            )

            transport = SyncOpenTelemetryTransport(transport)
        session = httpx2.Client(transport=transport, timeout=httpx2.Timeout(5, connect=2))

        def post(headers: dict[str, str]) -> int:
            return int(session.post(url, json=BODY, headers=headers).status_code)

    def call() -> None:
        started = time.perf_counter()
        headers = {"X-Request-ID": "bench"} if variant != "bare" else {}
        if variant == "own":
            span = own_span(tracer, "POST", url, host, port)
            with trace.use_span(span, end_on_exit=False):
                propagate.inject(headers)
            status = post(headers)
            span.set_attribute("http.response.status_code", status)
            span.end()
        else:
            status = post(headers)
        if variant != "bare":
            record("POST", host, status, time.perf_counter() - started)

    return rounds(tracer, call)


def rounds(tracer: Any, call: Any) -> list[float]:
    figures = []
    with tracer.start_as_current_span("request"):
        for _ in range(200):  # warm-up: connection open, caches filled
            call()
        for _ in range(ROUNDS):
            started = time.process_time()
            for _ in range(CALLS):
                call()
            figures.append((time.process_time() - started) / CALLS * 1e6)
    return figures


def run_async(variant: str, url: str) -> list[float]:
    import httpx2
    from opentelemetry import propagate, trace

    tracer = tracing()
    record = recorder()
    host, port = "127.0.0.1", int(url.rsplit(":", 1)[1].split("/")[0])

    async def main() -> list[float]:
        transport: Any = httpx2.AsyncHTTPTransport()
        if variant == "otel":
            from opentelemetry.instrumentation.httpx import (
                AsyncOpenTelemetryTransportHttpx2 as AsyncOpenTelemetryTransport,
            )

            transport = AsyncOpenTelemetryTransport(transport)
        client = httpx2.AsyncClient(transport=transport, timeout=httpx2.Timeout(5, connect=2))

        async def call() -> None:
            started = time.perf_counter()
            headers = {"X-Request-ID": "bench"} if variant != "bare" else {}
            if variant == "own":
                span = own_span(tracer, "POST", url, host, port)
                with trace.use_span(span, end_on_exit=False):
                    propagate.inject(headers)
                status = (await client.post(url, json=BODY, headers=headers)).status_code
                span.set_attribute("http.response.status_code", status)
                span.end()
            else:
                status = (await client.post(url, json=BODY, headers=headers)).status_code
            if variant != "bare":
                record("POST", host, status, time.perf_counter() - started)

        figures = []
        with tracer.start_as_current_span("request"):
            for _ in range(200):
                await call()
            for _ in range(ROUNDS):
                started = time.process_time()
                for _ in range(CALLS):
                    await call()
                figures.append((time.process_time() - started) / CALLS * 1e6)
        await client.aclose()
        return figures

    return asyncio.run(main())


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "serve":
        serve(sys.argv[2])
        return
    if len(sys.argv) > 1 and sys.argv[1] == "variant":
        client, variant, url = sys.argv[2:5]
        figures = run_async(variant, url) if client == "httpx2-async" else None
        figures = figures or run_sync(client, variant, url)
        print(json.dumps(figures))
        return
    port_file = f"/tmp/outbound-bench-{os.getpid()}.port"
    receiver = subprocess.Popen([sys.executable, __file__, "serve", port_file])
    try:
        port = Path(port_file)
        while not port.exists() or not port.read_text():
            time.sleep(0.05)
        url = f"http://127.0.0.1:{port.read_text()}/hook"
        env = {**os.environ, "OTEL_SEMCONV_STABILITY_OPT_IN": "http"}
        print(
            "| Client | bare µs | own span µs | OTel instrumentation µs | own - bare | otel - bare |"
        )
        print("| --- | ---: | ---: | ---: | ---: | ---: |")
        for client in ("requests", "httpx2-sync", "httpx2-async"):
            medians = {}
            for variant in ("bare", "own", "otel"):
                out = subprocess.run(
                    [sys.executable, __file__, "variant", client, variant, url],
                    env=env,
                    capture_output=True,
                    text=True,
                    check=True,
                ).stdout
                medians[variant] = min(json.loads(out))
            print(
                f"| {client} | {medians['bare']:.0f} | {medians['own']:.0f} | "
                f"{medians['otel']:.0f} | {medians['own'] - medians['bare']:.0f} | "
                f"{medians['otel'] - medians['bare']:.0f} |"
            )
    finally:
        receiver.kill()
        os.unlink(port_file)


if __name__ == "__main__":
    main()
