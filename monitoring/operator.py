"""The monitoring a project deploys with itself on Kubernetes: its rules as the
Prometheus Operator's ``PrometheusRule`` and its dashboards as ConfigMaps that
Grafana's dashboard sidecar loads, in the ``prometheus-operator`` component of
``deploy/k8s`` beside the PodMonitor.

Built from the project's own ``grafana/`` once the hook has written it, so
they hold what ``promtool`` tests and what the local stack's Grafana shows:
the rule groups as parsed from the rule files, the dashboards' files as they
are (never through Jinja, so Grafana's ``{{ }}`` legends survive). Plain
Python and PyYAML, like everything the hook imports.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from .output import comment, to_yaml

COMPONENT = "deploy/k8s/components/prometheus-operator"
RULE_FILES = ("recording.yml", "alerts.yml")
# The label Grafana's Helm chart (and kube-prometheus-stack) has its sidecar
# watch for, and the annotation the sidecar reads a file's folder from.
SIDECAR_LABEL = {"grafana_dashboard": "1"}
FOLDER_ANNOTATION = "k8s-sidecar-target-directory"
FOLDER = "Observability kit"  # the local stack's folder (grafana/provisioning/dashboards)

HEADER = """Generated for {slug} by the observability kit (monitoring/operator.py) from {source}:
written by the project's post-generation hook and by `cruft update`; never edit it by hand.
{what}"""


def _labels(slug: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": slug, "app.kubernetes.io/component": "monitoring"}


def prometheus_rule(slug: str, rules: Path) -> dict[str, Any]:
    """The groups of the project's rule files, in one PrometheusRule."""
    groups = [
        group
        for name in RULE_FILES
        for group in yaml.safe_load((rules / name).read_text(encoding="utf-8"))["groups"]
    ]
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": slug, "labels": _labels(slug)},
        "spec": {"groups": groups},
    }


def dashboard_config_map(slug: str, path: Path) -> dict[str, Any]:
    """One dashboard's file, unchanged, under its own name."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            # Within 63 characters for the longest slug (40) and board name.
            "name": f"{slug}-board-{path.stem}",
            "labels": {**_labels(slug), **SIDECAR_LABEL},
            "annotations": {FOLDER_ANNOTATION: FOLDER},
        },
        "data": {path.name: path.read_text(encoding="utf-8")},
    }


def operator_files(context: Mapping[str, Any], grafana: Path) -> dict[str, str]:
    """The component's generated files, by their path in the project, from the
    project's ``grafana/`` directory."""
    slug = str(context["project_slug"])
    boards = sorted((grafana / "dashboards").glob("*.json"))
    maps = [to_yaml(dashboard_config_map(slug, path)) for path in boards]
    header = HEADER.format(
        slug=slug,
        source="grafana/dashboards/",
        what="One ConfigMap per dashboard, labelled for Grafana's dashboard sidecar.",
    )
    return {
        f"{COMPONENT}/prometheusrule.yaml": to_yaml(
            prometheus_rule(slug, grafana / "rules"),
            HEADER.format(
                slug=slug,
                source=" and ".join(f"grafana/rules/{name}" for name in RULE_FILES),
                what="Its groups are those files' groups, as promtool tests them.",
            ),
        ),
        f"{COMPONENT}/dashboards.yaml": comment(header) + "---\n".join(maps),
    }
