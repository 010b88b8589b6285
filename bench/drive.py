"""One application driven in process, for ``bench/instructions.py``: no server,
no client, only what the application does for a request.

Run by a project's own interpreter (not the kit's), from the directory gunicorn
would serve it from, with the environment the benchmark gives the service:

    python drive.py <wsgi|asgi> <module:attribute> <path> <requests> [--warm N] [--no-metrics] [--cpu]

It serves ``--warm`` requests, then ``requests`` more, and exits; every answer
must be a 200; after each batch it collects and freezes what is left
(``settle``), and exports the spans every ``EXPORT_EVERY`` requests and at
each settle. Two runs that differ only in ``requests`` differ by what those
requests cost, start-up and exit included in both. ``--no-metrics`` makes
prometheus_client's counters, gauges and histograms do nothing, to measure
what recording them costs. ``--cpu`` prints the process's CPU time a request
(all its threads), over the requests after the warm-up.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib
import io
import os
import sys
import time
from collections.abc import Callable
from typing import Any


def load(spec: str) -> Any:
    module, _, attribute = spec.partition(":")
    return getattr(importlib.import_module(module), attribute)


def runtime_module(spec: str, name: str) -> Any:
    """The generated service's ``runtime.<name>`` module; None for the bare app."""
    package = spec.partition(":")[0].split(".")[0]
    try:
        return importlib.import_module(f"{package}.runtime.{name}")
    except ImportError:
        return None


def started(spec: str) -> None:
    """What the generated service's threaded worker runs before its first request."""
    server = runtime_module(spec, "server")
    for callback in getattr(server, "_start_callbacks", ()):
        callback()


def untimed(spec: str) -> None:
    """The generated service's readiness check, run when its last outcome is
    10 s old, is run once only (then every 11 days): under valgrind a run
    lasts a minute, and work due every so many seconds would be charged to its
    requests. (The span export's schedule is the environment's:
    ``bench/instructions.py`` sets it.)"""
    readiness = runtime_module(spec, "readiness")
    if readiness is not None:
        vars(readiness)["REFRESH_SECONDS"] = 1e6


def without_metrics() -> None:
    from prometheus_client import Counter, Gauge, Histogram

    def nothing(*args: Any, **kwargs: Any) -> None:
        return None

    Counter.inc = Gauge.inc = Gauge.dec = Gauge.set = Histogram.observe = nothing  # type: ignore[method-assign]


# The process's CPU time at each settle: the requests' own is the difference.
CPU_MARKS: list[float] = []
# Requests between two exports of the spans they made, on the serving thread.
# Left to the export thread, a loop of requests with no I/O to release the
# GIL at outran it: 1,908 of 10,100 FastAPI spans were dropped ("Queue full")
# and never encoded. 256 requests make at most a batch (512 spans).
EXPORT_EVERY = 256


def export_spans() -> None:
    trace = importlib.import_module("opentelemetry.trace")  # the project's, not the kit's
    flush = getattr(trace.get_tracer_provider(), "force_flush", None)  # not the bare apps'
    if flush is not None:
        flush()


def settle() -> None:
    """The requests' spans exported; then a full collection after the warm-up and
    after the requests, and what survives it frozen: a collection of the old
    generation comes every so many allocations, and one falling in one run and
    not the other would be charged to the requests between them."""
    export_spans()
    CPU_MARKS.append(time.process_time())
    gc.collect()
    gc.freeze()


def wsgi_requests(app: Any, path: str) -> Callable[[], int]:
    def request() -> int:
        status: list[str] = []
        environ = {
            "REQUEST_METHOD": "GET",
            "PATH_INFO": path,
            "QUERY_STRING": "",
            "SCRIPT_NAME": "",
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "8000",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "HTTP_HOST": "127.0.0.1:8000",
            "HTTP_USER_AGENT": "drive",
            "HTTP_ACCEPT": "*/*",
            "REMOTE_ADDR": "127.0.0.1",
            "REMOTE_PORT": "50000",
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(b""),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
            "wsgi.version": (1, 0),
        }
        body = app(environ, lambda s, headers, exc_info=None: status.append(s))
        try:
            b"".join(body)
        finally:
            if hasattr(body, "close"):
                body.close()
        return int(status[0].split()[0])

    return request


async def asgi_run(app: Any, path: str, warm: int, requests: int) -> None:
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    state: dict[str, Any] = {}
    lifespan = asyncio.ensure_future(
        app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": state}, inbox.get, outbox.put)
    )
    await inbox.put({"type": "lifespan.startup"})
    answer = await outbox.get()
    if answer["type"] != "lifespan.startup.complete":
        raise SystemExit(f"lifespan: {answer}")

    async def request() -> int:
        status = 0
        received = False

        async def receive() -> dict[str, Any]:
            nonlocal received
            if not received:
                received = True
                return {"type": "http.request", "body": b"", "more_body": False}
            await asyncio.Event().wait()  # the client never disconnects
            raise AssertionError

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]

        scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.4"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": [(b"host", b"127.0.0.1:8000"), (b"user-agent", b"drive")],
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8000),
            "state": dict(state),
        }
        await app(scope, receive, send)
        return status

    for count in (warm, requests):
        for served in range(1, count + 1):
            if (status := await request()) != 200:
                raise SystemExit(f"GET {path}: {status}")
            if served % EXPORT_EVERY == 0:
                export_spans()
        settle()
    await inbox.put({"type": "lifespan.shutdown"})
    await lifespan


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("interface", choices=("wsgi", "asgi"))
    parser.add_argument("app")
    parser.add_argument("path")
    parser.add_argument("requests", type=int)
    parser.add_argument("--warm", type=int, default=100)
    parser.add_argument("--no-metrics", action="store_true")
    parser.add_argument("--cpu", action="store_true", help="print the requests' CPU µs each")
    args = parser.parse_args()
    sys.path.insert(0, os.getcwd())  # as gunicorn's --chdir
    if args.no_metrics:
        without_metrics()
    # The gunicorn hooks (gunicorn.conf.py) a worker runs after fork and at its
    # exit: tracing and error tracking are set up there.
    hooks = runtime_module(args.app, "gunicorn")
    if hooks is not None:
        hooks.post_fork(None, None)  # before the application, as in gunicorn
    app = load(args.app)
    untimed(args.app)
    if args.interface == "asgi":
        asyncio.run(asgi_run(app, args.path, args.warm, args.requests))
    else:
        started(args.app)
        request = wsgi_requests(app, args.path)
        for count in (args.warm, args.requests):
            for served in range(1, count + 1):
                if (status := request()) != 200:
                    raise SystemExit(f"GET {args.path}: {status}")
                if served % EXPORT_EVERY == 0:
                    export_spans()
            settle()
    if args.cpu:
        # All the process's threads; the span export ran on this one.
        spent = (CPU_MARKS[1] - CPU_MARKS[0]) / args.requests * 1e6
        print(f"cpu {spent:.3f}", file=sys.stderr, flush=True)
    if hooks is not None:
        hooks.worker_exit(None, None)


if __name__ == "__main__":
    main()
