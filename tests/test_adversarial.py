"""What real clients, broken proxies and scanners send, against every framework's service.

Each case is written on a raw socket, byte for byte, from RFC 9110 (HTTP
semantics), RFC 9112 (HTTP/1.1 messages), RFC 8259 (JSON) and
docs/contract.md, to the real gunicorn started from the generated Procfile.
Whatever the bytes, the answer is a 4xx (the contract's JSON error body when
the service answers, the server's own page when its HTTP parser refuses the
request, contract section 3), the answer the contract names for a request
that is unusual but valid, or a closed connection where HTTP leaves nothing to
answer: never a 5xx, never a hang. Afterwards the service still serves, every
stdout line is still one JSON object, nothing was logged or counted as an
unhandled exception, and ``/metrics`` still passes ``promtool check metrics``.

Slow clients (section 9: probes are answered even when the service is busy)
and the FastAPI service's own OpenAPI document (schemathesis) close the tier.
The answers are those of the contract's "Malformed and hostile requests".
"""

from __future__ import annotations

import gzip
import json
import re
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from kit.metrics import OPENMETRICS, families, samples
from kit.project import Service
from kit.rawhttp import (
    CLOSED,
    RESET,
    TIMEOUT,
    HalfClose,
    Part,
    Probe,
    Reply,
    ResponseReader,
    SlowClients,
    connect,
    exchange,
    get_request,
    probe,
    probe_for,
    send_parts,
)
from kit.system import require
from tests.conftest import Boot

pytestmark = pytest.mark.boot

LIMIT = 1024 * 1024  # MAX_REQUEST_BODY_BYTES's default (contract, section 2)
SAFE_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
HEX32 = re.compile(r"[0-9a-f]{32}")
EXEMPT = {"/healthz", "/ready", "/metrics"}
DURATION_COUNT = "http_server_request_duration_seconds_count"
# The contract's error codes for the statuses whose code is not the reason phrase.
CODES = {
    400: {"invalid_json", "bad_request"},
    413: {"payload_too_large"},
    422: {"validation_error"},
}


# --- The service under attack ------------------------------------------------------------


@pytest.fixture(scope="module")
def target(boot: Boot) -> Service:
    """A service of this tier's own: hostile requests must not disturb the
    conformance suite's shared one, whatever they do to it."""
    return boot()


@pytest.fixture(scope="module")
def promtool() -> str:
    return require("promtool")["promtool"]


@dataclass
class Mark:
    """Where the service's output (its whole lines) and 5xx count stood before a case."""

    lines: int
    server_errors: float


def server_errors(exposition: str) -> float:
    """Requests the service counted with a 5xx status."""
    return sum(
        sample.value
        for sample in samples(exposition, DURATION_COUNT)
        if sample.labels.get("http_response_status_code", "").startswith("5")
    )


def scrape(service: Service) -> str:
    reply = exchange(service.port, get_request("/metrics"), timeout=5)
    assert reply.status == 200, f"/metrics: {reply.describe()}"
    return reply.body.decode()


def mark(service: Service) -> Mark:
    time.sleep(0.05)  # late lines of the test before (one that failed early) fall before the mark
    return Mark(len(service.log_lines()), server_errors(scrape(service)))


def lines_since(service: Service, since: Mark) -> list[dict[str, Any]]:
    # Every stdout line is one JSON object, or this fails.
    return service.log_lines()[since.lines :]


def assert_unharmed(service: Service, since: Mark, promtool: str) -> None:
    """The service still serves, and nothing since ``since`` was an unhandled
    exception: no line with its signature (level error with a traceback,
    contract section 5), no 5xx counted, and the scrape is still valid."""
    time.sleep(0.1)  # servers log some failures after the answer, or once the client left
    for path in ("/healthz", "/api/items"):
        checked = probe(service.port, path, timeout=5)
        assert checked.reply.status == 200, f"afterwards, {checked}"
    exceptions = [
        f"{line.get('logger')}: {line.get('event')} | "
        + str(line.get("exception", "")).strip().splitlines()[-1][:300]
        for line in lines_since(service, since)
        if line.get("level") in ("error", "critical") and line.get("exception")
    ]
    assert not exceptions, f"logged as unhandled exceptions: {exceptions}"
    exposition = scrape(service)
    assert server_errors(exposition) == since.server_errors, "a 5xx was counted"
    linted = subprocess.run(
        [promtool, "check", "metrics"], input=exposition, capture_output=True, text=True
    )
    assert linted.returncode == 0, f"promtool: {linted.stdout}{linted.stderr}"


def assert_contract_answer(reply: Reply, method: str) -> None:
    """An answer by the service carries a safe request id and, for an error,
    the contract's JSON body (sections 3 and 4); one without an id is the
    server's own, which only its HTTP parser's refusals (a 4xx) may be."""
    assert reply.status is not None
    request_id = reply.header("x-request-id")
    if request_id is None:
        assert 400 <= reply.status < 500, (
            f"an answer without X-Request-ID that is no parser refusal: {reply.describe()}"
        )
        return
    assert SAFE_ID.fullmatch(request_id), f"unsafe X-Request-ID echoed: {request_id!r}"
    if reply.status == 405:
        assert reply.header("allow"), "a 405 without Allow (RFC 9110, section 15.5.6)"
    if reply.status < 400 or method == "HEAD":
        return
    assert (reply.header("content-type") or "").startswith("application/json"), reply.describe()
    body = reply.json()
    codes = CODES.get(reply.status) or {
        HTTPStatus(reply.status).phrase.lower().replace(" ", "_").replace("-", "_")
    }
    assert body.get("error") in codes, f"error code for {reply.status}: {body}"
    assert isinstance(body.get("message"), str) and body["message"], body
    assert body.get("request_id") == request_id, body


# --- The cases ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Expect:
    """Which outcomes a case allows."""

    statuses: tuple[int, ...] = ()  # answers that are fine besides any 4xx (if allowed)
    any_4xx: bool = True  # any client error is a fine answer
    close: bool = True  # so is a connection closed (or reset) without an answer
    wait: bool = False  # HTTP leaves the server waiting for more: no answer is fine
    closes_after: bool = False  # RFC 9112 says the server closes after answering

    def allows(self, status: int) -> bool:
        return status in self.statuses or (self.any_4xx and 400 <= status < 500)


def refused(*statuses: int, closes_after: bool = False) -> Expect:
    """A malformed request: a 4xx (one of ``statuses`` when named), or the connection ends."""
    return Expect(statuses, any_4xx=not statuses, closes_after=closes_after)


def answered(*statuses: int) -> Expect:
    """Unusual but valid, or wrong in a way the service must answer: one of ``statuses``."""
    return Expect(statuses, any_4xx=False, close=False)


def either(*statuses: int, closes_after: bool = False) -> Expect:
    """Valid, or invalid in a way HTTP lets a server accept: ``statuses`` or any 4xx."""
    return Expect(statuses, closes_after=closes_after)


def unanswerable() -> Expect:
    """The client stops before its message is complete and waits: the server
    may wait too. A 4xx or a close is fine, a 5xx is not; nor is anything
    logged as an unhandled exception once the client gives up."""
    return Expect(wait=True)


@dataclass(frozen=True)
class Case:
    id: str
    parts: tuple[Part, ...]
    expect: Expect
    why: str = ""
    timeout: float = 5.0

    @property
    def start(self) -> bytes:
        first = next(part for part in self.parts if isinstance(part, bytes))
        return first.lstrip(b"\r\n").split(b"\r\n", 1)[0].split(b"\n", 1)[0]

    @property
    def method(self) -> str:
        return self.start.split(b" ", 1)[0].decode("latin-1")

    @property
    def exempt(self) -> bool:
        """A probe or the scrape, which writes no access line (contract, section 5)."""
        target = self.start.split(b" ")[1] if self.start.count(b" ") >= 1 else b""
        return urlsplit(target.decode("latin-1")).path in EXEMPT


HOST = b"Host: 127.0.0.1"
JSON = b"Content-Type: application/json"
CLOSE = b"Connection: close"
ITEM = b'{"name": "adversarial"}'


def message(start: bytes, *fields: bytes, body: bytes = b"", close: bool = True) -> bytes:
    lines = [start, *fields, *([CLOSE] if close else [])]
    return b"".join(line + b"\r\n" for line in lines) + b"\r\n" + body


def get(target: bytes, *fields: bytes, method: bytes = b"GET") -> bytes:
    return message(method + b" " + target + b" HTTP/1.1", HOST, *fields)


def post(body: bytes, *fields: bytes, content_type: bytes = JSON) -> bytes:
    length = b"Content-Length: %d" % len(body)
    return message(b"POST /api/items HTTP/1.1", HOST, content_type, length, *fields, body=body)


def chunked(body: bytes, *fields: bytes, coding: bytes = b"chunked", close: bool = True) -> bytes:
    te = b"Transfer-Encoding: " + coding
    return message(b"POST /api/items HTTP/1.1", HOST, JSON, te, *fields, body=body, close=close)


def chunks(data: bytes, size: int = 7) -> bytes:
    pieces = [data[i : i + size] for i in range(0, len(data), size)]
    return b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for piece in pieces) + b"0\r\n\r\n"


def case(
    id: str, request: bytes | tuple[Part, ...], expect: Expect, why: str = "", timeout: float = 5.0
) -> Any:
    parts = (request,) if isinstance(request, bytes) else request
    return pytest.param(Case(id, parts, expect, why, timeout), id=id)


WAIT = 2.5  # how long a client that stopped mid-message waits for an answer
PADDED = b'{"name": "padded"}'
DEEP_ARRAYS = b"[" * 100_000 + b"]" * 100_000
DEEP_OBJECTS = b'{"a":' * 100_000 + b"1" + b"}" * 100_000

CASES = [
    # Request line (RFC 9112, section 3).
    case("request-line-no-version", b"GET /\r\n\r\n", refused(), "HTTP/0.9 form, no version"),
    case(
        "request-line-bad-version", get(b"/api/items").replace(b"HTTP/1.1", b"HTTP/1.x"), refused()
    ),
    case(
        "request-line-version-9.9",
        get(b"/api/items").replace(b"HTTP/1.1", b"HTTP/9.9"),
        Expect((505,)),
        "505 is the version refusal RFC 9110 section 15.6.6 names",
    ),
    case(
        "request-line-version-2.0",
        get(b"/api/items").replace(b"HTTP/1.1", b"HTTP/2.0"),
        Expect((200, 505)),
    ),
    case("request-line-space-in-target", get(b"/api/ items"), refused()),
    case("request-line-target-not-origin-form", get(b"api/items"), either(404)),
    case("request-line-absolute-form", get(b"http://127.0.0.1/api/items"), answered(200)),
    case("request-line-asterisk-form", get(b"*", method=b"OPTIONS"), either(200, 204)),
    case("request-line-raw-utf8", get("/api/items/é".encode()), either(404)),
    case("request-line-raw-control", get(b"/api/\x7fitems"), refused()),
    case("request-line-bare-lf", get(b"/api/items").replace(b"\r\n", b"\n"), either(200)),
    case(
        "request-line-after-empty-lines",
        b"\r\n\r\n" + get(b"/api/items"),
        either(200),
        "RFC 9112 section 2.2: should be ignored",
    ),
    # Methods (RFC 9110, section 9).
    case("method-bad-token", get(b"/api/items", method=b"G(T"), refused()),
    case("method-lowercase", get(b"/api/items", method=b"get"), refused()),
    case("method-overlong", get(b"/api/items", method=b"A" * 1000), refused()),
    case("method-propfind", get(b"/api/items", method=b"PROPFIND"), answered(405)),
    case("method-trace", get(b"/api/items", method=b"TRACE"), refused()),
    case("method-connect", get(b"127.0.0.1:80", method=b"CONNECT"), refused()),
    case("method-delete-item", get(b"/api/items/1", method=b"DELETE"), answered(405)),
    case("method-options", get(b"/api/items", method=b"OPTIONS"), either(200, 204)),
    case(
        "method-head-items",
        get(b"/api/items", method=b"HEAD"),
        answered(200),
        "RFC 9110 section 9.1: every general-purpose server supports GET and HEAD",
    ),
    case("method-head-root", get(b"/", method=b"HEAD"), answered(200)),
    case("method-head-healthz", get(b"/healthz", method=b"HEAD"), answered(200)),
    case(
        "method-get-with-body", get(b"/api/items", b"Content-Length: 5") + b"hello", answered(200)
    ),
    # Header fields (RFC 9110 section 5, RFC 9112 section 5).
    case("header-obs-fold", get(b"/api/items", b"X-A: a", b" folded"), either(200)),
    case("header-nul-in-value", get(b"/api/items", b"X-A: a\x00b"), refused()),
    case("header-bare-cr-in-value", get(b"/api/items", b"X-A: a\rb"), either(200)),
    case("header-bare-lf-in-section", get(b"/api/items", b"X-A: a\nX-B: b"), either(200)),
    case("header-no-colon", get(b"/api/items", b"NoColon"), refused()),
    case(
        "header-space-before-colon",
        get(b"/api/items", b"X-A : a"),
        refused(400),
        "RFC 9112 section 5.1: MUST be 400",
    ),
    case("header-empty-name", get(b"/api/items", b": a"), refused()),
    case("header-non-token-name", get(b"/api/items", "Ünï: a".encode()), refused()),
    case("header-nul-name", get(b"/api/items", b"\x00: a"), refused()),
    case("header-line-9k", get(b"/api/items", b"X-Long: " + b"a" * 9000), either(200)),
    case("header-line-1m", get(b"/api/items", b"X-Long: " + b"a" * LIMIT), either(200)),
    case(
        "header-200-fields",
        get(b"/api/items", *(b"X-H%d: v" % n for n in range(200))),
        either(200),
    ),
    case(
        "header-10000-fields",
        get(b"/api/items", *(b"X-H%d: v" % n for n in range(10_000))),
        either(200),
    ),
    # Host (RFC 9112 section 3.2: MUST be 400 when missing, repeated or invalid).
    case(
        "host-missing",
        message(b"GET /api/items HTTP/1.1"),
        refused(400),
        "RFC 9112 section 3.2: an HTTP/1.1 request without Host MUST be 400",
    ),
    case(
        "host-twice",
        message(b"GET /api/items HTTP/1.1", HOST, b"Host: evil.example"),
        refused(400),
        "RFC 9112 section 3.2: two Host lines MUST be 400",
    ),
    case(
        "host-port-not-a-number",
        message(b"GET /api/items HTTP/1.1", b"Host: 127.0.0.1:xx"),
        refused(400),
        "RFC 9112 section 3.2: an invalid Host value MUST be 400",
    ),
    case(
        "host-with-space",
        message(b"GET /api/items HTTP/1.1", b"Host: a b"),
        refused(400),
        "RFC 9112 section 3.2: an invalid Host value MUST be 400",
    ),
    case("host-missing-http-1.0", message(b"GET /api/items HTTP/1.0", close=False), either(200)),
    # Content-Length (RFC 9112 section 6.3).
    case(
        "length-twice-different",
        post(ITEM, b"Content-Length: 3"),
        refused(400),
        "RFC 9112 section 6.3: two different lengths are an unrecoverable error",
    ),
    case("length-list-same", post(ITEM).replace(b"Length: 23", b"Length: 23, 23"), either(201)),
    case("length-not-a-number", post(ITEM).replace(b"Length: 23", b"Length: abc"), refused()),
    case("length-negative", post(ITEM).replace(b"Length: 23", b"Length: -1"), refused()),
    case("length-plus-sign", post(ITEM).replace(b"Length: 23", b"Length: +23"), refused()),
    case("length-hex", post(ITEM).replace(b"Length: 23", b"Length: 0x17"), refused()),
    case("length-space-inside", post(ITEM).replace(b"Length: 23", b"Length: 2 3"), refused()),
    case(
        "length-leading-zeros", post(ITEM).replace(b"Length: 23", b"Length: 00023"), answered(201)
    ),
    case(
        "length-huge-without-body",
        post(b"").replace(b"Length: 0", b"Length: 99999999999999999999999"),
        refused(413, 400),
    ),
    case(
        "length-over-limit-without-body",
        post(b"").replace(b"Length: 0", b"Length: %d" % (LIMIT + 1)),
        refused(413),
        "contract section 3: 413 without reading the body",
    ),
    case(
        "length-exactly-the-limit",
        post(PADDED + b" " * (LIMIT - len(PADDED))),
        answered(201),
        "a body of MAX_REQUEST_BODY_BYTES is not too large",
    ),
    case(
        "length-body-shorter-then-wait",
        (post(ITEM)[:-10],),
        unanswerable(),
        timeout=WAIT,
    ),
    case(
        "length-body-shorter-then-half-close",
        (post(ITEM)[:-10], HalfClose()),
        refused(),
        "the client ends its side: no body will come",
    ),
    # Transfer-Encoding (RFC 9112 sections 6.1 and 6.3).
    case(
        "coding-with-length",
        chunked(chunks(ITEM), b"Content-Length: 23"),
        either(201, closes_after=True),
        "RFC 9112 section 6.1: 400, or the chunked body alone, then close",
    ),
    case(
        "coding-unknown-alone",
        chunked(b"{}", coding=b"gzip"),
        refused(400, closes_after=True),
        "RFC 9112 section 6.3: chunked not last MUST be 400, then close",
    ),
    case(
        "coding-chunked-not-last",
        chunked(chunks(b"{}"), coding=b"chunked, gzip"),
        refused(400, closes_after=True),
        "RFC 9112 section 6.3: chunked not last MUST be 400, then close",
    ),
    case(
        "coding-not-a-coding",
        chunked(chunks(ITEM), coding=b"xchunked"),
        refused(400, closes_after=True),
        "RFC 9112 section 6.3: chunked not last MUST be 400 (not 501), then close",
    ),
    case(
        "coding-gzip-then-chunked",
        chunked(chunks(gzip.compress(ITEM)), coding=b"gzip, chunked"),
        Expect((201, 400, 415, 501), any_4xx=False),
        "RFC 9112 section 6.1: decoded, refused, or 501 for a coding it does not know",
    ),
    case("coding-chunked-twice", chunked(chunks(ITEM), b"Transfer-Encoding: chunked"), refused()),
    case("coding-identity", chunked(b"{}", coding=b"identity"), refused()),
    case("coding-upper-case", chunked(chunks(ITEM), coding=b"CHUNKED"), answered(201)),
    case(
        "coding-space-before-colon",
        chunked(chunks(ITEM)).replace(b"ing: ch", b"ing : ch"),
        refused(),
    ),
    case(
        "coding-in-http-1.0",
        chunked(chunks(ITEM)).replace(b"HTTP/1.1", b"HTTP/1.0"),
        either(201, closes_after=True),
        "RFC 9112 section 6.1: faulty framing, then close",
    ),
    # Chunked bodies (RFC 9112 section 7.1).
    case("chunk-size-not-hex", chunked(b"zz\r\n{}\r\n0\r\n\r\n"), refused()),
    case("chunk-size-negative", chunked(b"-2\r\n{}\r\n0\r\n\r\n"), refused()),
    case("chunk-size-0x", chunked(b"0x2\r\n{}\r\n0\r\n\r\n"), refused()),
    case("chunk-size-trailing-space", chunked(b"2 \r\n{}\r\n0\r\n\r\n"), either(422)),
    case("chunk-size-empty", chunked(b"\r\n{}\r\n0\r\n\r\n"), refused()),
    case("chunk-data-without-crlf", chunked(b"2\r\n{}XX0\r\n\r\n"), refused()),
    case("chunk-data-longer-than-size", chunked(b"1\r\n{}\r\n0\r\n\r\n"), refused()),
    case(
        "chunk-lines-bare-lf",
        chunked(b"17\n" + ITEM + b"\n0\n\n"),
        refused(),
        "a chunk-size line can never end in a bare LF: no reason to wait for more",
        timeout=WAIT,
    ),
    case(
        "chunk-extensions",
        chunked(b'17;name=value;quoted="a b"\r\n' + ITEM + b"\r\n0;last\r\n\r\n"),
        answered(201),
        "RFC 9112 section 7.1.1: unknown extensions MUST be ignored",
    ),
    case("chunk-extension-nul", chunked(b"17;\x00=x\r\n" + ITEM + b"\r\n0\r\n\r\n"), refused()),
    case(
        "chunk-extension-20k",
        chunked(b"17;" + b"a" * 20_000 + b"\r\n" + ITEM + b"\r\n0\r\n\r\n"),
        either(201),
    ),
    case(
        "chunk-trailer", chunked(b"17\r\n" + ITEM + b"\r\n0\r\nX-Trailer: 1\r\n\r\n"), answered(201)
    ),
    case(
        "chunk-trailer-no-colon",
        chunked(b"17\r\n" + ITEM + b"\r\n0\r\nBad Trailer\r\n\r\n"),
        refused(),
    ),
    case(
        "chunk-trailer-forbidden-field",
        chunked(b"17\r\n" + ITEM + b"\r\n0\r\nContent-Length: 999\r\n\r\n"),
        either(201),
        "RFC 9110 section 6.5.1: ignored, or refused",
    ),
    case("chunk-one-byte-each", chunked(chunks(ITEM, size=1)), answered(201)),
    case(
        "chunk-exactly-the-limit",
        chunked(chunks(PADDED + b" " * (LIMIT - len(PADDED)), size=64 * 1024)),
        answered(201),
    ),
    case(
        "chunk-size-overflows-then-wait",
        (chunked(b"f" * 24 + b"\r\n{}"),),
        unanswerable(),
        "RFC 9112 section 7.1: a size beyond any integer",
        timeout=WAIT,
    ),
    case(
        "chunk-size-over-limit-then-wait",
        (chunked(b"%x\r\n" % (LIMIT + 1)),),
        unanswerable(),
        timeout=WAIT,
    ),
    case(
        "chunk-truncated-then-wait", (chunked(b"17\r\n" + ITEM[:5]),), unanswerable(), timeout=WAIT
    ),
    case(
        "chunk-truncated-then-half-close", (chunked(b"17\r\n" + ITEM[:5]), HalfClose()), refused()
    ),
    case(
        "chunk-no-last-chunk-then-half-close",
        (chunked(b"17\r\n" + ITEM + b"\r\n"), HalfClose()),
        refused(),
    ),
    # JSON bodies (RFC 8259, contract section 3).
    case("json-100000-nested-arrays", post(DEEP_ARRAYS), answered(400, 422)),
    case("json-100000-nested-objects", post(DEEP_OBJECTS), answered(400, 422)),
    case("json-nested-in-name", post(b'{"name": ' + DEEP_ARRAYS + b"}"), answered(400, 422)),
    case(
        "json-5000-digit-number",
        post(b'{"name": "big", "n": ' + b"9" * 5000 + b"}"),
        answered(201, 400, 422),
        "RFC 8259 section 6: the range may be limited; never a 500",
    ),
    case("json-5000-digit-name", post(b'{"name": ' + b"9" * 5000 + b"}"), answered(400, 422)),
    case("json-exponent-overflow", post(b'{"name": "x", "n": 1e999999}'), answered(201, 400, 422)),
    case("json-invalid-utf8-in-key", post(b'{"\xff": 1, "name": "x"}'), answered(400)),
    case("json-overlong-utf8", post(b'{"name": "\xc0\xaf"}'), answered(400)),
    case("json-utf8-encoded-surrogate", post(b'{"name": "\xed\xa0\x80"}'), answered(400)),
    case("json-lone-low-surrogate", post(b'{"name": "\\udc00"}'), answered(422)),
    case("json-lone-surrogate-inside", post(b'{"name": "a\\ud800b"}'), answered(422)),
    case("json-reversed-surrogates", post(b'{"name": "\\ude00\\ud83d"}'), answered(422)),
    case("json-surrogate-pair", post(b'{"name": "\\ud83d\\ude00"}'), answered(201)),
    case(
        "json-lone-surrogate-in-other-key", post(b'{"\\ud800": 1, "name": "x"}'), answered(201, 422)
    ),
    case("json-duplicate-keys", post(b'{"name": "a", "name": 5}'), answered(201, 400, 422)),
    case(
        "json-extra-fields", post(b'{"name": "x", "id": 99999, "admin": true}'), answered(201, 422)
    ),
    case("json-name-true", post(b'{"name": true}'), answered(422)),
    case("json-name-object", post(b'{"name": {"$gt": ""}}'), answered(422)),
    case("json-name-list", post(b'{"name": ["a"]}'), answered(422)),
    case("json-name-float", post(b'{"name": 1.5}'), answered(422)),
    case("json-null", post(b"null"), answered(422)),
    case("json-nul-after-text", post(ITEM + b"\x00"), answered(400)),
    # Content-Type (contract section 3: JSON media types, any parameters).
    case(
        "type-odd-parameters",
        post(ITEM, content_type=b'Content-Type: application/json; charset=latin-1; x="\\""'),
        answered(201),
    ),
    case(
        "type-space-before-semicolon",
        post(ITEM, content_type=b"Content-Type: APPLICATION/JSON ;v=1"),
        answered(201),
    ),
    case(
        "type-utf16-declared",
        post(ITEM.decode().encode("utf-16-le"), content_type=JSON + b"; charset=utf-16"),
        answered(400),
    ),
    case("type-empty", post(ITEM, content_type=b"Content-Type: "), answered(415)),
    case("type-only-semicolons", post(ITEM, content_type=b"Content-Type: ;;;;"), answered(415)),
    case("type-2000-parameters", post(ITEM, content_type=JSON + b";a=b" * 2000), either(201)),
    case("type-twice", post(ITEM, b"Content-Type: text/plain"), either(201, 415)),
    # Paths and queries (contract section 3: 404 for any id that names no item).
    case("path-nul", get(b"/api/items/%00"), answered(404)),
    case("path-invalid-utf8", get(b"/api/items/%ff"), answered(404)),
    case("path-dot-segments", get(b"/api/../api/items"), answered(200, 404)),
    case("path-encoded-traversal", get(b"/api/items/%2e%2e/%2e%2e/etc/passwd"), answered(404)),
    case("path-backslash", get(b"/api\\items"), answered(404)),
    case("path-double-slashes", get(b"//api//items"), answered(200, 308, 404)),
    case("path-semicolon-parameter", get(b"/api/items;jsessionid=1"), answered(404)),
    case("path-20k", get(b"/" + b"a" * 20_000), either(404)),
    case("path-1m", get(b"/" + b"a" * LIMIT), either(404)),
    case("id-4000-digits", get(b"/api/items/" + b"9" * 4000), either(404)),
    case(
        "id-5000-digits",
        get(b"/api/items/" + b"9" * 5000),
        either(404),
        "past Python's 4300-digit limit for int()",
    ),
    case("id-huge-negative", get(b"/api/items/-99999999999999999999"), answered(404)),
    case("id-exponent", get(b"/api/items/1e3"), answered(404)),
    case("id-hex", get(b"/api/items/0x10"), answered(404)),
    case(
        "id-arabic-indic-digit",
        get(b"/api/items/%D9%A1"),
        answered(404),
        "not a number in a URL: the item stays at one address",
    ),
    case("id-fullwidth-digit", get(b"/api/items/%EF%BC%91"), answered(404)),
    case("query-nul-and-bad-escapes", get(b"/api/items?x=%00&y=%ff&z=%"), either(200)),
    case(
        "query-1000-parameters",
        get(b"/api/items?" + b"&".join(b"k%d=v" % n for n in range(1000))),
        either(200),
    ),
    # Expect (RFC 9110 section 10.1.1).
    case("expect-100-continue", post(ITEM, b"Expect: 100-continue"), answered(201)),
    case("expect-unknown", post(ITEM, b"Expect: 999-nope"), either(201)),
    case(
        "expect-100-continue-over-limit",
        post(b"", b"Expect: 100-continue").replace(b"Length: 0", b"Length: %d" % (LIMIT + 1)),
        refused(413, 417),
        "RFC 9110 section 10.1.1: answered without waiting for the body",
    ),
]


def run(service: Service, case: Case) -> Reply:
    """Write the case and read the answer; for a client that stops mid-message,
    check meanwhile that the service still answers others."""
    started = time.monotonic()
    deadline = started + case.timeout
    sock = connect(service.port, timeout=case.timeout)
    try:
        sent_all = send_parts(sock, case.parts, deadline)
        if case.expect.wait:
            meanwhile = probe(service.port, "/healthz", timeout=2)
            assert meanwhile.ok_within(1.0), f"while a client waits: {meanwhile}"
        reader = ResponseReader(sock)
        reply = reader.read(deadline, case.method)
        if reply.status is not None and case.expect.closes_after and not reply.closes:
            after = reader.closed_within(time.monotonic() + 2)
            assert after in (CLOSED, RESET), (
                f"{reply.status}, then the connection stayed open ({after}): RFC 9112 says close"
            )
    finally:
        sock.close()
    reply.sent_all = sent_all
    reply.elapsed = time.monotonic() - started
    return reply


def verdict(case: Case, reply: Reply) -> str | None:
    """What is wrong with the outcome of ``case``, or None."""
    if reply.status is None:
        if reply.ended == TIMEOUT and not case.expect.wait:
            return "no answer and the connection left open: a hang"
        if reply.ended != TIMEOUT and not case.expect.close:
            return f"no answer ({reply.ended}) where one is due"
        return None
    if reply.status >= 500 and reply.status not in case.expect.statuses:
        return "a server error"
    if not case.expect.allows(reply.status):
        return "not an allowed answer"
    return None


@pytest.mark.parametrize("case", CASES)
def test_hostile_request(target: Service, promtool: str, case: Case) -> None:
    before = mark(target)
    reply = run(target, case)
    problem = verdict(case, reply)
    why = f" ({case.why})" if case.why else ""
    assert problem is None, f"{problem}: {reply.describe()}{why}"
    if reply.status is not None:
        assert_contract_answer(reply, case.method)
        request_id = reply.header("x-request-id")
        if request_id and not case.exempt:
            target.wait_for_log(
                lambda r: r.get("request_id") == request_id and r.get("event") == "request",
                timeout=3,
            )
    assert_unharmed(target, before, promtool)


# --- Pipelining and smuggling (RFC 9112 sections 9.3.2 and 11.2) ------------------------


def test_pipelined_requests_are_answered_in_order(target: Service, promtool: str) -> None:
    before = mark(target)
    name = f"pipelined {time.monotonic_ns()}"
    body = json.dumps({"name": name}).encode()
    requests = [
        message(b"GET /api/items/987654321 HTTP/1.1", HOST, close=False),
        message(
            b"POST /api/items HTTP/1.1",
            HOST,
            JSON,
            b"Content-Length: %d" % len(body),
            body=body,
            close=False,
        ),
        message(b"GET /healthz HTTP/1.1", HOST),
    ]
    with connect(target.port) as sock:
        sock.sendall(b"".join(requests))
        reader = ResponseReader(sock)
        deadline = time.monotonic() + 5
        replies = [reader.read(deadline) for _ in requests]
    assert [reply.status for reply in replies] == [404, 201, 200], [
        reply.describe() for reply in replies
    ]
    assert replies[1].json()["name"] == name
    assert_unharmed(target, before, promtool)


def test_a_broken_chunk_in_a_pipeline_ends_the_connection(target: Service, promtool: str) -> None:
    """Pipelined requests are answered in order (RFC 9112 section 9.3.2): the
    first, valid, gets its own answer (or none, if the server closes). After a
    chunked body it cannot parse, the server no longer knows where the next
    request starts: it answers 400 or nothing, and nothing after it."""
    before = mark(target)
    requests = [
        message(b"GET /api/items/987654321 HTTP/1.1", HOST, close=False),
        chunked(b"zz\r\n{}\r\n0\r\n\r\n", close=False),
        message(b"GET /healthz HTTP/1.1", HOST),
    ]
    with connect(target.port) as sock:
        sock.sendall(b"".join(requests))
        reader = ResponseReader(sock)
        deadline = time.monotonic() + 5
        replies = [reader.read(deadline) for _ in requests]
    outcomes = [reply.status or reply.ended for reply in replies]
    assert replies[0].status in (404, None), f"the first answer is not the first's: {outcomes}"
    assert replies[1].status is None or 400 <= replies[1].status < 500, outcomes
    assert replies[2].status is None, outcomes
    assert_unharmed(target, before, promtool)


@pytest.mark.parametrize(
    "framing",
    [b"Content-Length: %d", b"Content-Length: %d\r\nTransfer-Encoding: chunked"],
    ids=["length", "length-and-chunked"],
)
def test_a_body_is_never_read_as_a_second_request(
    target: Service, promtool: str, framing: bytes
) -> None:
    """A body that looks like a request is a body: whatever the server makes of
    the framing, it never answers the request hidden in it."""
    before = mark(target)
    hidden = message(b"GET /api/items/987654321 HTTP/1.1", HOST, close=False)
    head = message(b"GET /api/items HTTP/1.1", HOST, framing % len(hidden), close=False)
    with connect(target.port) as sock:
        sock.sendall(head + hidden)
        reader = ResponseReader(sock)
        first = reader.read(time.monotonic() + 5)
        assert first.status in (200, 400), first.describe()
        second = reader.read(time.monotonic() + 1.5)
    assert second.status is None, f"the hidden request was answered: {second.describe()}"
    assert_unharmed(target, before, promtool)


def test_an_endless_header_does_not_stall_the_others(target: Service, promtool: str) -> None:
    """One client streams a single header value of 64 MiB, a 64 KiB piece at a
    time. The server may cut it off (431) or take it, but meanwhile every
    other request is answered within a second."""
    before = mark(target)
    probes: list[Probe] = []
    done = threading.Event()

    def keep_probing() -> None:
        while not done.is_set():
            probes.append(probe(target.port, "/healthz", timeout=10))
            time.sleep(0.05)

    prober = threading.Thread(target=keep_probing, daemon=True)
    prober.start()
    piece = b"h" * 65536
    try:
        with connect(target.port, timeout=60) as sock:
            deadline = time.monotonic() + 60
            parts = [get(b"/api/items")[: -len(CLOSE) - 4] + b"X-Endless: "]
            parts += [piece] * 1024 + [b"\r\n\r\n"]
            sent_all = send_parts(sock, parts, deadline)
            reply = ResponseReader(sock).read(deadline)
    finally:
        done.set()
        prober.join(timeout=15)
    assert reply.status is None or reply.status in (200, 400, 431), reply.describe()
    assert reply.status != 200 or sent_all, reply.describe()
    slow = [str(p) for p in probes if not p.ok_within(FAST)]
    assert not slow, f"stalled while the header came in: {slow[:5]} of {len(probes)} probes"
    assert_unharmed(target, before, promtool)


# --- Hostile values in the headers the service reads -------------------------------------


@pytest.mark.parametrize(
    "fields",
    [
        [b"X-Request-ID: TOKEN%0d%0aSet-Cookie:%20x=1"],
        [b"X-Request-ID: TOKEN\\r\\nX-Injected: 1"],
        ["X-Request-ID: TOKEN-ünïcode".encode()],
        [b"X-Request-ID: TOKEN\xff\xfe\xfd"],
        [b"X-Request-ID: TOKEN" + b"b" * 7984],
        [b"X-Request-ID: TOKEN" + b"c" * 49],
        [b"X-Request-ID: one", b"X-Request-ID: two"],
        [b"X-Request-ID: TOKEN\tb"],
        [b'X-Request-ID: "},{"level":"error","event":"TOKEN'],
        [b"X-Request-ID: ${jndi:ldap://TOKEN.invalid/a}"],
        [b"X-Request-ID:"],
        [b"X-Request-ID:    "],
    ],
    ids=[
        "encoded-crlf",
        "escaped-crlf",
        "unicode",
        "invalid-utf8",
        "8000-chars",
        "65-chars",
        "two-lines",
        "tab",
        "json-breaking",
        "jndi",
        "empty",
        "blank",
    ],
)
def test_hostile_request_ids_are_replaced_and_never_logged(
    target: Service, promtool: str, fields: list[bytes]
) -> None:
    """Contract section 4: a value outside ``[A-Za-z0-9._-]{1,64}`` is replaced
    by a new id and never echoed or logged. Two lines are one value joined by
    a comma (RFC 9110 section 5.3), which is no safe id either."""
    before = mark(target)
    token = uuid.uuid4().hex[:16].encode()  # makes each value unique in the output
    fields = [field.replace(b"TOKEN", token) for field in fields]
    reply = exchange(target.port, get(b"/api/items/987654321", *fields))
    assert reply.status == 404, reply.describe()
    assert_contract_answer(reply, "GET")
    request_id = reply.header("x-request-id") or ""
    assert HEX32.fullmatch(request_id), f"kept or mangled instead of replaced: {request_id!r}"
    target.wait_for_log(lambda r: r.get("request_id") == request_id and r.get("event") == "request")
    output = (target.workdir / "stdout.log").read_bytes()
    for field in fields:
        value = field.partition(b":")[2].strip()
        if token in value:
            assert value not in output, f"{value[:80]!r} was logged"
            assert token not in output, f"part of {value[:80]!r} was logged"
    assert_unharmed(target, before, promtool)


TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
PARENT = "b7ad6b7169203331"
VALID = f"traceparent: 00-{TRACE_ID}-{PARENT}-01".encode()


@pytest.mark.parametrize(
    ("fields", "continued"),
    [
        ([b"traceparent: 00-" + b"0" * 32 + b"-" + b"0" * 16 + b"-01"], False),
        ([f"traceparent: ff-{TRACE_ID}-{PARENT}-01".encode()], False),
        ([f"traceparent: 00-{TRACE_ID.upper()}-{PARENT.upper()}-01".encode()], False),
        ([f"traceparent: 00-{TRACE_ID}-{'0' * 16}-01".encode()], False),
        ([f"traceparent: 00-{TRACE_ID}-{PARENT}-01-extra".encode()], False),
        ([f"traceparent: 01-{TRACE_ID}-{PARENT}-01-future".encode()], None),
        ([b"traceparent: 00-" + b"a" * 8000], False),
        ([b"traceparent: \xff\xfe garbage"], False),
        ([VALID, f"traceparent: 00-{'1' * 32}-{PARENT}-01".encode()], None),
        ([VALID, b"tracestate: " + b",".join(b"k%d=v" % n for n in range(1000))], True),
        ([VALID, b"tracestate: ===,,,@@@=\xff"], True),
        ([VALID, b"tracestate: " + b"a" * 8000], True),
        ([VALID, b"baggage: " + b",".join(b"k%d=%s" % (n, b"v" * 20) for n in range(300))], True),
        ([VALID, b"baggage: ;;;=,%zz=%ff,\xff=1"], True),
    ],
    ids=[
        "all-zero",
        "version-ff",
        "upper-case",
        "zero-parent",
        "version-00-extra-field",
        "future-version",
        "8000-chars",
        "invalid-utf8",
        "two-lines",
        "tracestate-1000-members",
        "tracestate-malformed",
        "tracestate-8000-chars",
        "baggage-300-members",
        "baggage-malformed",
    ],
)
def test_hostile_trace_context_is_survived(
    target: Service, promtool: str, fields: list[bytes], continued: bool | None
) -> None:
    """An invalid ``traceparent`` (W3C Trace Context, section 3.2) starts a new
    trace; ``tracestate`` and ``baggage`` of any size or shape change nothing
    but themselves. ``continued`` None: the specification lets either happen."""
    before = mark(target)
    request_id = f"trace-{time.monotonic_ns()}"
    reply = exchange(
        target.port, get(b"/api/items", b"X-Request-ID: " + request_id.encode(), *fields)
    )
    if reply.status != 200:  # the server may refuse an oversized field
        assert reply.status is not None and 400 <= reply.status < 500, reply.describe()
        assert_unharmed(target, before, promtool)
        return
    (line,) = target.wait_for_log(
        lambda r: r.get("request_id") == request_id and r.get("event") == "request"
    )
    trace_id = line.get("trace_id", "")
    assert HEX32.fullmatch(trace_id) and trace_id != "0" * 32, line
    if continued is not None:
        assert (trace_id == TRACE_ID) == continued, f"trace id {trace_id}, continued={continued}"
    assert_unharmed(target, before, promtool)


@pytest.mark.parametrize(
    "accept",
    [
        b"application/openmetrics-text; version=9.9.9",
        b"application/openmetrics-text; version=0.0.1",
        b"application/openmetrics-text; version=abc",
        b"text/plain; version=1.x",
        b"application/openmetrics-text; q=abc, */*;q=-1",
        b"application/openmetrics-text;q=0, text/plain;q=1",
        b"\xff\xfe;;;,,,=",
        b"text/plain;q=0.1, " * 400,
        b"*/*",
        b"",
    ],
    ids=[
        "unknown-version",
        "old-version",
        "openmetrics-version-not-a-number",
        "text-version-not-a-number",
        "bad-quality",
        "refused-openmetrics",
        "invalid-utf8",
        "400-ranges",
        "anything",
        "empty",
    ],
)
def test_any_accept_header_gets_a_valid_scrape(
    target: Service, promtool: str, accept: bytes
) -> None:
    """Contract section 7: the text format, or OpenMetrics when asked for; the
    body is valid in whichever its Content-Type names."""
    before = mark(target)
    reply = exchange(target.port, get(b"/metrics", b"Accept: " + accept))
    assert reply.status == 200, reply.describe()
    content_type = (reply.header("content-type") or "").replace(" ", "")
    text = reply.body.decode()
    if content_type.startswith("application/openmetrics-text"):
        written = OPENMETRICS.replace(" ", "")  # the version the service writes (section 3)
        assert content_type.startswith(written), f"Content-Type says {content_type}"
        assert families(text, openmetrics=True)
    else:
        assert content_type.startswith("text/plain;version=0.0.4"), content_type
        checked = subprocess.run(
            [promtool, "check", "metrics"], input=text, capture_output=True, text=True
        )
        assert checked.returncode == 0, checked.stdout + checked.stderr
    assert_unharmed(target, before, promtool)


# --- Slow clients (contract section 9: probes are answered even when busy) ----------------

SLOW_CLIENTS = 16  # twice a threaded worker's default WEB_THREADS
SLOW_FOR = 15.0  # seconds of probing while they are connected
FAST = 1.0  # seconds within which every probe is answered


def slow_head(_: int) -> bytes:
    return b"X-Slow: " + b"s" * 20 + b"\r\n"


def slow_body(_: int) -> bytes:
    return b"x"


def summary(probes: list[Probe]) -> str:
    seconds = sorted(p.seconds for p in probes)
    slow = [str(p) for p in probes if not p.ok_within(FAST)]
    return (
        f"{len(probes)} probes, median {statistics.median(seconds):.3f}s, "
        f"max {seconds[-1]:.2f}s, {len(slow)} not answered within {FAST}s: {slow[:6]}"
    )


@pytest.fixture
def fresh(boot: Boot) -> Iterator[Service]:
    """A service of the test's own, which it may starve."""
    service = boot()
    yield service
    service.kill()


@pytest.mark.parametrize(
    ("first", "step", "every"),
    [
        (b"GET /api/items HTTP/1.1\r\nHost: 127.0.0.1\r\n", slow_head, 2.0),
        (
            message(b"POST /api/items HTTP/1.1", HOST, JSON, b"Content-Length: 4096", close=False)
            + b'{"name": "',
            slow_body,
            1.0,
        ),
    ],
    ids=["slow-headers", "slow-body"],
)
def test_slow_clients_do_not_starve_the_probes(
    fresh: Service, first: bytes, step: Any, every: float
) -> None:
    """Sixteen clients each hold a connection open, one header line every 2 s
    (or a body within the limit, one byte a second); meanwhile ``/healthz``
    and ``/api/items`` are answered within a second, every time."""
    assert all(probe(fresh.port, p).ok_within(FAST) for p in ("/healthz", "/api/items"))
    with SlowClients(fresh.port, SLOW_CLIENTS, first, step, every) as clients:
        assert clients.connected == SLOW_CLIENTS, clients.failures
        probes = probe_for(fresh.port, ["/healthz", "/api/items"], SLOW_FOR, timeout=3.0)
    assert all(p.ok_within(FAST) for p in probes), summary(probes)
    # Once they are gone, the service serves as before.
    after = probe_for(fresh.port, ["/healthz", "/api/items"], 2.0, timeout=5.0)
    assert all(p.reply.status == 200 for p in after), summary(after)


@pytest.mark.parametrize(
    "sent",
    [
        pytest.param(b"GET /api/items HTTP/1.1\r\nHost: 127.0.0.1\r\n", id="head"),
        pytest.param(
            b"POST /api/items HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: 20\r\n\r\n{",
            id="body",
        ),
    ],
)
def test_a_request_that_does_not_arrive_in_time_gets_408(boot: Boot, sent: bytes) -> None:
    """Contract section 3 (REQUEST_TIMEOUT): a request that has not arrived whole
    that long after its first byte gets 408, and its connection closes."""
    timeout = 2.0
    service = boot(REQUEST_TIMEOUT=str(timeout))
    try:
        with socket.create_connection(("127.0.0.1", service.port), timeout=timeout + 5) as sock:
            started = time.monotonic()
            sock.sendall(sent)
            answer = b""
            while chunk := sock.recv(65536):  # until the service closes the connection
                answer += chunk
            waited = time.monotonic() - started
        assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
        assert timeout - 0.2 < waited < timeout + 2, waited
        assert probe(service.port, "/healthz").reply.status == 200
    finally:
        service.kill()


# --- The FastAPI service's own OpenAPI document (schemathesis) ----------------------------


@pytest.mark.parametrize("framework", ["fastapi"], indirect=True)
def test_openapi_document_describes_every_answer(target: Service, tmp_path: Path) -> None:
    """schemathesis with every check on, bounded to about 35 s: every status,
    header and body the service answers is the one its ``/openapi.json`` names."""
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "--no-color",
        "run",
        f"{target.base_url}/openapi.json",
        "--checks=all",
        "--max-examples=25",
        "--max-time=25",
        "--seed=1",
        "--workers=2",
        "--request-timeout=5",
        "--generation-database=none",
        "--continue-on-failure",
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
