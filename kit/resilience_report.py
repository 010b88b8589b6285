"""Write docs/resilience.md from the figures the resilience tier recorded.

    make resilience-report

runs tests/test_resilience.py (each test notes what it measured into
.figures/) and then this module. Every number in the document comes from
that run.
"""

from __future__ import annotations

import json
import platform
import sys
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIGURES = ROOT / ".figures"
DOC = ROOT / "docs" / "resilience.md"

SCENARIOS = [
    (
        "sigterm_lets_database_requests_in_flight_finish",
        "1. Graceful shutdown, database work in flight",
    ),
    (
        "database_outage_is_a_fast_503_and_recovery_needs_no_restart (refuse)",
        "2. Database down: connections refused",
    ),
    (
        "database_outage_is_a_fast_503_and_recovery_needs_no_restart (blackhole)",
        "2. Database down: packets dropped",
    ),
    (
        "database_outage_is_a_fast_503_and_recovery_needs_no_restart (reset)",
        "2. Database down: connections reset",
    ),
    (
        "database_restart_costs_at_most_the_requests_in_flight",
        "3. Database restarted (`pg_ctl restart -m fast`)",
    ),
    ("pool_exhaustion_answers_the_excess_with_503_in_time", "4. Pool exhaustion"),
    ("each_worker_has_its_own_bounded_pool", "4. Pool exhaustion, `WEB_CONCURRENCY=2`"),
    (
        "statement_timeout_is_enforced_by_postgres_and_the_connection_reused",
        "5. Statement timeout (a table lock holds the query)",
    ),
    ("requests_beyond_the_in_flight_limit_are_shed_at_once", "6. Load shedding"),
    ("a_failing_request_does_not_disturb_the_others", "7. Error isolation: a failing request"),
    (
        "failing_background_work_is_logged_once_and_gives_its_connection_back",
        "7. Error isolation: failing background work",
    ),
    ("sigterm_waits_for_background_work", "1. Graceful shutdown, background work pending"),
    (
        "a_killed_worker_is_replaced_and_the_counts_survive",
        "8. `WEB_CONCURRENCY=2`, a worker SIGKILLed",
    ),
]

SETTINGS = """\
## The settings behind these figures

| Setting | Default | In the tests | Why this value |
| --- | --- | --- | --- |
| `WEB_CONCURRENCY` | 1 | 1; 2 (worker killed, pool per worker) | One worker per container, scaled by replicas: exemplars need a single process, and the orchestrator replaces a pod that dies. With more, each worker has its own pool: the database sees up to `WEB_CONCURRENCY` x P connections per replica, so size `max_connections` for replicas x workers x P. |
| `WEB_THREADS` | 8 (Flask, Django) | 8; 18 where 16 requests run at once | Threads per threaded worker. Two stay free for probes and refusals, so `MAX_IN_FLIGHT` is 6, below the pool's 10 connections: a request never waits for a connection because of its own worker's other requests, only for background work or a slow database. |
| `MAX_IN_FLIGHT` | 100 (FastAPI), `WEB_THREADS - 2` (threads) | 2 (shedding) | Beyond it a request gets 503 `overloaded` at once instead of queueing. FastAPI's limit is ten times its pool on purpose: a waiting request costs a coroutine, not a thread; requests that touch no database (or hold a connection only for their queries) go on; those that find the pool busy wait at most `DB_POOL_TIMEOUT` and get 503. The pool protects the database, the in-flight limit the worker's memory and latency. |
| `DB_POOL_SIZE` / `DB_MAX_OVERFLOW` | 5 / 5 per worker | 2 / 1 (pool exhaustion) | Ten connections per worker cover a threaded worker's in-flight limit (6) with room for background work; the overflow is closed again when idle, so a burst does not keep connections open. |
| `DB_POOL_TIMEOUT` | 2 s | 1 s | A request that cannot get a connection soon is better answered 503 with `Retry-After`, while the client or load balancer can still retry elsewhere, than left queueing towards its own timeout. Only a full pool waits: with room, a request opens the connection itself, so a database that refuses connections is a 503 at once. |
| `DB_CONNECT_TIMEOUT` | 3 s | 2 s (outage) | Bounds opening a connection to a database that drops packets (libpq counts whole seconds and treats less than 2 as 2), and checking a pooled connection before reuse: a dead one is replaced, a silent one fails the request within this time. |
| `DB_STATEMENT_TIMEOUT` | 5 s | 1 s | PostgreSQL cancels a runaway statement, so it cannot hold a pooled connection indefinitely; the error is a 503 and the connection is reused. |
| Round-trip deadline | statement timeout + connect timeout (8 s) | 3 s (outage) | The service's own bound on waiting for any answer (a statement, commit, rollback): a database host that vanished or a network that drops packets sends no error, and TCP would notice only after minutes. Past it the connection is closed and the request gets 503. |
| TCP keepalives, `tcp_user_timeout` | first probe after 30 s idle, then every 10 s; closed when unacknowledged for the round-trip deadline | same (the tests check the keepalive timer on every connection) | Connections idle in the pool to a host that is gone are closed before a request picks them; a firewall's idle timeout does not cut them silently. |
| `READY_TIMEOUT` | 1 s | 1 s | A probe answers within the kubelet's probe timeout (2 s in the manifests) even when the database does not; every probe runs its own check, so readiness turns 503 with the first probe after an outage begins. |
| `DRAIN_DELAY` | 2 s (0 in Kubernetes) | 1 s | Readiness is 503 at once; the listener stays open this long so load balancers that poll readiness stop sending first. Kubernetes removes endpoints during the `preStop` sleep instead. |
| `GRACEFUL_TIMEOUT` | 20 s | 20 s | In-flight requests and background work get this long; gunicorn's SIGKILL comes 5 s later, so clean-up (pool, spans) always runs. `terminationGracePeriodSeconds` (40) exceeds preStop + drain + 20 + 5. |
| `OTEL_BSP_SCHEDULE_DELAY` | SDK default, 5 s | 5 s (shutdown), 0.1 s elsewhere | The shutdown test keeps the default, so the spans of the last requests arrive only through the flush at exit. |

The tests shorten some timeouts so the suite stays fast; the behaviour does
not depend on the values.
"""


def load() -> dict[str, dict[str, dict[str, object]]]:
    merged: dict[str, dict[str, dict[str, object]]] = {}
    for path in sorted(FIGURES.glob("resilience-*.json")):
        for framework, scenarios in json.loads(path.read_text()).items():
            for scenario, figures in scenarios.items():
                merged.setdefault(framework, {}).setdefault(scenario, {}).update(figures)
    return merged


def main() -> int:
    figures = load()
    if not figures:
        print("no figures in .figures/: run `make resilience-report`", file=sys.stderr)
        return 1
    lines = [
        "# Resilience, measured",
        "",
        "What every generated service did under faults, in one run of the kit's",
        "resilience tier (`tests/test_resilience.py`) against a private PostgreSQL",
        "behind a fault-injecting proxy. Each figure is what the test observed;",
        "the test's own assertions say what was required. Regenerate with",
        "`make resilience-report`.",
        "",
        f"Run on {datetime.now(UTC):%Y-%m-%d} on {platform.machine()} "
        f"({platform.system()} {platform.release()}), Python {platform.python_version()} for the kit.",
        "",
        SETTINGS,
    ]
    for framework in sorted(figures):
        lines += [f"## {framework}", "", "| Scenario | Figure | Value |", "| --- | --- | ---: |"]
        scenarios = figures[framework]
        for key, title in SCENARIOS:
            for name, value in scenarios.get(key, {}).items():
                lines.append(f"| {title} | {name} | {value} |")
                title = ""
        lines.append("")
    DOC.write_text("\n".join(lines))
    print(f"wrote {DOC.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
