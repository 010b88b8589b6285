"""Error tracking with Sentry (docs/contract.md, section 13), off unless
``SENTRY_DSN`` is set; without it nothing of ``sentry_sdk`` is imported.

Unhandled exceptions reach one place whatever the framework (the request
pipeline's ``Exchange.fail``, the background tasks' failure), and they are
reported from there, so none of Sentry's framework, logging or threading
integrations is enabled: each would read requests (headers, bodies, cookies)
or log lines, which the contract never sends, and report again what is
reported here. Call ``configure_error_tracking`` in each worker after fork
(the SDK's sending thread does not survive a fork) and
``flush_error_tracking`` before it exits.
"""

from __future__ import annotations

from typing import Any

import structlog
from opentelemetry import trace

from .config import Settings

FLUSH_SECONDS = 2.0
# What an event may never carry (docs/contract.md, section 13).
_NEVER_SENT = ("request", "user", "breadcrumbs", "extra", "modules")

_sdk: Any = None  # the sentry_sdk module, once configured
_service_name = ""


def _scrub(event: Any, hint: Any) -> Any:
    for key in _NEVER_SENT:
        event.pop(key, None)
    return event


def configure_error_tracking(settings: Settings) -> None:
    """Start reporting to ``SENTRY_DSN`` from this process; idempotent, and a no-op without it."""
    global _sdk, _service_name
    if not settings.sentry_dsn or _sdk is not None:
        return
    import sentry_sdk

    sentry_sdk.init(
        dsn=settings.sentry_dsn,
        environment=settings.environment,
        release=f"{settings.service_name}@{settings.service_version}",
        default_integrations=False,
        auto_enabling_integrations=False,
        integrations=[],
        send_default_pii=False,
        include_local_variables=False,
        max_request_body_size="never",
        max_breadcrumbs=0,
        before_send=_scrub,
    )
    _service_name = settings.service_name
    _sdk = sentry_sdk


def report_exception(error: BaseException) -> None:
    """Send ``error`` with the request's id and trace id, when error tracking is on."""
    if _sdk is None:
        return
    request_id = structlog.contextvars.get_contextvars().get("request_id")
    context = trace.get_current_span().get_span_context()
    # Tags set on this scope, as each thread and task has scopes of its own.
    with _sdk.new_scope() as scope:
        scope.set_tag("service.name", _service_name)
        if request_id:
            scope.set_tag("request_id", request_id)
        if context.is_valid:
            scope.set_tag("trace_id", format(context.trace_id, "032x"))
        scope.capture_exception(error)


def flush_error_tracking() -> None:
    """Send what is queued, for at most ``FLUSH_SECONDS``."""
    if _sdk is not None:
        _sdk.flush(timeout=FLUSH_SECONDS)
