"""What every request leaves behind: its metrics and its one access line
(contract, sections 5 and 7). The request middleware calls ``record_request``
once per request, inside the server span, so both point at the trace."""

from __future__ import annotations

from opentelemetry import trace

from .logging import get_logger
from .metrics import observe_request

access_log = get_logger("{{ cookiecutter.package_name }}.access")


def record_request(
    method: str, route: str, path: str, status: int, error_type: str, seconds: float
) -> None:
    context = trace.get_current_span().get_span_context()
    trace_id = format(context.trace_id, "032x") if context.trace_flags.sampled else None
    observe_request(method, route, status, error_type, seconds, trace_id)
    access_log.info(
        "request",
        http_method=method,
        http_route=route,
        http_path=path,
        http_status=status,
        duration_ms=round(seconds * 1000, 3),
    )
