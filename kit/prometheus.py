"""A private Prometheus server (Debian's ``prometheus``) for the tests, and its HTTP API.

Temp storage, exemplar storage on, the given scrape and rule configuration;
it listens on 127.0.0.1 only and is killed when the tests are done.
"""

from __future__ import annotations

import contextlib
import math
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import yaml

from .project import free_port


class PrometheusError(AssertionError):
    pass


class Prometheus:
    def __init__(self, binary: str, workdir: Path, config: dict[str, Any]) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.config_path = workdir / "prometheus.yml"
        self.config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        self.port = free_port()
        self.log_path = workdir / "prometheus.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [
                binary,
                f"--config.file={self.config_path}",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--enable-feature=exemplar-storage",
                "--log.level=warn",
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=30)
        self.wait(lambda: self.client.get("/-/ready").status_code == 200, 30, "ready")

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")[-6000:]

    def wait(self, condition: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise PrometheusError(
                    f"prometheus exited with {self.process.returncode}:\n{self.log()}"
                )
            with contextlib.suppress(httpx.TransportError):
                if condition():
                    return
            time.sleep(0.2)
        raise PrometheusError(f"prometheus: not {what} within {timeout}s\n{self.log()}")

    def api(self, path: str, **params: Any) -> Any:
        # Queries go as POST forms (long PromQL); the listing endpoints take GET only.
        if params:
            response = self.client.post(f"/api/v1/{path}", data=params)
        else:
            response = self.client.get(f"/api/v1/{path}")
        body = response.json()
        if body.get("status") != "success":
            raise PrometheusError(f"{path} {params}: {body.get('errorType')}: {body.get('error')}")
        return body["data"]

    def query(self, expr: str, at: float) -> list[dict[str, Any]]:
        data = self.api("query", query=expr, time=at)
        return data["result"] if data["resultType"] in ("vector", "matrix") else [data]

    def query_range(
        self, expr: str, start: float, end: float, step: float = 1
    ) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.api(
            "query_range", query=expr, start=start, end=end, step=step
        )["result"]
        return result

    def exemplars(self, expr: str, start: float, end: float) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.api("query_exemplars", query=expr, start=start, end=end)
        return result

    def label_values(self, label: str, match: str | None, start: float, end: float) -> list[str]:
        params: dict[str, Any] = {"start": start, "end": end}
        if match:
            params["match[]"] = match
        response = self.client.get(f"/api/v1/label/{label}/values", params=params)
        body = response.json()
        if body.get("status") != "success":
            raise PrometheusError(f"label {label} {match}: {body.get('error')}")
        return list(body["data"])

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.client.close()
        self._log.close()


def finite_values(result: list[dict[str, Any]]) -> list[float]:
    """Every sample value of a query result that is a real number (not NaN or ±Inf)."""
    values = []
    for series in result:
        samples = series.get("values") or ([series["value"]] if "value" in series else [])
        for _, value in samples:
            number = float(value)
            if math.isfinite(number):
                values.append(number)
    return values
