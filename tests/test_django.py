"""What the Django template promises beyond the contract (issue: the Django
template): production settings that pass ``check --deploy`` and refuse to
start without their secrets, and PostgreSQL through the worker's connection
pool, sized and timed from the environment, and traced. Outages, restarts and
pool exhaustion are the resilience tier's, for every framework alike.
"""

from __future__ import annotations

import json
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from kit.metrics import total
from kit.postgres import PostgresServer
from kit.project import RUN_TIMEOUT, Project, Service, procfile
from tests.conftest import Boot

pytestmark = [pytest.mark.boot, pytest.mark.parametrize("framework", ["django"], indirect=True)]

PRODUCTION = {
    "ENVIRONMENT": "production",
    "DJANGO_SECRET_KEY": "kit-" + uuid.uuid4().hex + uuid.uuid4().hex,
    "DJANGO_ALLOWED_HOSTS": "api.example.com",
}


# --- Production settings ----------------------------------------------------------


def test_deploy_checks_pass_with_production_settings(project: Project) -> None:
    result = project.run(
        "python manage.py check --deploy --fail-level DEBUG", timeout=RUN_TIMEOUT, **PRODUCTION
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


@pytest.mark.parametrize("missing", ["DJANGO_SECRET_KEY", "DJANGO_ALLOWED_HOSTS"])
def test_production_refuses_to_start_without_its_settings(project: Project, missing: str) -> None:
    env = {key: value for key, value in PRODUCTION.items() if key != missing}
    result = project.run(procfile(project.path)["web"], timeout=60, **env)
    assert result.returncode == 1
    assert result.stderr == ""
    (line,) = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    assert line["level"] == "error"
    assert line["variable"] == missing


def test_production_answers_with_json_and_no_debug_pages(boot: Boot) -> None:
    service = boot(**PRODUCTION, DJANGO_SSL_REDIRECT="false")
    host = {"Host": "api.example.com"}
    assert httpx.get(service.base_url + "/api/items", headers=host).status_code == 200
    missing = httpx.get(service.base_url + "/no/such/page", headers=host)
    assert missing.status_code == 404
    assert missing.json()["error"] == "not_found"
    # Probes answer whatever Host a kubelet sends; the API only its own hosts.
    assert httpx.get(service.base_url + "/ready").status_code == 200
    refused = httpx.get(service.base_url + "/api/items")
    assert refused.status_code == 400
    assert refused.json() == {
        "error": "bad_request",
        "message": "Bad request.",
        "request_id": refused.headers["x-request-id"],
    }


# --- PostgreSQL -------------------------------------------------------------------


@pytest.fixture(scope="module")
def database(postgres: PostgresServer) -> str:
    return postgres.create_database("service")


# Ten requests in flight at once (WEB_THREADS - 2) compete for five connections.
POOL = {"DB_POOL_SIZE": "3", "DB_MAX_OVERFLOW": "2", "WEB_THREADS": "12"}


@pytest.fixture(scope="module")
def pg_service(boot: Boot, database: str) -> Service:
    return boot(DATABASE_URL=database, **POOL)


def test_postgres_timeouts_come_from_the_environment(project: Project, database: str) -> None:
    show = (
        "from django.db import connection\n"
        "with connection.cursor() as cursor:\n"
        "    cursor.execute('SHOW statement_timeout')\n"
        "    print(cursor.fetchone()[0])\n"
        "print(connection.get_connection_params()['connect_timeout'])"
    )
    result = project.run(
        [str(project.bin / "python"), "manage.py", "shell", "-c", show],
        DATABASE_URL=database,
        DB_STATEMENT_TIMEOUT="1.5",
        DB_CONNECT_TIMEOUT="4",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.split()[-2:] == ["1500ms", "4"]


def test_postgres_pool_is_sized_from_the_environment(
    pg_service: Service, postgres: PostgresServer
) -> None:
    def fetch(_: int) -> int:
        with pg_service.client() as client:
            return client.get("/api/items").status_code

    with ThreadPoolExecutor(max_workers=10) as pool:
        codes = list(pool.map(fetch, range(200)))
    assert set(codes) == {200}
    # The pool keeps DB_POOL_SIZE connections and never opens more than
    # DB_POOL_SIZE + DB_MAX_OVERFLOW, whatever the worker's threads do.
    opened = postgres.connections("service")
    assert 3 <= opened <= 5, opened
    metrics = httpx.get(pg_service.base_url + "/metrics").text
    assert total(metrics, "db_client_connection_max") == 5
    assert total(metrics, "db_client_connection_wait_time_seconds_count") >= 200
