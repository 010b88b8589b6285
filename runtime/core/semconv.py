"""What the OpenTelemetry semantic conventions say of HTTP methods, for the
metrics and the spans alike."""

from __future__ import annotations

STANDARD_METHODS = frozenset(
    {"CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "TRACE"}
)


def method_label(method: str) -> str:
    """``http.request.method``: a standard method, or ``_OTHER``."""
    return method if method in STANDARD_METHODS else "_OTHER"
