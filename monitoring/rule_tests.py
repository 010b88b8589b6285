"""``promtool test rules`` unit tests for one service's rules (``grafana/rules/tests/``).

Rendered with the rules, for the project's job and objectives: each scenario
sets its traffic in proportion to the objectives' error budgets, so the same
scenarios hold for any objectives the project has, and what each alert must
say (its value included) is worked out here from the traffic, by the
arithmetic of the scenario, not read back from Prometheus.

Every alert is seen firing on its condition and quiet without it (the kit's
tests check that every alert of rules.py is).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .rules import Service, alerts_file
from .slo import BUCKETS, BURN_ALERTS, REQUESTS, le, least_requests, number

Case = dict[str, Any]
ROUTE = {"http_request_method": "GET", "http_route": "/api/items"}
STATUS = {
    "ok": {"http_response_status_code": "200", "error_type": ""},
    "bug": {"http_response_status_code": "500", "error_type": "internal_error"},
    "shed": {"http_response_status_code": "503", "error_type": "overloaded"},
    "database": {"http_response_status_code": "503", "error_type": "database_unavailable"},
}
POOL = "db_client_connection"


def _series(name: str, labels: dict[str, str], values: str) -> dict[str, str]:
    inner = ",".join(f'{key}="{value}"' for key, value in labels.items())
    return {"series": f"{name}{{{inner}}}", "values": values}


def _steady(per_minute: float, minutes: int, start: float = 0) -> str:
    return f"{number(start)}+{number(per_minute)}x{minutes}"


# --- what Prometheus' templates print, for the values the scenarios produce --------------


def _go_value(value: float) -> str:
    """``{{ $value }}``: Go's shortest float format."""
    if value == int(value) and abs(value) < 1e21:
        return str(int(value))
    return repr(value)


def _humanize(value: float) -> str:
    assert value == 0 or 1 <= abs(value) < 1000, "the scenarios keep to plain numbers"
    return f"{value:.4g}"


_TEMPLATES = {
    "{{ $value }}": _go_value,
    '{{ $value | printf "%.1f" }}': lambda value: f"{value:.1f}",
    "{{ $value | humanizePercentage }}": lambda value: f"{value * 100:.4g}%",
    "{{ $value | humanize }}": _humanize,
}


def _expand(template: str, labels: dict[str, str], value: float) -> str:
    text = re.sub(r"\{\{ \$labels\.(\w+) \}\}", lambda m: labels[m[1]], template)
    for placeholder, show in _TEMPLATES.items():
        if placeholder in text:
            text = text.replace(placeholder, show(value))
    assert "{{" not in text, f"a template the tests cannot expand: {text}"
    return text


@dataclass(frozen=True)
class Expect:
    """An alert instance the scenario must fire: its labels and its value."""

    labels: dict[str, str]
    value: float


class Alerts:
    """The service's alert rules, to state what a firing alert carries."""

    def __init__(self, service: Service) -> None:
        self.service = service
        self.rules = {
            rule["alert"]: rule
            for group in alerts_file(service)["groups"]
            for rule in group["rules"]
        }

    def check(self, name: str, at: str, *firing: Expect) -> dict[str, Any]:
        rule = self.rules[name]
        alerts = []
        for expect in firing:
            labels = {"job": self.service.job, **expect.labels, **rule["labels"]}
            annotations = {
                key: _expand(text, labels, expect.value)
                for key, text in rule["annotations"].items()
            }
            alerts.append({"exp_labels": labels, "exp_annotations": annotations})
        return {"eval_time": at, "alertname": name, "exp_alerts": alerts}

    def quiet(self, names: Iterable[str], at: str) -> list[dict[str, Any]]:
        return [self.check(name, at) for name in names]


def _case(
    name: str, series: list[dict[str, str]], alerts: list[dict[str, Any]], **more: Any
) -> Case:
    case: Case = {"name": name, "interval": "1m", "input_series": series}
    if alerts:
        case["alert_rule_test"] = alerts
    case.update(more)
    return case


@dataclass(frozen=True)
class Traffic:
    """The request series of one service, as its runtime exposes them."""

    job: str
    le: str  # the latency objective's bucket bound

    def requests(
        self, kind: str, values: str, fast: str | None = None, **labels: str
    ) -> list[dict[str, str]]:
        """A count series of one kind of answer and, when given, its bucket at
        the latency threshold (how many were answered within it)."""
        base = {"job": self.job, **ROUTE, **labels, **STATUS[kind]}
        found = [_series(REQUESTS, base, values)]
        if fast is not None:
            found.append(_series(BUCKETS, {**base, "le": self.le}, fast))
        return found


def _rounded(value: float, to: float = 0.01) -> float:
    """PromQL's ``round(value, to)``, computed as Prometheus does."""
    inverse = 1.0 / to
    return math.floor(value * inverse + 0.5) / inverse


# --- the SLO alerts ------------------------------------------------------------------


def slo_tests(service: Service) -> dict[str, Any]:
    job = service.job
    traffic = Traffic(job, le(service.objectives.latency_seconds))
    availability, latency = service.slos
    a, b = availability.budget, latency.budget
    alerts = Alerts(service)
    burns = [f"SLO{o.title}{s}Burn" for o in service.slos for s in ("Fast", "Slow")]

    def labelled(slo: str) -> str:
        return f'{{job="{job}",slo="{slo}"}}'

    cases = []

    # 1. From minute 61 a share of the requests (half, or all where half would
    # not reach a budget's page) is shed, at once: a page for availability,
    # and one for latency (a request refused at once is fast, but not served).
    share = 0.5 if 0.5 / max(a, b) > 20 else 1.0
    # Enough requests for the pages' guard however small a budget is: 600 a
    # minute, or more where the guard needs more over the hour.
    fastest = BURN_ALERTS[0].conditions[0][2]
    base = max(600, math.ceil(least_requests(fastest, min(a, b)) / 60 * 1.25))
    served, shed = 2 * base * (1 - share), 2 * base * share
    ok = _steady(base, 60) + " " + _steady(served, 89, 60 * base + served)
    refused = "0x60 " + _steady(shed, 89, shed)
    cases.append(
        _case(
            "shed requests from minute 61: a page for availability and for latency",
            traffic.requests("ok", ok, ok) + traffic.requests("shed", refused, refused),
            [
                *alerts.quiet(burns, "60m"),
                alerts.check(
                    "SLOAvailabilityFastBurn", "130m", Expect({"slo": "availability"}, share / a)
                ),
                alerts.check("SLOLatencyFastBurn", "130m", Expect({"slo": "latency"}, share / b)),
            ],
        )
    )
    # 2. Every request is slower than the threshold from minute 61 (and
    # answered): a page for latency only.
    cases.append(
        _case(
            "every request slow from minute 61: a page for latency only",
            traffic.requests(
                "ok", _steady(base, 150), _steady(base, 60) + f" {number(60 * base)}x89"
            ),
            [
                *alerts.quiet(burns, "60m"),
                alerts.check("SLOLatencyFastBurn", "130m", Expect({"slo": "latency"}, 1 / b)),
                *alerts.quiet(["SLOAvailabilityFastBurn", "SLOAvailabilitySlowBurn"], "130m"),
            ],
        )
    )
    # 3. Failures at four times the pace the availability budget allows, for
    # 7 hours: a ticket, no page, and a budget spent four times over (the
    # failures are not fast answers either: latency spends its budget too).
    total = 1000.0
    failed = 4 * a * total
    spent = [Expect({"slo": "availability"}, 1 - failed / total / a)]
    if failed / total / b >= 1:
        spent.append(Expect({"slo": "latency"}, 1 - failed / total / b))
    cases.append(
        _case(
            "failures at 4 times the budget's pace: a ticket, no page, the budget spent",
            traffic.requests("ok", _steady(total - failed, 420), _steady(total - failed, 420))
            + traffic.requests("database", _steady(failed, 420), _steady(failed, 420)),
            [
                alerts.check("SLOAvailabilitySlowBurn", "7h", Expect({"slo": "availability"}, 4.0)),
                alerts.check("SLOAvailabilityFastBurn", "7h"),
                alerts.check("SLOErrorBudgetExhausted", "7h", *spent),
            ],
            promql_expr_test=[
                {
                    "expr": 'round(slo:error_budget_remaining:ratio{slo="availability"}, 0.01)',
                    "eval_time": "7h",
                    "exp_samples": [
                        {
                            "labels": labelled("availability"),
                            "value": _rounded(1 - failed / total / a),
                        }
                    ],
                }
            ],
        )
    )
    # 4. Slow requests (answered, 200) at four times the latency budget's pace.
    slow = 4 * b * total
    cases.append(
        _case(
            "slow requests at 4 times the budget's pace: a ticket, no page",
            traffic.requests("ok", _steady(total, 420), _steady(total - slow, 420)),
            [
                alerts.check("SLOLatencySlowBurn", "7h", Expect({"slo": "latency"}, 4.0)),
                alerts.check("SLOLatencyFastBurn", "7h"),
                *alerts.quiet(["SLOAvailabilityFastBurn", "SLOAvailabilitySlowBurn"], "7h"),
            ],
        )
    )
    # 5. Within the objectives, half of each budget spent: nothing fires.
    total = 2000.0
    failed = 0.5 * min(a, b) * total
    slow = 0.5 * b * total - failed  # the failures count as slow already
    cases.append(
        _case(
            "within the objectives: nothing fires, half of each budget left",
            traffic.requests(
                "ok", _steady(total - failed, 420), _steady(total - failed - slow, 420)
            )
            + traffic.requests("bug", _steady(failed, 420), _steady(failed, 420)),
            alerts.quiet([*burns, "SLOErrorBudgetExhausted"], "7h"),
            promql_expr_test=[
                {
                    "expr": "round(slo:error_budget_remaining:ratio, 0.01)",
                    "eval_time": "7h",
                    "exp_samples": [
                        {
                            "labels": labelled("availability"),
                            "value": _rounded(1 - failed / total / a),
                        },
                        {"labels": labelled("latency"), "value": 0.5},
                    ],
                },
                {
                    "expr": "slo:objective:ratio",
                    "eval_time": "1m",
                    "exp_samples": [
                        {"labels": "slo:objective:ratio" + labelled(o.slo), "value": o.target}
                        for o in service.slos
                    ],
                },
            ],
        )
    )
    # 6. One failure among fewer requests over the hour than the page needs
    # (the ratio far above the page's threshold): quiet. Ten failures at once
    # among enough requests: a page.
    least = least_requests(fastest, a)
    # The page's value is the burn over the long window of the branch that
    # fires: the hour's, or where ten failures in an hour's least requests
    # stay below its burn rate (the lowest objectives), the six hours'
    # (the traffic began 104 minutes before).
    slower = BURN_ALERTS[0].conditions[1][2]
    paged = 10 / (least + 10) / a
    if paged <= fastest:
        paged = 10 / (least / 60 * 104 + 10) / a
        assert paged > slower, "the scenario pages on neither branch"
    cases.append(
        _case(
            "one failure among too few requests: no page",
            traffic.requests("ok", _steady((least - 2) / 60, 180))
            + traffic.requests("bug", "0x100 1x79"),
            [alerts.check("SLOAvailabilityFastBurn", "104m")],
        )
    )
    cases.append(
        _case(
            "ten failures at once among enough requests: a page",
            traffic.requests("ok", _steady(least / 60, 180))
            + traffic.requests("bug", "0x100 10x79"),
            [
                alerts.check(
                    "SLOAvailabilityFastBurn",
                    "104m",
                    Expect({"slo": "availability"}, paged),
                )
            ],
        )
    )
    # 7. The first failure of a kind counts: the runtime creates every failure
    # series at zero when it starts (contract, section 7), so one 503 moves
    # the ratio; the same 503 on a series that appears with it, at 1, does not.
    first = {
        "expr": f'slo:sli_errors:rate5m{{job="{job}", slo="availability"}} > bool 0',
        "eval_time": "13m",
    }
    for values, counted, name in (
        ("0x10 1x20", 1, "the first 503, on a series there at zero: counted"),
        (
            "_x11 1x19",
            0,
            "the first 503, on a series born with it: lost (why the runtime makes them)",
        ),
    ):
        sample = {"labels": labelled("availability"), "value": counted}
        cases.append(
            _case(
                name,
                traffic.requests("ok", _steady(600, 30)) + traffic.requests("database", values),
                [],
                promql_expr_test=[{**first, "exp_samples": [sample]}],
            )
        )
    return {"evaluation_interval": "1m", "tests": cases}


# --- the service alerts ---------------------------------------------------------------


def service_tests(service: Service) -> dict[str, Any]:
    job = service.job
    other = "another-service"  # scraped by the same Prometheus, not this service
    traffic = Traffic(job, le(service.objectives.latency_seconds))
    alerts = Alerts(service)
    cases = []

    def up(instance: str, values: str, of: str = job) -> dict[str, str]:
        return _series("up", {"job": of, "instance": instance}, values)

    # No target of the service answers from minute 6: a page (its SLO ratios
    # have no data to alert on). One target down of two is a ticket only;
    # another service's targets are not this one's.
    cases.append(
        _case(
            "no target of the service up: a page",
            [up("a:8000", "1x5 0x20"), up("b:8000", "1x5 0x20"), up("c:8000", "1x25", other)],
            [alerts.check("ServiceDown", "7m"), alerts.check("ServiceDown", "9m", Expect({}, 2))],
        )
    )
    cases.append(
        _case(
            "one target down of two: a ticket, no page; another service's target is not this one's",
            [up("a:8000", "1x5 0x20"), up("b:8000", "1x25"), up("c:8000", "0x25", other)],
            [
                alerts.check("ServiceDown", "20m"),
                alerts.check("ScrapeTargetDown", "12m", Expect({"instance": "a:8000"}, 0)),
            ],
        )
    )
    # No series of the service at all (another's only): a page after 5
    # minutes. Targets that exist, even down, are not absent.
    cases.append(
        _case(
            "no series of the service at all: a page",
            [up("c:8000", "0x20", other)],
            [
                alerts.check("ServiceTargetsAbsent", "3m"),
                alerts.check("ServiceTargetsAbsent", "6m", Expect({}, 1)),
                alerts.check("ScrapeTargetDown", "10m"),
            ],
        )
    )
    cases.append(
        _case(
            "a target down is not absent",
            [up("a:8000", "0x20")],
            [alerts.check("ServiceTargetsAbsent", "10m")],
        )
    )

    # Traffic stops after 90 minutes of 10 requests a minute: a page once no
    # request came for 10 minutes, and 5 more. A service that never had any
    # traffic stays quiet.
    cases.append(
        _case(
            "traffic stops after 90 minutes: a page",
            traffic.requests("ok", _steady(10, 90) + " 900x60"),
            [
                alerts.check("ServiceTrafficStopped", "95m"),
                alerts.check("ServiceTrafficStopped", "106m", Expect({}, 540)),
            ],
        )
    )
    cases.append(
        _case(
            "a service that never had traffic: nothing",
            traffic.requests("ok", "0x150"),
            [alerts.check("ServiceTrafficStopped", "120m")],
        )
    )

    # Instance a fails its readiness check from minute 11; b stays ready;
    # another service's instance is not ready, which is not this one's concern.
    def ready(instance: str, values: str, of: str = job) -> dict[str, str]:
        return _series("service_ready", {"job": of, "instance": instance}, values)

    cases.append(
        _case(
            "an instance fails its readiness check: a ticket",
            [ready("a:8000", "1x10 0x10"), ready("b:8000", "1x20"), ready("c:8000", "0x20", other)],
            [alerts.check("ServiceNotReady", "17m", Expect({"instance": "a:8000"}, 0))],
        )
    )
    cases.append(
        _case(
            "instances ready, another service's not: nothing",
            [ready("b:8000", "1x20"), ready("c:8000", "0x20", other)],
            [alerts.check("ServiceNotReady", "17m")],
        )
    )

    # 5% of requests shed for 10 minutes: a ticket. Half a percent: nothing.
    for refused, firing in ((50, [Expect({}, 0.05)]), (5, [])):
        cases.append(
            _case(
                "5% shed for 10 minutes: a ticket" if firing else "0.5% shed: nothing",
                traffic.requests("ok", _steady(1000 - refused, 30))
                + traffic.requests("shed", _steady(refused, 30)),
                [alerts.check("ServiceSheddingLoad", "25m", *firing)],
            )
        )

    # a (a master and workers): three workers replaced within minutes. c (one
    # process): restarted three times. b: a master and two workers that keep running.
    def process(instance: str, values: str, pid: str | None = None) -> dict[str, str]:
        labels = {"job": job, "instance": instance, **({"pid": pid} if pid else {})}
        return _series("process_start_time_seconds", labels, values)

    cases.append(
        _case(
            "workers replaced, a process restarted: a ticket each",
            [
                process("a:8000", "100x20", "1"),
                process("a:8000", "100 100 stale", "11"),
                process("a:8000", "_x2 102 102 stale", "12"),
                process("a:8000", "_x4 104 104 stale", "13"),
                process("a:8000", "100x20", "14"),
                process("a:8000", "_x6 106x14", "15"),
                process("b:8000", "100x20", "1"),
                process("b:8000", "100x20", "2"),
                process("b:8000", "100x20", "3"),
                process("c:8000", "100 100 102 102 104 104 106x14"),
            ],
            [
                alerts.check("ServiceCrashLooping", "3m"),
                alerts.check(
                    "ServiceCrashLooping",
                    "8m",
                    Expect({"instance": "a:8000"}, 3),
                    Expect({"instance": "c:8000"}, 3),
                ),
            ],
        )
    )

    # A worker of a has 900 of its 1024 descriptors open. b's three processes
    # have 1200 open together, 400 each: far from any process' own limit.
    def fds(instance: str, pid: str, open_: int) -> list[dict[str, str]]:
        labels = {"job": job, "instance": instance, "pid": pid}
        return [
            _series("process_open_fds", labels, f"{open_}x20"),
            _series("process_max_fds", labels, "1024x20"),
        ]

    b_fds = fds("b:8000", "1", 400) + fds("b:8000", "11", 400) + fds("b:8000", "12", 400)
    cases.append(
        _case(
            "a process near its own descriptor limit: a ticket",
            fds("a:8000", "1", 20) + fds("a:8000", "11", 900) + b_fds,
            [
                alerts.check(
                    "ServiceFileDescriptorsNearLimit",
                    "12m",
                    Expect({"instance": "a:8000"}, 900 / 1024),
                )
            ],
        )
    )
    cases.append(
        _case(
            "processes far from their own limits, more open together: nothing",
            b_fds,
            [alerts.check("ServiceFileDescriptorsNearLimit", "12m")],
        )
    )

    # One worker of a has every connection in use and 3 requests waiting, the
    # other is idle: half the instance's connections are free, yet requests
    # wait. b's workers are half used; c's worker is full but nobody waits.
    def pool(instance: str, pid: str, used: int, waiting: int) -> list[dict[str, str]]:
        labels = {"job": job, "instance": instance, f"{POOL}_pool_name": "default", "pid": pid}
        return [
            _series(f"{POOL}s", {**labels, f"{POOL}_state": "used"}, f"{used}x20"),
            _series(f"{POOL}s", {**labels, f"{POOL}_state": "idle"}, f"{10 - used}x20"),
            _series(f"{POOL}_max", labels, "10x20"),
            _series(f"{POOL}_pending_requests", labels, f"{waiting}x20"),
        ]

    busy = pool("b:8000", "11", 5, 0) + pool("b:8000", "12", 5, 0) + pool("c:8000", "11", 10, 0)
    cases.append(
        _case(
            "one worker's pool full with requests waiting, the other idle: a ticket",
            pool("a:8000", "11", 10, 3) + pool("a:8000", "12", 0, 0) + busy,
            [alerts.check("DatabasePoolExhausted", "6m", Expect({"instance": "a:8000"}, 3))],
        )
    )
    cases.append(
        _case(
            "pools half used, or full with nobody waiting: nothing",
            busy,
            [alerts.check("DatabasePoolExhausted", "6m")],
        )
    )

    # a: 2% of checkouts time out, steadily. b: two timeouts minutes apart.
    def checkouts(instance: str, per_minute: float, timeouts: str) -> list[dict[str, str]]:
        labels = {"job": job, "instance": instance, f"{POOL}_pool_name": "default"}
        return [
            _series(f"{POOL}_wait_time_seconds_count", labels, _steady(per_minute, 30)),
            _series(f"{POOL}_timeouts_total", labels, timeouts),
        ]

    rare = checkouts("b:8000", 10, "0x5 1x5 2x20")
    cases.append(
        _case(
            "2% of checkouts time out: a ticket",
            checkouts("a:8000", 100, _steady(2, 30)) + rare,
            [alerts.check("DatabasePoolTimeouts", "20m", Expect({"instance": "a:8000"}, 0.02))],
        )
    )
    cases.append(
        _case(
            "two timeouts minutes apart: nothing",
            rare,
            [alerts.check("DatabasePoolTimeouts", "20m")],
        )
    )
    return {"evaluation_interval": "1m", "tests": cases}


def test_files(service: Service, rules: str = "..") -> dict[str, dict[str, Any]]:
    """The test files by name, reading the rule files from ``rules`` (relative)."""
    files = [f"{rules}/recording.yml", f"{rules}/alerts.yml"]
    return {
        name: {"rule_files": files, **build(service)}
        for name, build in (("slo_test.yml", slo_tests), ("service_test.yml", service_tests))
    }
