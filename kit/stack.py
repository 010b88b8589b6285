"""Reading a generated project's local stack as one picture: which service
listens on which port, which addresses the configuration files name, which
data source uids the dashboards and data sources refer to, and which fields
each component's documentation lists.

No Docker engine, OpenTelemetry Collector, Loki or Grafana runs here, and
none installs (the collector and Loki are Go programs, built from modules
this machine cannot fetch), so the stack is checked from its files.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from .dashboards import data_links, panels

# host:port inside a URL or an endpoint ("tempo:4317", "http://loki:3100/otlp").
ADDRESS = re.compile(
    r"^(?:[a-z][a-z0-9+.-]*://)?(?:[^@/\s]+@)?(?P<host>[A-Za-z0-9.-]+):(?P<port>\d+)"
)
# Addresses a process listens on, or that the Docker daemon dials: not services.
NOT_SERVICES = {"0.0.0.0", "127.0.0.1", "localhost"}
# Ports the images listen on by default, where the project's files do not say.
DEFAULT_PORTS = {"db": 5432, "prometheus": 9090, "grafana": 3000}


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def strings(node: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """Every string in a parsed YAML or JSON document, with where it is."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from strings(value, f"{path}.{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from strings(value, f"{path}[{index}]")
    elif isinstance(node, str):
        yield path, node


def addresses(node: Any) -> Iterator[tuple[str, str, int]]:
    """(where, host, port) of every address a document names (an image's
    ``name:tag`` is none)."""
    for where, text in strings(node):
        match = None if where.endswith(".image") else ADDRESS.match(text)
        if match:
            yield where, match["host"], int(match["port"])


def port(endpoint: str) -> int:
    return int(endpoint.rsplit(":", 1)[1])


def container_ports(service: dict[str, Any]) -> set[int]:
    """The container side of a compose service's published ports."""
    return {
        int(str(mapping).rsplit(":", 1)[1].split("/")[0]) for mapping in service.get("ports", [])
    }


def listening(project: Path) -> dict[str, set[int]]:
    """Service -> the ports it listens on, as its own configuration sets them."""
    services = load(project / "compose.yaml")["services"]
    collector = load(project / "deploy/otel-collector/config.yaml")
    tempo = load(project / "deploy/tempo/tempo.yaml")
    loki = load(project / "deploy/loki/loki.yaml")
    found: dict[str, set[int]] = {name: set() for name in services}
    for name, default in DEFAULT_PORTS.items():
        found[name].add(default)
    found["web"] = {int(services["web"]["environment"]["PORT"])}
    found["otel-collector"] = {
        port(endpoint)
        for _, endpoint in strings({"r": collector["receivers"], "e": collector["extensions"]})
        if ADDRESS.match(endpoint)
    }
    found["tempo"] = {int(tempo["server"]["http_listen_port"])} | {
        port(endpoint) for _, endpoint in strings(tempo["distributor"]) if ADDRESS.match(endpoint)
    }
    found["loki"] = {int(loki["server"]["http_listen_port"])}
    return found


# --- data source uids -------------------------------------------------------


def provisioned(project: Path) -> dict[str, dict[str, Any]]:
    """The provisioned data sources by uid."""
    folder = project / "grafana/provisioning/datasources"
    return {
        source["uid"]: source
        for path in sorted(folder.glob("*.y*ml"))
        for source in load(path)["datasources"]
    }


def uid_references(node: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """(where, uid) of every data source a document names by uid: a
    ``datasourceUid`` key, or the ``uid`` of a ``datasource`` object."""
    if isinstance(node, dict):
        for key, value in node.items():
            where = f"{path}.{key}"
            if key == "datasourceUid" and isinstance(value, str):
                yield where, value
            elif key == "datasource" and isinstance(value, dict) and "uid" in value:
                yield where, str(value["uid"])
            else:
                yield from uid_references(value, where)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from uid_references(value, f"{path}[{index}]")


# Grafana's own annotations are no data source of the project.
BUILT_IN = {"-- Grafana --", "grafana"}
VARIABLE = re.compile(r"^\$\{?(\w+)\}?$")


def dashboard_uid_problems(boards: dict[str, dict[str, Any]], sources: dict[str, Any]) -> list[str]:
    """Every data source a dashboard names, or a data link of it opens, that
    the provisioning does not hold: a uid, or a data source variable whose
    type no provisioned data source has."""
    types = {source["type"] for source in sources.values()}
    problems = []
    for name, board in boards.items():
        chosen = {
            v["name"]: v["query"] for v in board["templating"]["list"] if v["type"] == "datasource"
        }
        references = list(uid_references(board))
        for link in data_links({name: board}):
            pane = link.explore_pane()
            references.append((link.where, str(pane["datasource"])))
            references += [(link.where, ref) for _, ref in uid_references(pane)]
        for where, uid in references:
            variable = VARIABLE.match(uid)
            if uid in BUILT_IN or uid in sources:
                continue
            if variable and variable[1] in chosen and chosen[variable[1]] in types:
                continue
            problems.append(f"{name}{where}: {uid!r}")
        for panel in panels(board):
            if not panel.get("datasource"):
                problems.append(f"{name} / {panel.get('title')}: no data source")
    return problems


# --- fields each component documents -----------------------------------------

# The keys the components' documentation lists for each part the kit
# configures (OpenTelemetry Collector contrib 0.130: each component's README
# and config; Loki 3.5: the configuration reference). A key outside them is a
# typo the real program would refuse at start.
COLLECTOR_FIELDS: dict[str, set[str]] = {
    "health_check": {
        "endpoint",
        "path",
        "tls",
        "cors",
        "response_body",
        "check_collector_pipeline",
    },
    "otlp/receiver": {"protocols"},
    "fluentforward": {"endpoint"},
    "memory_limiter": {
        "check_interval",
        "limit_mib",
        "spike_limit_mib",
        "limit_percentage",
        "spike_limit_percentage",
    },
    "batch": {
        "timeout",
        "send_batch_size",
        "send_batch_max_size",
        "metadata_keys",
        "metadata_cardinality_limit",
    },
    "transform": {
        "error_mode",
        "trace_statements",
        "metric_statements",
        "log_statements",
        "profile_statements",
        "flatten_data",
    },
    "groupbyattrs": {"keys"},
    "otlp/exporter": {
        "endpoint",
        "tls",
        "headers",
        "compression",
        "timeout",
        "retry_on_failure",
        "sending_queue",
        "balancer_name",
        "auth",
        "keepalive",
    },
    "otlphttp": {
        "endpoint",
        "traces_endpoint",
        "metrics_endpoint",
        "logs_endpoint",
        "tls",
        "headers",
        "compression",
        "timeout",
        "retry_on_failure",
        "sending_queue",
        "encoding",
        "auth",
    },
}
# A statement group of the transform processor.
STATEMENT_GROUP = {"context", "statements", "conditions", "error_mode"}
LOKI_FIELDS: dict[str, set[str]] = {
    "": {
        "auth_enabled",
        "server",
        "common",
        "schema_config",
        "limits_config",
        "compactor",
        "analytics",
        "storage_config",
        "ingester",
        "querier",
        "query_range",
        "ruler",
        "pattern_ingester",
        "frontend",
        "distributor",
    },
    "server": {"http_listen_port", "grpc_listen_port", "log_level", "http_listen_address"},
    "common": {"instance_addr", "path_prefix", "replication_factor", "ring", "storage"},
    "limits_config": {
        "retention_period",
        "allow_structured_metadata",
        "otlp_config",
        "reject_old_samples",
        "reject_old_samples_max_age",
        "volume_enabled",
        "discover_log_levels",
    },
    "compactor": {
        "working_directory",
        "compaction_interval",
        "retention_enabled",
        "retention_delete_delay",
        "delete_request_store",
    },
    "analytics": {"reporting_enabled"},
    "schema_config.configs[]": {"from", "store", "object_store", "schema", "index"},
    "limits_config.otlp_config": {"resource_attributes", "scope_attributes", "log_attributes"},
    "limits_config.otlp_config.resource_attributes": {"ignore_defaults", "attributes_config"},
    "attributes_config[]": {"action", "attributes", "regex"},
}
LOKI_ACTIONS = {"index_label", "structured_metadata", "drop"}


def _kind(section: str, name: str) -> str:
    kind = name.split("/", 1)[0]
    return f"{kind}/{section[:-1]}" if kind == "otlp" else kind


def collector_field_problems(collector: dict[str, Any]) -> list[str]:
    problems = []
    for section in ("receivers", "processors", "exporters", "extensions"):
        for name, config in collector.get(section, {}).items():
            allowed = COLLECTOR_FIELDS.get(_kind(section, name))
            if allowed is None:
                problems.append(f"{section}.{name}: no documented fields known for it")
                continue
            problems += [f"{section}.{name}.{key}" for key in set(config or {}) - allowed]
            for statements in ("log_statements", "trace_statements", "metric_statements"):
                for group in (config or {}).get(statements, []):
                    problems += [
                        f"{section}.{name}.{statements}[].{key}"
                        for key in set(group) - STATEMENT_GROUP
                    ]
    return problems


def loki_field_problems(loki: dict[str, Any]) -> list[str]:
    def extra(where: str, node: dict[str, Any]) -> list[str]:
        return [f"{where}.{key}".lstrip(".") for key in set(node) - LOKI_FIELDS[where]]

    problems = extra("", loki)
    for block in ("server", "common", "limits_config", "compactor", "analytics"):
        problems += extra(block, loki.get(block, {}))
    for config in loki["schema_config"]["configs"]:
        problems += extra("schema_config.configs[]", config)
    otlp = loki.get("limits_config", {}).get("otlp_config", {})
    problems += extra("limits_config.otlp_config", otlp)
    resource = otlp.get("resource_attributes", {})
    problems += extra("limits_config.otlp_config.resource_attributes", resource)
    for rule in [
        *resource.get("attributes_config", []),
        *otlp.get("scope_attributes", []),
        *otlp.get("log_attributes", []),
    ]:
        problems += extra("attributes_config[]", rule)
        if rule.get("action") not in LOKI_ACTIONS:
            problems.append(f"attributes_config[].action {rule.get('action')!r}")
    return problems


def loki_labels(loki: dict[str, Any]) -> set[str]:
    """The resource attributes Loki makes labels of, as OTLP names them."""
    resource = loki["limits_config"]["otlp_config"]["resource_attributes"]
    assert resource.get("ignore_defaults") is True, "Loki's default labels would be added"
    return {
        attribute
        for rule in resource["attributes_config"]
        if rule["action"] == "index_label"
        for attribute in rule.get("attributes", [])
    }


def label_name(attribute: str) -> str:
    """A label as Loki names an OTLP attribute: what is not a letter, digit or _ becomes _."""
    return re.sub(r"[^A-Za-z0-9_]", "_", attribute)
