"""A project's ``grafana/rules/`` (its rules and their tests) and
``docs/runbooks.md``, rendered for its job, objectives and links from the
project's template context.

The post-generation hook writes these files into every project (and
``cruft update`` rewrites them); ``python -m monitoring`` writes the kit's
copy, rendered for the default answers (EXAMPLE), which the kit's tests read.
Imports nothing beyond PyYAML, which cookiecutter itself depends on.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .output import to_yaml
from .rule_tests import test_files
from .rules import Service, alerts_file, recording_file
from .runbooks import runbooks_file, runbooks_url
from .slo import GRAFANA_URL, objectives

# The default answers' project slug: the kit's own copy of the rules is its.
EXAMPLE = {"project_slug": "example-service"}

HEADER = """Generated for the scrape job {job} by the observability kit (monitoring/{source},
written by the project's post-generation hook and by `cruft update`): change the kit, not this copy.
{what}"""


def service(context: Mapping[str, Any]) -> Service:
    """The service a template context describes: its slug is its scrape job
    (deploy/prometheus/prometheus.yml); ``slo_*`` its objectives; ``runbooks_url``
    where its runbooks are read."""
    return Service(
        job=str(context["project_slug"]),
        objectives=objectives(context),
        grafana_url=str(context.get("grafana_url", GRAFANA_URL)),
        runbooks_url=runbooks_url(context),
    )


def rule_files(context: Mapping[str, Any]) -> dict[str, str]:
    """The files of ``grafana/rules/`` by their path inside it."""
    found = service(context)
    job = found.job
    files = {
        "recording.yml": to_yaml(
            recording_file(found),
            HEADER.format(
                job=job,
                source="rules.py",
                what="Recording rules: the objectives, and the SLO error ratios over each "
                "alerting window\nand the SLO window, for the burn-rate alerts and the "
                "SLO board.",
            ),
        ),
        "alerts.yml": to_yaml(
            alerts_file(found),
            HEADER.format(
                job=job,
                source="rules.py",
                what="Alerting rules: multi-window, multi-burn-rate SLO alerts (critical "
                "pages, warning opens\na ticket), outage, absence, traffic, readiness, "
                "saturation and restarts.",
            ),
        ),
    }
    for name, data in test_files(found).items():
        files[f"tests/{name}"] = to_yaml(
            data,
            HEADER.format(
                job=job,
                source="rule_tests.py",
                what="promtool test rules grafana/rules/tests/*.yml",
            ),
        )
    return files


def runbook_text(context: Mapping[str, Any]) -> str:
    """The project's ``docs/runbooks.md``."""
    found = service(context)
    return runbooks_file(
        found,
        HEADER.format(
            job=found.job,
            source="runbooks.py",
            what="One section per alert of grafana/rules/alerts.yml, which links it (runbook_url).",
        ),
    )


def project_files(context: Mapping[str, Any]) -> dict[str, str]:
    """Every file rendered for the project, by its path in the project."""
    return {
        **{f"grafana/rules/{path}": text for path, text in rule_files(context).items()},
        "docs/runbooks.md": runbook_text(context),
    }
