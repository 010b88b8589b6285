"""Runtime: CPU, memory, file descriptors, garbage collection and restarts.

With several workers (multiprocess mode) the services report every process
of the server with a ``pid`` label (contract, section 7); every query sums
or picks over the processes, so the board reads the same in both modes.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard

from ..panels import RATE, Query, dashboard, graph, sel, single
from ..rules import RUNTIME

START = "process_start_time_seconds"


def _restarts() -> str:
    """Processes replaced within the window, by instance, in both modes.

    One process keeps its series and its start time changes; with several
    workers each process has its own ``pid`` series, so a replaced worker is a
    series seen in the window that is gone now.
    """
    changed = f"sum by (instance) (changes({START}{sel()}[{RATE}]))"
    seen = f"count by (instance) (count_over_time({START}{sel()}[{RATE}]))"
    live = f"count by (instance) ({START}{sel()})"
    return f"{changed}\n+ {seen}\n- {live}"


def build() -> Dashboard:
    return dashboard(
        RUNTIME,
        "Runtime",
        "Processes of the service: CPU, memory, file descriptors, garbage collection and "
        "restarts. CPU adds the server's master and workers up; memory and file "
        "descriptors are each process' own (forked workers share pages, and each process "
        "has its own descriptor limit).",
        [
            [
                single(
                    "Uptime",
                    "Time since the oldest process of each instance started (with several "
                    "workers, the server's master).",
                    "s",
                    Query(
                        f"time() - min by (instance) (process_start_time_seconds{sel()})",
                        "{{instance}}",
                    ),
                    width=6,
                ),
                single(
                    "Processes",
                    "Server processes reporting: one per instance, or the master and each "
                    "worker with several workers.",
                    "short",
                    Query(f"count(process_start_time_seconds{sel()})", "processes"),
                    width=6,
                ),
                single(
                    "Resident memory",
                    "Resident memory of the largest process. Not a sum: forked workers "
                    "share the pages they inherited, which each one's figure counts again.",
                    "bytes",
                    Query(f"max(process_resident_memory_bytes{sel()})", "largest process"),
                    width=6,
                ),
                single(
                    "Targets up",
                    "Targets of the service whose /metrics Prometheus scraped successfully "
                    "last time, out of all its targets.",
                    "short",
                    Query(f"sum(up{sel()})", "up"),
                    Query(f"count(up{sel()})", "targets"),
                    width=6,
                ),
            ],
            [
                graph(
                    "CPU",
                    "CPU time used per second, by instance (100% is one core).",
                    "percentunit",
                    Query(
                        f"sum by (instance) (rate(process_cpu_seconds_total{sel()}[{RATE}]))",
                        "{{instance}}",
                    ),
                ),
                graph(
                    "Resident memory by process",
                    "Resident memory of each process (the master and each worker with "
                    "several workers), not summed: forked processes share pages.",
                    "bytes",
                    Query(
                        f"max by (instance, pid) (process_resident_memory_bytes{sel()})",
                        "{{instance}} {{pid}}",
                    ),
                ),
            ],
            [
                graph(
                    "File descriptors used",
                    "Open file descriptors (sockets included) as a share of the process' "
                    "own limit, in the fullest process of each instance; the alert opens "
                    "a ticket above 80%.",
                    "percentunit",
                    Query(
                        f"max by (instance) (process_open_fds{sel()} / process_max_fds{sel()})",
                        "{{instance}}",
                    ),
                    width=8,
                    lines=[(0.8, "red")],
                ),
                graph(
                    "Garbage collections",
                    "Python garbage collections per second, by generation.",
                    "ops",
                    Query(
                        f"sum by (generation) (rate(python_gc_collections_total{sel()}[{RATE}]))",
                        "generation {{generation}}",
                    ),
                    width=8,
                ),
                graph(
                    "Objects collected",
                    "Objects freed by the garbage collector per second, by generation, "
                    "and uncollectable objects found.",
                    "ops",
                    Query(
                        "sum by (generation) "
                        f"(rate(python_gc_objects_collected_total{sel()}[{RATE}]))",
                        "generation {{generation}}",
                    ),
                    Query(
                        f"sum(rate(python_gc_objects_uncollectable_total{sel()}[{RATE}]))",
                        "uncollectable",
                    ),
                    width=8,
                ),
            ],
            [
                graph(
                    "Restarts",
                    "Processes replaced within the rate window, by instance: the service "
                    "restarted (one process: its start time changed) or a worker did "
                    "(several workers: a pid went away). A new pod is a new instance.",
                    "short",
                    Query(_restarts(), "{{instance}}"),
                ),
                graph(
                    "Youngest process age",
                    "Age of the most recently started process of each instance: it drops "
                    "to zero whenever a worker or the service restarts.",
                    "s",
                    Query(
                        f"min by (instance) (time() - process_start_time_seconds{sel()})",
                        "{{instance}}",
                    ),
                ),
            ],
            [
                graph(
                    "Versions running",
                    "Instances by the service's version and by the kit and contract "
                    "versions it was generated from (service_build_info): a service on an "
                    "older kit shows an older kit version; a deploy shows as a new line.",
                    "short",
                    Query(
                        "count by (version, kit_version, contract_version) "
                        f"(max by (instance, version, kit_version, contract_version) "
                        f"(service_build_info{sel()}))",
                        "{{version}} (kit {{kit_version}}, contract {{contract_version}})",
                    ),
                    width=24,
                ),
            ],
        ],
    )
