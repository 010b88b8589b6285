"""Liveness, readiness and the Prometheus scrape (docs/contract.md, section 3),
answered by ``middleware.ProbeMiddleware`` before any host check or URL."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

from asgiref.sync import async_to_sync
from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from health_check.base import HealthCheck, HealthCheckResult
from health_check.checks import Cache, Database
from health_check.exceptions import ServiceUnavailable
from health_check.views import HealthCheckView

from . import readiness
from .config import get_settings
from .metrics import exposition

View = Callable[[HttpRequest], HttpResponse]


def healthz(request: HttpRequest) -> HttpResponse:
    return JsonResponse({"status": "ok"})


def metrics(request: HttpRequest) -> HttpResponse:
    body, content_type = exposition(request.headers.get("accept"))
    return HttpResponse(body, content_type=content_type)


class Readiness(HealthCheckView):  # type: ignore[misc]  # django-health-check has no types
    """django-health-check's checks, answered in the contract's shape: 503 (not
    500) when a check fails or does not answer within READY_TIMEOUT, and
    ``draining`` from the moment the service is told to stop."""

    ready_timeout = 1.0

    async def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        body, status = readiness.draining() or await self._check()
        return JsonResponse(body, status=status)

    async def _check(self) -> readiness.Answer:
        with self.get_executor() as executor:
            self.results = await asyncio.gather(
                *(self._result(check, executor) for check in self.get_checks())
            )
        return readiness.answer(
            {_name(result.check): self._status(result) for result in self.results}
        )

    def _status(self, result: HealthCheckResult) -> dict[str, str]:
        if result.error is None:
            return readiness.passed()
        return readiness.failed(result.error, self.ready_timeout)

    @contextmanager
    def get_executor(self) -> Iterator[Executor]:
        # A check still running after READY_TIMEOUT (a connect timeout) ends
        # in the background: the probe's answer does not wait for it.
        executor = ThreadPoolExecutor(thread_name_prefix="readiness")
        try:
            yield executor
        finally:
            executor.shutdown(wait=False, cancel_futures=True)

    async def _result(self, check: HealthCheck, executor: Executor | None) -> HealthCheckResult:
        try:
            return await asyncio.wait_for(check.get_result(executor), self.ready_timeout)
        except TimeoutError:
            error = ServiceUnavailable(f"no answer within {self.ready_timeout:g}s")
            return HealthCheckResult(check=check, error=error, time_taken=self.ready_timeout)


def _name(check: HealthCheck) -> str:
    """``database``, ``cache``; ``database:replica`` for other aliases."""
    alias = getattr(check, "alias", "default")
    name = type(check).__name__.lower()
    return name if alias == "default" else f"{name}:{alias}"


def readiness_checks() -> list[type[HealthCheck]]:
    """The database, and the cache when one is configured (not the per-process default)."""
    checks: list[type[HealthCheck]] = [Database]
    backend = settings.CACHES.get("default", {}).get("BACKEND", "")
    if not backend.endswith(("LocMemCache", "DummyCache")):
        checks.append(Cache)
    return checks


def views() -> dict[str, View]:
    """The probe views by path (middleware.ProbeMiddleware)."""
    ready = Readiness.as_view(**_readiness_options())
    return {"/healthz": healthz, "/ready": async_to_sync(ready), "/metrics": metrics}


def readiness_answer() -> readiness.Answer:
    """What ``/ready`` answers; the worker also runs it when nothing probes."""
    return readiness.draining() or async_to_sync(Readiness(**_readiness_options())._check)()


def _readiness_options() -> dict[str, Any]:
    return {"checks": readiness_checks(), "ready_timeout": get_settings().ready_timeout}
