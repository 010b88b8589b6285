"""Deployment artifacts of every generated project: the container image, the
local observability stack, the Kubernetes manifests and CI.

No Docker engine or cluster runs here, so each artifact is checked by its
ecosystem's own validator (hadolint, the compose-spec schema, the Kubernetes
OpenAPI schemas after kustomize, actionlint), and one test reads every file
that names a port, a probe path or a shutdown timing and compares them.
The boot tier then runs gunicorn with the manifests' settings.
"""

from __future__ import annotations

import base64
import copy
import json
import math
import re
import shlex
import signal
import threading
import time
import tomllib
from pathlib import Path
from typing import Any

import httpx
import kubernetes_validate
import pytest
import yaml
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from hooks.kit_hooks import exec_form
from kit import crd, stack
from kit.dashboards import load as load_dashboards
from kit.deploy import (
    K8S_VERSIONS,
    OVERLAYS,
    actionlint,
    dockerfile,
    dockerignore_patterns,
    dockerignored,
    env_pairs,
    image_python,
    json_list,
    kustomize,
    load_yaml,
    module_constant,
    one,
    procfile,
    replay_build_stage,
    run,
    seconds,
    setting_defaults,
    tool,
)
from kit.pipelines import (
    PRE_COMMIT,
    gitlab_schema,
    gitlab_scripts,
    pre_commit_config,
    schema,
    shellcheck_gitlab,
)
from kit.postgres import PostgresServer
from kit.project import RUN_TIMEOUT, Project, requests_in_flight
from kit.render import KIT_ROOT, render
from kit.system import require, require_python
from monitoring.operator import COMPONENT, RULE_FILES, operator_files
from monitoring.slo import SLO_WINDOW
from monitoring.slo import seconds as window_seconds
from tests.conftest import Boot

# The contract's routes (docs/contract.md, section 3).
LIVENESS, READINESS, METRICS = "/healthz", "/ready", "/metrics"
# The local stack's services (docs/contract.md, section 11) and the release step.
STACK = {"web", "db", "otel-collector", "tempo", "loki", "prometheus", "grafana", "release"}
# The Prometheus Operator's kinds the overlays hold (components/prometheus-operator).
OPERATOR_KINDS = ("PodMonitor", "PrometheusRule")


@pytest.fixture(scope="session")
def generated(framework: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The framework's template rendered with defaults (not installed)."""
    return render(framework, tmp_path_factory.mktemp(f"{framework}-deploy"))


@pytest.fixture(scope="session")
def manifests(generated: Path) -> dict[str, list[dict[str, Any]]]:
    """Each overlay built by kustomize, as ``kubectl apply -k`` would send it."""
    return {name: kustomize(generated / "deploy/k8s/overlays" / name) for name in OVERLAYS}


def web_container(objects: list[dict[str, Any]]) -> dict[str, Any]:
    pod = one(objects, "Deployment")["spec"]["template"]["spec"]
    return next(c for c in pod["containers"] if c["name"] == "web")


def container_env(objects: list[dict[str, Any]], container: dict[str, Any]) -> dict[str, str]:
    """The settings a container gets: its ConfigMaps and Secrets, then its own ``env`` values
    (references the kubelet expands, such as ``$(K8S_POD_NAME)``, are left out)."""
    env: dict[str, str] = {}
    named = {(obj["kind"], obj["metadata"]["name"]): obj for obj in objects}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            env.update(named["ConfigMap", source["configMapRef"]["name"]]["data"])
        if "secretRef" in source:
            data = named["Secret", source["secretRef"]["name"]]["data"]
            env.update({key: base64.b64decode(value).decode() for key, value in data.items()})
    for item in container.get("env", []):
        if "value" in item and "$(" not in item["value"]:
            env[item["name"]] = item["value"]
    return env


render_tier = pytest.mark.render


# --- The layer ------------------------------------------------------------------


@render_tier
def test_the_template_takes_the_deploy_layer(framework: str) -> None:
    answers = json.loads((KIT_ROOT / "templates" / framework / "cookiecutter.json").read_text())
    assert "deploy" in answers["_shared"], f"list 'deploy' in templates/{framework}/_shared"


@render_tier
def test_a_long_awkward_name_still_gives_valid_artifacts(framework: str, tmp_path: Path) -> None:
    # The longest slug allowed names every Kubernetes object, label and the compose project.
    project = render(framework, tmp_path, project_name="Ünïcode " + "x" * 32)
    assert len(project.name) == 40
    compose = run(
        tool("check-jsonschema"),
        "--builtin-schema",
        "vendor.compose-spec",
        str(project / "compose.yaml"),
    )
    assert compose.returncode == 0, compose.stdout
    for overlay in OVERLAYS:
        for obj in kustomize(project / "deploy/k8s/overlays" / overlay):
            try:
                kubernetes_validate.validate(obj, K8S_VERSIONS[-1], strict=True)
            except kubernetes_validate.SchemaNotFoundError:
                assert obj["kind"] in OPERATOR_KINDS
            assert len(obj["metadata"]["name"]) <= 63
    lint = actionlint(project / ".github/workflows/ci.yml")
    assert lint.returncode == 0, lint.stdout


@render_tier
@pytest.mark.parametrize(
    "command", ["gunicorn -b 0.0.0.0:$PORT app:app", "alembic upgrade head && seed", "a | b"]
)
def test_a_procfile_command_that_needs_a_shell_is_refused(command: str) -> None:
    # Containers run the Procfile's commands without a shell (contract, section 1).
    with pytest.raises(SystemExit, match="needs a shell"):
        exec_form(command)
    assert json.loads(exec_form("gunicorn -c gunicorn.conf.py 'pkg:create()'")) == [
        "gunicorn",
        "-c",
        "gunicorn.conf.py",
        "pkg:create()",
    ]


# --- Container image ----------------------------------------------------------


@render_tier
def test_dockerfile_is_clean_under_hadolint(generated: Path) -> None:
    result = run(tool("hadolint"), "--no-color", str(generated / "Dockerfile"))
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr


@render_tier
def test_hadolint_catches_a_broken_dockerfile(generated: Path, tmp_path: Path) -> None:
    # The same check on a shell-form CMD run as root must fail, or the one above proves nothing.
    text = (generated / "Dockerfile").read_text()
    broken = re.sub(r"^USER .*$", "USER root", text, flags=re.M)
    broken = re.sub(r"^CMD \[.*\]$", "CMD gunicorn app", broken, flags=re.M)
    (tmp_path / "Dockerfile").write_text(broken)
    result = run(tool("hadolint"), "--no-color", str(tmp_path / "Dockerfile"))
    assert result.returncode != 0
    assert "DL3002" in result.stdout and "DL3025" in result.stdout, result.stdout


@render_tier
def test_image_runs_the_procfile_web_command_as_non_root(generated: Path) -> None:
    steps = dockerfile(generated / "Dockerfile")
    stages = [s for s in steps if s.keyword == "FROM"]
    assert len(stages) >= 2, "multi-stage: dependencies are built apart from the runtime"
    final = [s for s in steps if s.stage == stages[-1].stage]

    args = dict(s.arguments.split("=", 1) for s in steps if s.keyword == "ARG" and s.stage == -1)
    python = args["PYTHON_VERSION"]
    assert stages[-1].arguments == "python:${PYTHON_VERSION}-slim"
    requires = tomllib.loads((generated / "pyproject.toml").read_text())["project"]
    assert Version(python) in SpecifierSet(requires["requires-python"]), (
        f"image Python {python} is outside requires-python {requires['requires-python']}"
    )

    (cmd,) = [s for s in final if s.keyword == "CMD"]
    assert json_list(cmd.arguments) == procfile(generated)["web"]
    assert not [s for s in final if s.keyword == "ENTRYPOINT"], "nothing wraps the web command"
    assert [s.arguments for s in final if s.keyword == "STOPSIGNAL"] == ["SIGTERM"]

    (user,) = [s for s in final if s.keyword == "USER"]
    uid = user.arguments.split(":")[0]
    assert uid.isdigit() and int(uid) > 0, "numeric, so Kubernetes can verify runAsNonRoot"

    env: dict[str, str] = {}
    for step in final:
        if step.keyword == "ENV":
            env.update(env_pairs(step.arguments))
    assert env.get("PYTHONUNBUFFERED") == "1"
    assert env["PATH"].startswith("/app/.venv/bin:")


@render_tier
def test_dependencies_are_installed_in_their_own_cached_layer(generated: Path) -> None:
    steps = dockerfile(generated / "Dockerfile")
    copy_all = next(i for i, s in enumerate(steps) if s.keyword == "COPY" and s.arguments == ". .")
    deps = [
        s for s in steps[:copy_all] if s.keyword == "RUN" and "--no-install-project" in s.arguments
    ]
    assert len(deps) == 1, "dependencies install before the source is copied"
    assert "--mount=type=cache" in deps[0].arguments
    for lock_input in ("pyproject.toml", "uv.lock"):
        assert f"source={lock_input}" in deps[0].arguments
    assert "--locked" in deps[0].arguments


@render_tier
def test_dockerignore_sends_what_the_build_needs_and_nothing_local(generated: Path) -> None:
    patterns = dockerignore_patterns(generated / ".dockerignore")
    package = generated.name.replace("-", "_")  # the default answers' package name
    needed = ["pyproject.toml", "uv.lock", "README.md", "Procfile", "gunicorn.conf.py"]
    needed += [p.relative_to(generated).as_posix() for p in (generated / package).rglob("*.py")]
    if (generated / "alembic.ini").exists():
        needed += ["alembic.ini", "migrations/env.py"]
    if (generated / "manage.py").exists():
        needed.append("manage.py")
    left_out = [path for path in needed if dockerignored(patterns, path)]
    assert not left_out, f".dockerignore leaves out files the image needs: {left_out}"
    for local in (".venv/bin/python", ".git/HEAD", f"{package}.sqlite3", "tests/conftest.py"):
        assert dockerignored(patterns, local), f"{local} would be sent to the build"


# --- Local stack (compose) ---------------------------------------------------


@render_tier
def test_compose_file_is_valid_against_the_compose_spec(generated: Path) -> None:
    result = run(
        tool("check-jsonschema"),
        "--builtin-schema",
        "vendor.compose-spec",
        str(generated / "compose.yaml"),
    )
    assert result.returncode == 0, result.stdout + result.stderr


@render_tier
def test_the_compose_schema_catches_a_broken_compose_file(generated: Path, tmp_path: Path) -> None:
    # A condition compose does not know and a misspelt key must fail the same check.
    compose = load_yaml(generated / "compose.yaml")
    web = compose["services"]["web"]
    web["depends_on"]["db"]["condition"] = "service_ready"
    web["stop_grace_periode"] = web.pop("stop_grace_period")
    (tmp_path / "compose.yaml").write_text(yaml.safe_dump(compose))
    result = run(
        tool("check-jsonschema"),
        "--builtin-schema",
        "vendor.compose-spec",
        str(tmp_path / "compose.yaml"),
    )
    assert result.returncode != 0
    assert "'service_ready' is not one of" in result.stdout, result.stdout
    assert "'stop_grace_periode' were unexpected" in result.stdout, result.stdout


@render_tier
def test_compose_stack_starts_in_order_and_mounts_the_kit_assets(generated: Path) -> None:
    compose = load_yaml(generated / "compose.yaml")
    services = compose["services"]
    assert set(services) == STACK

    web = services["web"]
    assert web["depends_on"]["db"]["condition"] == "service_healthy"
    assert web["depends_on"]["release"]["condition"] == "service_completed_successfully"
    release = services["release"]
    assert release["command"] == procfile(generated)["release"]
    assert release["image"] == web["image"] and release["build"] == web["build"]
    assert release["depends_on"]["db"]["condition"] == "service_healthy"
    assert "pg_isready" in services["db"]["healthcheck"]["test"]

    prometheus = services["prometheus"]
    assert "--enable-feature=exemplar-storage" in prometheus["command"]
    # The SLO rules read 30 days back: the default 15 days would make them 15.
    (retention,) = [f for f in prometheus["command"] if f.startswith("--storage.tsdb.retention.")]
    flag, _, kept = retention.partition("=")
    assert flag == "--storage.tsdb.retention.time"
    assert window_seconds(kept) >= 35 * 86400 > window_seconds(SLO_WINDOW)
    mounts = {
        service: {v.split(":")[1]: v.split(":")[0] for v in spec.get("volumes", []) if ":" in v}
        for service, spec in services.items()
    }
    assert mounts["prometheus"]["/etc/prometheus/prometheus.yml"] == (
        "./deploy/prometheus/prometheus.yml"
    )
    assert mounts["prometheus"]["/etc/prometheus/rules"] == "./grafana/rules"
    assert mounts["grafana"]["/etc/grafana/provisioning"] == "./grafana/provisioning"
    assert mounts["grafana"]["/var/lib/grafana/dashboards"] == "./grafana/dashboards"
    assert mounts["loki"]["/etc/loki/loki.yaml"] == "./deploy/loki/loki.yaml"

    # Every file or directory the stack mounts is in the project (named volumes aside).
    for service, targets in mounts.items():
        for source in targets.values():
            if source.startswith("./"):
                assert (generated / source).exists(), f"{service} mounts {source}, which is missing"


@render_tier
def test_traces_flow_from_the_service_through_the_collector_to_tempo(generated: Path) -> None:
    services = load_yaml(generated / "compose.yaml")["services"]
    collector = load_yaml(generated / "deploy/otel-collector/config.yaml")
    tempo = load_yaml(generated / "deploy/tempo/tempo.yaml")

    endpoint = httpx.URL(services["web"]["environment"]["OTEL_EXPORTER_OTLP_ENDPOINT"])
    assert endpoint.host == "otel-collector"
    http_receiver = collector["receivers"]["otlp"]["protocols"]["http"]["endpoint"]
    assert http_receiver == f"0.0.0.0:{endpoint.port}"

    pipeline = collector["service"]["pipelines"]["traces"]
    for kind in ("receivers", "processors", "exporters"):
        for name in pipeline[kind]:
            assert name in collector[kind], f"pipeline uses undefined {kind[:-1]} {name}"
    (exporter,) = pipeline["exporters"]
    tempo_grpc = tempo["distributor"]["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"]
    assert collector["exporters"][exporter]["endpoint"] == f"tempo:{tempo_grpc.split(':')[1]}"
    tempo_port = tempo["server"]["http_listen_port"]
    assert f"127.0.0.1:{tempo_port}:{tempo_port}" in services["tempo"]["ports"]

    datasources = sorted((generated / "grafana/provisioning/datasources").glob("*.y*ml"))
    assert datasources, "Grafana's data sources are not provisioned"
    urls = {
        source["uid"]: source["url"]
        for path in datasources
        for source in load_yaml(path)["datasources"]
    }
    assert urls["tempo"] == f"http://tempo:{tempo_port}"
    assert urls["prometheus"] == "http://prometheus:9090"


# --- Logs, and the local stack as one picture ---------------------------------

# Never a label: one value per request, so one stream per request (contract, section 11).
IDS = {"request_id", "trace_id", "span_id", "request.id", "trace.id", "span.id"}
# The streams' labels (contract, section 11), as OTLP names the attributes.
LOG_LABELS = {"service_name": "service.name", "level": "level"}


@render_tier
def test_logs_flow_from_stdout_through_the_collector_to_loki(generated: Path) -> None:
    services = stack.load(generated / "compose.yaml")["services"]
    collector = stack.load(generated / "deploy/otel-collector/config.yaml")
    loki = stack.load(generated / "deploy/loki/loki.yaml")

    # Both containers of the service's image ship stdout to the collector.
    receiver = collector["receivers"]["fluentforward"]["endpoint"]
    for name in ("web", "release"):
        logging = services[name]["logging"]
        assert logging["driver"] == "fluentd", name
        options = logging["options"]
        # The Docker daemon dials it from the host: the collector's published port.
        host, _, port = options["fluentd-address"].rpartition(":")
        assert host in ("localhost", "127.0.0.1"), options["fluentd-address"]
        assert f"127.0.0.1:{port}:{stack.port(receiver)}" in services["otel-collector"]["ports"]
        assert options["fluentd-async"] == "true", "the service would not start without it"
        assert "OTEL_SERVICE_NAME" in options["env"].split(","), name
    # The streams' service_name is the scrape job, which the dashboards select.
    (job,) = stack.load(generated / "deploy/prometheus/prometheus.yml")["scrape_configs"]
    assert services["web"]["environment"]["OTEL_SERVICE_NAME"] == job["job_name"]

    # receiver -> processors -> exporter, each one defined.
    pipeline = collector["service"]["pipelines"]["logs"]
    assert pipeline["receivers"] == ["fluentforward"]
    for kind in ("receivers", "processors", "exporters"):
        for name in pipeline[kind]:
            assert name in collector[kind], f"the logs pipeline uses undefined {kind[:-1]} {name}"
    assert pipeline["processors"][0] == "memory_limiter" and pipeline["processors"][-1] == "batch"
    (exporter,) = pipeline["exporters"]
    assert exporter.split("/")[0] == "otlphttp"
    assert collector["exporters"][exporter]["endpoint"] == (
        f"http://loki:{loki['server']['http_listen_port']}/otlp"
    )
    # The JSON is read before the labels move to the resource, where Loki reads them.
    names = pipeline["processors"]
    (transform,) = [n for n in names if n.split("/")[0] == "transform"]
    (group,) = [n for n in names if n.split("/")[0] == "groupbyattrs"]
    assert names.index(transform) < names.index(group)
    statements = [
        s
        for block in collector["processors"][transform]["log_statements"]
        for s in block["statements"]
    ]
    for attribute in LOG_LABELS.values():
        assert any(s.startswith(f'set(attributes["{attribute}"]') for s in statements), attribute
    assert any(s.startswith("set(trace_id.string, ") for s in statements)
    assert any(s.startswith("set(span_id.string, ") for s in statements)
    assert set(collector["processors"][group]["keys"]) == set(LOG_LABELS.values())


@render_tier
def test_log_labels_are_the_service_and_the_level_only(generated: Path) -> None:
    collector = stack.load(generated / "deploy/otel-collector/config.yaml")
    loki = stack.load(generated / "deploy/loki/loki.yaml")
    labels = stack.loki_labels(loki)
    assert {stack.label_name(a): a for a in labels} == LOG_LABELS
    grouped = {
        key
        for name, p in collector["processors"].items()
        if name.startswith("groupbyattrs")
        for key in p["keys"]
    }
    assert not (labels | grouped) & IDS
    # Structured metadata needs a tsdb index of schema v13.
    assert loki["limits_config"]["allow_structured_metadata"] is True
    assert {c["schema"] for c in loki["schema_config"]["configs"]} == {"v13"}


@render_tier
def test_loki_keeps_a_week_on_its_volume(generated: Path) -> None:
    services = stack.load(generated / "compose.yaml")
    loki = stack.load(generated / "deploy/loki/loki.yaml")
    index_period = {c["index"]["period"] for c in loki["schema_config"]["configs"]}
    kept = window_seconds(loki["limits_config"]["retention_period"])
    assert index_period == {"24h"} and kept % 86400 == 0, "retention must be whole index periods"
    assert 86400 <= kept <= 31 * 86400
    # The compactor applies the retention, or nothing is ever deleted.
    assert (
        loki["compactor"]["retention_enabled"] is True and loki["compactor"]["delete_request_store"]
    )
    prefix = loki["common"]["path_prefix"]
    volume, _, target = next(
        v for v in services["services"]["loki"]["volumes"] if not v.startswith("./")
    ).partition(":")
    assert target == prefix and volume in services["volumes"]
    assert loki["compactor"]["working_directory"].startswith(prefix + "/")


@render_tier
def test_every_address_is_a_service_of_the_stack_and_a_port_it_listens_on(generated: Path) -> None:
    services = stack.load(generated / "compose.yaml")["services"]
    listening = stack.listening(generated)
    documents = {
        "compose.yaml": services,
        "deploy/otel-collector/config.yaml": stack.load(
            generated / "deploy/otel-collector/config.yaml"
        ),
        "deploy/prometheus/prometheus.yml": stack.load(
            generated / "deploy/prometheus/prometheus.yml"
        ),
        "grafana/provisioning/datasources": stack.provisioned(generated),
    }
    wrong = []
    seen = set()
    for name, document in documents.items():
        for where, host, port in stack.addresses(document):
            if host in stack.NOT_SERVICES:
                continue
            seen.add((host, port))
            if host not in services:
                wrong.append(f"{name}{where}: {host} is no service of the stack")
            elif port not in listening[host]:
                wrong.append(
                    f"{name}{where}: {host} listens on {sorted(listening[host])}, not {port}"
                )
    # What compose publishes is what the service listens on.
    for host, spec in services.items():
        for port in stack.container_ports(spec) - listening[host]:
            wrong.append(f"compose.yaml: {host} publishes {port}, where nothing listens")
    assert not wrong, "\n".join(wrong)
    # The references that join the stack, each seen at least once.
    assert {("otel-collector", 4318), ("tempo", 4317), ("loki", 3100), ("tempo", 3200)} <= seen
    assert {("prometheus", 9090), ("web", 8000), ("db", 5432)} <= seen


@render_tier
def test_every_datasource_uid_referenced_is_provisioned(generated: Path) -> None:
    sources = stack.provisioned(generated)
    assert set(sources) == {"prometheus", "tempo", "loki"}
    problems = [
        f"datasources{where}: {uid!r}"
        for where, uid in stack.uid_references(list(sources.values()))
        if uid not in sources
    ]
    boards = {
        path.name: json.loads(path.read_text())
        for path in (generated / "grafana/dashboards").glob("*.json")
    }
    assert boards == load_dashboards(), "the project's dashboards are the kit's"
    problems += stack.dashboard_uid_problems(boards, sources)
    assert not problems, "\n".join(problems)
    # The cross-links themselves: exemplars and log lines open Tempo, spans open Loki.
    references = {(where, uid) for where, uid in stack.uid_references(list(sources.values()))}
    assert {uid for _, uid in references} == {"tempo", "loki"}


@render_tier
def test_a_missing_datasource_or_address_is_caught(generated: Path) -> None:
    sources = stack.provisioned(generated)
    without_loki = {uid: s for uid, s in sources.items() if uid != "loki"}
    assert stack.dashboard_uid_problems(load_dashboards(), without_loki)
    board = load_dashboards()["service-overview.json"]
    hard_coded = json.loads(json.dumps(board).replace('"${logs}"', '"lokii"'))
    assert stack.dashboard_uid_problems({"b": hard_coded}, sources)
    assert list(stack.addresses({"url": "http://lokii:3100/otlp"})) == [(".url", "lokii", 3100)]


@render_tier
def test_configs_use_only_the_components_documented_fields(generated: Path) -> None:
    # No collector or Loki binary runs here (kit/stack.py): their configuration
    # is held to the fields their documentation lists.
    collector = stack.load(generated / "deploy/otel-collector/config.yaml")
    loki = stack.load(generated / "deploy/loki/loki.yaml")
    assert not stack.collector_field_problems(collector)
    assert not stack.loki_field_problems(loki)
    collector["exporters"]["otlphttp/loki"]["endpont"] = collector["exporters"][
        "otlphttp/loki"
    ].pop("endpoint")
    loki["limits_config"]["retention"] = loki["limits_config"].pop("retention_period")
    loki["limits_config"]["otlp_config"]["resource_attributes"]["attributes_config"][0][
        "action"
    ] = "label"
    assert stack.collector_field_problems(collector) == ["exporters.otlphttp/loki.endpont"]
    assert sorted(stack.loki_field_problems(loki)) == [
        "attributes_config[].action 'label'",
        "limits_config.retention",
    ]


# --- Kubernetes ----------------------------------------------------------------


@render_tier
@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_kubernetes_manifests_are_valid_against_the_openapi_schemas(
    manifests: dict[str, list[dict[str, Any]]], version: str
) -> None:
    for overlay, objects in manifests.items():
        kinds = {obj["kind"] for obj in objects}
        assert {"Deployment", "Service", "PodDisruptionBudget", "HorizontalPodAutoscaler"} <= kinds
        assert {"Job", "ConfigMap", "Secret", *OPERATOR_KINDS} <= kinds
        unchecked = []
        for obj in objects:
            try:
                kubernetes_validate.validate(obj, version, strict=True)
            except kubernetes_validate.SchemaNotFoundError:
                unchecked.append(obj["kind"])
            except kubernetes_validate.ValidationError as error:
                path = ".".join(str(p) for p in error.absolute_path)
                raise AssertionError(
                    f"{overlay}: {obj['kind']}/{obj['metadata']['name']} at {path}: {error.message}"
                ) from None
        # Custom resources have no schema in Kubernetes itself: checked below.
        assert sorted(unchecked) == sorted(OPERATOR_KINDS), unchecked


@render_tier
def test_strict_validation_rejects_an_unknown_field(
    manifests: dict[str, list[dict[str, Any]]],
) -> None:
    deployment = one(manifests["production"], "Deployment")
    broken = {**deployment, "spec": {**deployment["spec"], "replica": 3}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSIONS[-1], strict=True)


@render_tier
def test_podmonitor_is_valid_against_the_prometheus_operator_crd(
    manifests: dict[str, list[dict[str, Any]]],
) -> None:
    # Models generated from the operator's CRD schemas: types and patterns are
    # enforced, and a key the schema does not know is dropped, so the
    # round-trip must give back exactly what the manifest says.
    from cloudcoil.models.prometheus_operator.v1 import PodMonitor

    for objects in manifests.values():
        monitor = one(objects, "PodMonitor")
        model = PodMonitor.model_validate(monitor)
        assert model.model_dump(by_alias=True, exclude_unset=True, mode="json") == monitor

    typo = {**monitor, "spec": {**monitor["spec"], "podMetricEndpoints": []}}
    assert (
        PodMonitor.model_validate(typo).model_dump(by_alias=True, exclude_unset=True, mode="json")
        != typo
    ), "the round-trip must expose unknown keys"


def dashboard_maps(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The ConfigMaps Grafana's dashboard sidecar loads."""
    return [
        obj
        for obj in objects
        if obj["kind"] == "ConfigMap"
        and obj["metadata"].get("labels", {}).get("grafana_dashboard") == "1"
    ]


@render_tier
def test_prometheusrule_is_valid_against_the_vendored_crd(
    manifests: dict[str, list[dict[str, Any]]],
) -> None:
    schema = crd.openapi_schema(crd.PROMETHEUS_RULE_CRD, "v1")
    for objects in manifests.values():
        rule = one(objects, "PrometheusRule")
        assert not crd.errors(rule, schema)


@render_tier
@pytest.mark.parametrize(
    "fault", ["unknown field", "duration", "no expression", "group twice", "expr a list", "name"]
)
def test_the_crd_check_refuses_a_broken_prometheusrule(
    manifests: dict[str, list[dict[str, Any]]], fault: str
) -> None:
    schema = crd.openapi_schema(crd.PROMETHEUS_RULE_CRD, "v1")
    rule = copy.deepcopy(one(manifests["production"], "PrometheusRule"))
    groups = rule["spec"]["groups"]
    alert = next(r for group in groups for r in group["rules"] if "for" in r)
    if fault == "unknown field":
        alert["runbook"] = alert["annotations"].pop("runbook_url")
    elif fault == "duration":
        alert["for"] = "5 minutes"
    elif fault == "no expression":
        del alert["expr"]
    elif fault == "group twice":
        groups.append(groups[0])
    elif fault == "expr a list":
        alert["expr"] = [alert["expr"]]
    else:
        rule["metadata"]["name"] = "Example_Service"
    assert crd.errors(rule, schema)


@render_tier
def test_prometheusrule_holds_the_groups_promtool_tests(
    generated: Path, manifests: dict[str, list[dict[str, Any]]], tmp_path: Path
) -> None:
    """The groups of the overlays' PrometheusRule are those of grafana/rules/, parsed
    and equal; with the default answers they are the kit's copy, whose promtool
    unit tests tests/test_rules.py runs; and promtool takes them as one file."""
    groups = [
        group
        for name in RULE_FILES
        for group in load_yaml(generated / "grafana/rules" / name)["groups"]
    ]
    kits = [
        group
        for name in RULE_FILES
        for group in load_yaml(KIT_ROOT / "grafana/rules" / name)["groups"]
    ]
    assert groups == kits
    for objects in manifests.values():
        assert one(objects, "PrometheusRule")["spec"]["groups"] == groups
    (tmp_path / "operator.yml").write_text(
        yaml.safe_dump({"groups": one(manifests["production"], "PrometheusRule")["spec"]["groups"]})
    )
    promtool = require("promtool")["promtool"]
    checked = run(promtool, "check", "rules", str(tmp_path / "operator.yml"))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {sum(len(group['rules']) for group in groups)} rules found" in checked.stdout


@render_tier
def test_dashboard_configmaps_hold_the_dashboards_unchanged(
    generated: Path, manifests: dict[str, list[dict[str, Any]]]
) -> None:
    boards = {
        p.name: p.read_text() for p in sorted((generated / "grafana/dashboards").glob("*.json"))
    }
    # Grafana's own {{ }} legends are there to survive.
    assert sum(text.count("{{") for text in boards.values()) > 10
    for objects in manifests.values():
        found = {}
        for config_map in dashboard_maps(objects):
            ((name, text),) = config_map["data"].items()
            found[name] = text
            annotations = config_map["metadata"]["annotations"]
            assert annotations["k8s-sidecar-target-directory"] == "Observability kit"
            json.loads(text)
            # Within what a ConfigMap holds (1 MiB), and within what `kubectl apply`
            # copies into its last-applied annotation (256 KiB for all annotations).
            assert len(text.encode()) < 1024 * 1024
            assert len(json.dumps(config_map).encode()) < 256 * 1024, name
        assert found == boards


@render_tier
def test_the_generated_operator_files_are_the_kits_and_say_so(generated: Path) -> None:
    """What the hook wrote is what monitoring/operator.py builds from the project's
    grafana/, behind a header that says never to edit it."""
    files = operator_files({"project_slug": generated.name}, generated / "grafana")
    assert len(files) == 2
    for relative, text in files.items():
        written = (generated / relative).read_text()
        assert written == text, relative
        assert "never edit it by hand" in written.split("\napiVersion:", 1)[0], relative
    kustomization = load_yaml(generated / COMPONENT / "kustomization.yaml")
    assert sorted(kustomization["resources"]) == sorted(
        ["podmonitor.yaml", *(Path(relative).name for relative in files)]
    )


@render_tier
def test_every_scrape_job_is_the_one_the_rules_match(
    generated: Path, manifests: dict[str, list[dict[str, Any]]]
) -> None:
    """The rules match the project's own job: the local stack's scrape job, and
    the job the Prometheus Operator gives the PodMonitor's targets (the value of
    the pod label its jobLabel names; by default it would be namespace/name)."""
    alerts = (generated / "grafana/rules/alerts.yml").read_text()
    jobs = set(re.findall(r'job="([^"]+)"', alerts))
    (scrape,) = load_yaml(generated / "deploy/prometheus/prometheus.yml")["scrape_configs"]
    assert jobs == {scrape["job_name"]} == {generated.name}
    for objects in manifests.values():
        monitor = one(objects, "PodMonitor")["spec"]
        labels = one(objects, "Deployment")["spec"]["template"]["metadata"]["labels"]
        assert monitor["selector"]["matchLabels"].items() <= labels.items()
        assert labels[monitor["jobLabel"]] == generated.name


@render_tier
def test_pods_run_non_root_on_a_read_only_filesystem(
    manifests: dict[str, list[dict[str, Any]]],
) -> None:
    for objects in manifests.values():
        for kind in ("Deployment", "Job"):
            pod = one(objects, kind)["spec"]["template"]["spec"]
            assert pod["securityContext"]["runAsNonRoot"] is True
            assert pod["automountServiceAccountToken"] is False
            for container in pod["containers"]:
                security = container["securityContext"]
                assert security["readOnlyRootFilesystem"] is True
                assert security["allowPrivilegeEscalation"] is False
                assert security["capabilities"]["drop"] == ["ALL"]
                assert "memory" in container["resources"]["limits"]
                assert {"cpu", "memory"} <= set(container["resources"]["requests"])
                mounted = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
                volumes = {v["name"]: v for v in pod["volumes"]}
                # Writable tmp: gunicorn's multiprocess metrics with WEB_CONCURRENCY > 1.
                assert "emptyDir" in volumes[mounted["/tmp"]]


@render_tier
def test_autoscaler_budget_and_service_select_the_web_pods(
    manifests: dict[str, list[dict[str, Any]]],
) -> None:
    for overlay, objects in manifests.items():
        deployment = one(objects, "Deployment")
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
        assert "replicas" not in deployment["spec"], "the autoscaler owns the replica count"
        for kind, selector in (
            ("Service", one(objects, "Service")["spec"]["selector"]),
            ("PodDisruptionBudget", one(objects, "PodDisruptionBudget")["spec"]["selector"]),
            ("PodMonitor", one(objects, "PodMonitor")["spec"]["selector"]),
        ):
            match = selector.get("matchLabels", selector)
            assert match.items() <= labels.items(), f"{overlay}: {kind} misses the web pods"
        hpa = one(objects, "HorizontalPodAutoscaler")["spec"]
        assert hpa["scaleTargetRef"] == {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": deployment["metadata"]["name"],
        }
        assert 2 <= hpa["minReplicas"] <= hpa["maxReplicas"]
        budget = one(objects, "PodDisruptionBudget")["spec"]
        assert (
            budget.get("maxUnavailable", 0) == 1
            or budget.get("minAvailable", 0) < (hpa["minReplicas"])
        ), "the budget must leave a node drain possible"


@render_tier
def test_migration_job_runs_the_procfile_release_command(
    generated: Path, manifests: dict[str, list[dict[str, Any]]]
) -> None:
    for objects in manifests.values():
        job = one(objects, "Job")
        (container,) = job["spec"]["template"]["spec"]["containers"]
        assert container["command"] == procfile(generated)["release"]
        assert container["image"] == web_container(objects)["image"]
        assert container["envFrom"] == web_container(objects)["envFrom"]
        assert job["spec"]["template"]["spec"]["restartPolicy"] in {"Never", "OnFailure"}


# --- CI -------------------------------------------------------------------------


@render_tier
def test_workflow_is_clean_under_actionlint(generated: Path) -> None:
    workflow = generated / ".github/workflows/ci.yml"
    result = actionlint(workflow)
    assert result.returncode == 0, result.stdout + result.stderr
    schema = run(
        tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", str(workflow)
    )
    assert schema.returncode == 0, schema.stdout + schema.stderr


@render_tier
def test_actionlint_catches_a_broken_workflow(generated: Path, tmp_path: Path) -> None:
    text = (generated / ".github/workflows/ci.yml").read_text()
    workflows = tmp_path / ".github/workflows"
    workflows.mkdir(parents=True)
    text = text.replace("${{ github.sha }}", "${{ github.shaa }}")
    text = text.replace("run: make lint", "run: make lint $MAKEFLAGS_EXTRA")
    (workflows / "ci.yml").write_text(text)
    result = actionlint(workflows / "ci.yml")
    assert result.returncode != 0, result.stdout
    assert "shaa" in result.stdout, "expressions are type-checked"
    assert "SC2086" in result.stdout, "run: scripts go through ShellCheck"


@render_tier
def test_workflow_lints_types_tests_on_postgresql_and_builds_the_image(generated: Path) -> None:
    text = (generated / ".github/workflows/ci.yml").read_text()
    # GitHub's expressions survive rendering untouched.
    assert "${{ github.sha }}" in text and "${{ env.PYTHON_VERSION }}" in text
    workflow = load_yaml(generated / ".github/workflows/ci.yml")
    jobs = workflow["jobs"]
    runs = {name: [step.get("run", "") for step in job["steps"]] for name, job in jobs.items()}
    assert "make lint" in runs["lint"]
    assert "make typecheck" in runs["types"]
    assert runs["test"].count("make test") == 2  # SQLite, then PostgreSQL
    # The PostgreSQL server programs the resilience tests start, before the tests.
    install = next(
        i for i, run in enumerate(runs["test"]) if "install" in run and "postgresql" in run
    )
    assert install < runs["test"].index("make test")

    postgres = jobs["test"]["services"]["postgres"]
    assert "pg_isready" in postgres["options"]
    on_postgres = [
        step
        for step in jobs["test"]["steps"]
        if "TEST_DATABASE_URL" in step.get("env", {}) or "DATABASE_URL" in step.get("env", {})
    ]
    assert {s["run"] for s in on_postgres} == {"make release", "make test"}
    for step in on_postgres:
        url = httpx.URL(next(iter(step["env"].values())))
        assert url.port == 5432 and url.username == postgres["env"]["POSTGRES_USER"]

    build = next(s for s in jobs["image"]["steps"] if "build-push-action" in s.get("uses", ""))
    assert build["with"]["context"] == "."

    assert workflow["env"]["PYTHON_VERSION"] == image_python(generated / "Dockerfile"), (
        "CI tests the image's Python"
    )


@pytest.fixture(scope="session")
def gitlab_generated(framework: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The framework's template rendered for GitLab (not installed)."""
    return render(framework, tmp_path_factory.mktemp(f"{framework}-gitlab"), ci_provider="gitlab")


@render_tier
def test_gitlab_pipeline_is_valid_against_gitlabs_schema_and_shellcheck(
    gitlab_generated: Path,
) -> None:
    pipeline = gitlab_generated / ".gitlab-ci.yml"
    result = gitlab_schema(pipeline)
    assert result.returncode == 0, result.stdout + result.stderr
    assert shellcheck_gitlab(pipeline) == []
    assert not (gitlab_generated / ".github").exists(), "nothing of GitHub's"


@render_tier
def test_the_gitlab_schema_catches_a_broken_pipeline(
    gitlab_generated: Path, tmp_path: Path
) -> None:
    # A misspelt keyword and a value of the wrong type must fail the same check.
    pipeline = load_yaml(gitlab_generated / ".gitlab-ci.yml")
    pipeline["test"]["scirpt"] = pipeline["test"].pop("script")
    pipeline["default"]["interruptible"] = "yes"
    (tmp_path / ".gitlab-ci.yml").write_text(yaml.safe_dump(pipeline))
    result = gitlab_schema(tmp_path / ".gitlab-ci.yml")
    assert result.returncode != 0
    assert "'scirpt' was unexpected" in result.stdout, result.stdout
    assert "'yes' is not of type 'boolean'" in result.stdout, result.stdout


@render_tier
def test_shellcheck_catches_a_broken_gitlab_script(gitlab_generated: Path, tmp_path: Path) -> None:
    pipeline = load_yaml(gitlab_generated / ".gitlab-ci.yml")
    pipeline["lint"]["script"] = ["make lint $MAKEFLAGS_EXTRA"]
    (tmp_path / ".gitlab-ci.yml").write_text(yaml.safe_dump(pipeline))
    (finding,) = shellcheck_gitlab(tmp_path / ".gitlab-ci.yml")
    assert finding.startswith("lint: ") and "SC2086" in finding, finding


@render_tier
def test_gitlab_pipeline_runs_what_the_github_workflow_runs(
    generated: Path, gitlab_generated: Path
) -> None:
    # The same make targets with the same settings, job for job; the same
    # PostgreSQL; the image built from the same context with the same Python.
    workflow = load_yaml(generated / ".github/workflows/ci.yml")
    pipeline = load_yaml(gitlab_generated / ".gitlab-ci.yml")
    scripts = {
        job: script.splitlines()
        for job, script in gitlab_scripts(gitlab_generated / ".gitlab-ci.yml").items()
    }
    assert set(scripts) == {"lint", "types", "test", "build"}
    for job in scripts:
        assert pipeline[job]["stage"] in pipeline["stages"], job
        assert pipeline[job]["needs"] == [], f"{job} waits for nothing, as on GitHub"

    def make_steps(steps: list[str]) -> list[tuple[str, dict[str, str]]]:
        """``make <target>`` lines with the variables set before them."""
        found = []
        for line in steps:
            words = shlex.split(line)
            settings = dict(w.split("=", 1) for w in words if "=" in w and not w.startswith("-"))
            targets = [w for w in words if "=" not in w]
            if targets[:1] == ["make"]:
                found.append((" ".join(targets), settings))
        return found

    github = {
        job: [
            (step["run"], {k: str(v) for k, v in step.get("env", {}).items()})
            for step in spec["steps"]
            if step.get("run", "").startswith("make ")
        ]
        for job, spec in workflow["jobs"].items()
    }
    gitlab = {job: make_steps(lines) for job, lines in scripts.items()}
    assert gitlab["lint"] == github["lint"] == [("make lint", {})]
    assert gitlab["types"] == github["types"] == [("make typecheck", {})]
    github_urls = [env for _, env in github["test"]]
    gitlab_urls = [env for _, env in gitlab["test"]]
    assert [target for target, _ in gitlab["test"]] == [target for target, _ in github["test"]]
    # The same variables at each step; the database is the job's PostgreSQL service.
    assert [set(env) for env in gitlab_urls] == [set(env) for env in github_urls]
    (service,) = pipeline["test"]["services"]
    assert service["name"] == workflow["jobs"]["test"]["services"]["postgres"]["image"]
    credentials = pipeline["test"]["variables"]
    for env in gitlab_urls:
        for value in env.values():
            if value.startswith("postgresql://"):
                url = httpx.URL(value)
                assert url.host == service["alias"] and url.port == 5432
                assert url.username == credentials["POSTGRES_USER"]
                assert url.password == credentials["POSTGRES_PASSWORD"]
                assert url.path == f"/{credentials['POSTGRES_DB']}"
    installs = [line for line in scripts["test"] if "install" in line and "postgresql" in line]
    assert installs and scripts["test"].index(installs[0]) < scripts["test"].index("make test")

    assert pipeline["variables"]["UV_LOCKED"] == workflow["env"]["UV_LOCKED"]
    assert pipeline["variables"]["IMAGE"] == workflow["env"]["IMAGE"]
    image = pipeline["default"]["image"]
    assert f"-python{image_python(gitlab_generated / 'Dockerfile')}-" in image, (
        "CI tests the image's Python"
    )
    assert [line for line in scripts["build"] if line.startswith("docker build")] == [
        'docker build --pull --tag "$IMAGE:$CI_COMMIT_SHA" .'
    ]


# --- Dependency updates and pre-commit ---------------------------------------------


@render_tier
def test_dependabot_groups_python_and_moves_actions_with_the_images(
    generated: Path, tmp_path: Path
) -> None:
    path = generated / ".github/dependabot.yml"
    result = schema("dependabot", path)
    assert result.returncode == 0, result.stdout + result.stderr
    config = load_yaml(path)
    updates = {update["package-ecosystem"]: update for update in config["updates"]}
    assert set(updates) == {"uv", "github-actions", "docker"}
    (python,) = updates["uv"]["groups"].values()
    assert python == {"patterns": ["*"], "update-types": ["minor", "patch"]}
    (group,) = config["multi-ecosystem-groups"]
    assert updates["github-actions"]["multi-ecosystem-group"] == group
    assert updates["docker"]["multi-ecosystem-group"] == group

    config["updates"][0]["package-ecosystem"] = "uvx"
    config["updates"][0]["schedule"]["interval"] = "fortnightly"
    (tmp_path / "dependabot.yml").write_text(yaml.safe_dump(config))
    broken = schema("dependabot", tmp_path / "dependabot.yml")
    assert broken.returncode != 0
    assert "'uvx' is not one of" in broken.stdout and "'fortnightly'" in broken.stdout


@render_tier
def test_renovate_groups_python_and_moves_the_pipeline_with_the_images(
    gitlab_generated: Path, tmp_path: Path
) -> None:
    path = gitlab_generated / "renovate.json"
    result = schema("renovate", path)
    assert result.returncode == 0, result.stdout + result.stderr
    config = json.loads(path.read_text())
    # Only the files the kit wants updated: not the local stack's nor the
    # Kubernetes overlays' images (the service's own, in your registry).
    assert set(config["enabledManagers"]) == {"pep621", "dockerfile", "gitlabci"}
    rules = {rule["groupName"]: rule for rule in config["packageRules"]}
    assert rules["Python dependencies"]["matchManagers"] == ["pep621"]
    assert rules["Python dependencies"]["matchUpdateTypes"] == ["minor", "patch"]
    assert set(rules["CI and images"]["matchManagers"]) == {"gitlabci", "dockerfile"}
    assert config["lockFileMaintenance"]["enabled"] is True

    config["lockFileMaintenance"]["enabled"] = "yes"
    (tmp_path / "renovate.json").write_text(json.dumps(config))
    broken = schema("renovate", tmp_path / "renovate.json")
    assert broken.returncode != 0
    assert "'yes' is not of type 'boolean'" in broken.stdout, broken.stdout


@render_tier
def test_pre_commit_runs_what_make_check_runs(generated: Path, tmp_path: Path) -> None:
    # The same tools and arguments as the Makefile's lint and typecheck
    # targets, from the project's environment at the versions uv.lock pins.
    path = generated / PRE_COMMIT
    result = pre_commit_config(path)
    assert result.returncode == 0, result.stdout + result.stderr
    makefile = (generated / "Makefile").read_text()
    made = {
        line.split("$(UV) run --no-sync ", 1)[1]
        for target in ("lint", "typecheck")
        for line in makefile.split(f"\n{target}: install\n", 1)[1].split("\n\n", 1)[0].splitlines()
    }
    (repo,) = load_yaml(path)["repos"]
    assert repo["repo"] == "local"
    hooks = {hook["id"]: hook for hook in repo["hooks"]}
    run = {hook["entry"].removeprefix("uv run --locked ") for hook in hooks.values()}
    assert all(hook["entry"].startswith("uv run --locked ") for hook in hooks.values())
    assert all(hook["language"] == "system" for hook in hooks.values())
    # Hooks get the changed files; --force-exclude keeps ruff's own exclusions.
    assert {command.replace(" --force-exclude", " .") for command in run} == made
    assert hooks["mypy"]["pass_filenames"] is False, "mypy checks pyproject.toml's files"

    broken = load_yaml(path)
    broken["repos"][0]["hooks"][1]["language"] = "sytem"
    (tmp_path / PRE_COMMIT).write_text(yaml.safe_dump(broken))
    failed = pre_commit_config(tmp_path / PRE_COMMIT)
    assert failed.returncode != 0
    assert "Hook(id='ruff-format')" in failed.stdout and "sytem" in failed.stdout, failed.stdout


# --- One picture: ports, probe paths and shutdown timings agree ------------------


@render_tier
def test_ports_probes_and_shutdown_timings_agree_across_every_file(
    generated: Path, manifests: dict[str, list[dict[str, Any]]]
) -> None:
    package = generated.name.replace("-", "_")  # the default answers' package name
    defaults = setting_defaults(generated / package / "runtime")
    margin: int = module_constant(
        generated / package / "runtime" / "gunicorn.py", "SHUTDOWN_MARGIN"
    )
    port = int(defaults["PORT"])
    mismatches: list[str] = []

    def expect(condition: bool, message: str) -> None:
        if not condition:
            mismatches.append(message)

    def stop_budget(env: dict[str, str]) -> float:
        """Seconds from SIGTERM to gunicorn's exit at worst: drain, grace, margin."""
        drain = float(env.get("DRAIN_DELAY", defaults["DRAIN_DELAY"]))
        grace = math.ceil(float(env.get("GRACEFUL_TIMEOUT", defaults["GRACEFUL_TIMEOUT"])))
        return drain + grace + margin

    # Dockerfile
    steps = dockerfile(generated / "Dockerfile")
    exposed = [s.arguments for s in steps if s.keyword == "EXPOSE"]
    expect(exposed == [str(port)], f"Dockerfile EXPOSE {exposed} != PORT default {port}")

    # compose
    web = load_yaml(generated / "compose.yaml")["services"]["web"]
    web_env = {k: str(v) for k, v in web["environment"].items()}
    compose_port = int(web_env.get("PORT", port))
    expect(
        any(p.endswith(f":{compose_port}") for p in web["ports"]),
        f"compose publishes {web['ports']}, the service listens on {compose_port}",
    )
    probe = " ".join(web["healthcheck"]["test"])
    expect(
        f"127.0.0.1:{compose_port}{LIVENESS}" in probe,
        f"compose healthcheck {probe!r} is not {LIVENESS} on {compose_port}",
    )
    expect(
        seconds(web["stop_grace_period"]) > stop_budget(web_env),
        f"compose stop_grace_period {web['stop_grace_period']} <= {stop_budget(web_env)}s "
        "(DRAIN_DELAY + GRACEFUL_TIMEOUT + gunicorn's margin)",
    )

    # Prometheus (local stack)
    scrape = load_yaml(generated / "deploy/prometheus/prometheus.yml")["scrape_configs"]
    targets = [t for job in scrape for group in job["static_configs"] for t in group["targets"]]
    expect(f"web:{compose_port}" in targets, f"Prometheus scrapes {targets}, not web:{port}")
    paths = {job.get("metrics_path", "/metrics") for job in scrape}
    expect(paths == {METRICS}, f"Prometheus scrapes {paths}, not {METRICS}")

    # Kubernetes
    for overlay, objects in manifests.items():
        pod = one(objects, "Deployment")["spec"]["template"]["spec"]
        container = web_container(objects)
        env = container_env(objects, container)
        k8s_port = int(env.get("PORT", port))
        named = {p["name"]: p["containerPort"] for p in container["ports"]}

        def resolve(value: int | str, named: dict[str, int] = named) -> int | None:
            return named.get(value) if isinstance(value, str) else value

        where = f"k8s {overlay}"
        expect(list(named.values()) == [k8s_port], f"{where}: ports {named} != PORT {k8s_port}")
        expect(
            "command" not in container and "args" not in container,
            f"{where}: the web container overrides the image's CMD (the Procfile web line)",
        )
        for kind, path in (
            ("startupProbe", LIVENESS),
            ("livenessProbe", LIVENESS),
            ("readinessProbe", READINESS),
        ):
            get = container[kind]["httpGet"]
            expect(get["path"] == path, f"{where}: {kind} path {get['path']} != {path}")
            expect(resolve(get["port"]) == k8s_port, f"{where}: {kind} port {get['port']}")
        ready_timeout = float(env.get("READY_TIMEOUT", defaults["READY_TIMEOUT"]))
        expect(
            container["readinessProbe"]["timeoutSeconds"] > ready_timeout,
            f"{where}: readiness probe timeout <= READY_TIMEOUT {ready_timeout}",
        )
        service_port = one(objects, "Service")["spec"]["ports"][0]
        expect(
            resolve(service_port["targetPort"]) == k8s_port,
            f"{where}: Service targetPort {service_port['targetPort']} != {k8s_port}",
        )
        endpoint = one(objects, "PodMonitor")["spec"]["podMetricsEndpoints"][0]
        expect(resolve(endpoint["port"]) == k8s_port, f"{where}: PodMonitor port")
        expect(endpoint["path"] == METRICS, f"{where}: PodMonitor path {endpoint['path']}")

        pre_stop = container["lifecycle"]["preStop"]["sleep"]["seconds"]
        expect(pre_stop > 0, f"{where}: no preStop sleep")
        expect(
            float(env["DRAIN_DELAY"]) == 0,
            f"{where}: DRAIN_DELAY {env['DRAIN_DELAY']} should be 0 with a preStop sleep",
        )
        grace = pod["terminationGracePeriodSeconds"]
        needed = pre_stop + stop_budget(env)
        expect(
            grace > needed,
            f"{where}: terminationGracePeriodSeconds {grace} <= {needed}s "
            "(preStop + DRAIN_DELAY + GRACEFUL_TIMEOUT + gunicorn's margin)",
        )
        uid = next(s.arguments for s in steps if s.keyword == "USER").split(":")[0]
        expect(
            pod["securityContext"]["runAsUser"] == int(uid),
            f"{where}: runAsUser {pod['securityContext']['runAsUser']} != image USER {uid}",
        )

    assert not mismatches, "\n".join(mismatches)


# --- Boot tier: the real server with the manifests' settings --------------------


# What the boot harness provides itself: a free port, its database and OTLP sink.
HARNESS_PROVIDES = ("PORT", "DATABASE_URL", "OTEL_EXPORTER_OTLP_ENDPOINT")


def k8s_settings(project: Project) -> dict[str, str]:
    """The production overlay's settings for the web container."""
    objects = kustomize(project.path / "deploy/k8s/overlays/production")
    return container_env(objects, web_container(objects))


def compose_settings(project: Project) -> dict[str, str]:
    web = load_yaml(project.path / "compose.yaml")["services"]["web"]
    return {key: str(value) for key, value in web["environment"].items()}


@pytest.mark.boot
@pytest.mark.parametrize("settings", ["compose", "kubernetes"])
def test_gunicorn_accepts_its_config_with_the_deployed_settings(
    project: Project, settings: str
) -> None:
    env = compose_settings(project) if settings == "compose" else k8s_settings(project)
    web = procfile(project.path)["web"]
    checked = project.run(
        [str(project.bin / web[0]), *web[1:], "--check-config"], timeout=RUN_TIMEOUT, **env
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr

    printed = project.run(
        [str(project.bin / web[0]), *web[1:], "--print-config"], timeout=RUN_TIMEOUT, **env
    )
    assert printed.returncode == 0, printed.stderr
    config = dict(
        (key.strip(), value.strip())
        for key, _, value in (line.partition("=") for line in printed.stdout.splitlines())
    )
    runtime = project.path / project.package / "runtime"
    margin: int = module_constant(runtime / "gunicorn.py", "SHUTDOWN_MARGIN")
    assert int(config["graceful_timeout"]) == math.ceil(float(env["GRACEFUL_TIMEOUT"])) + margin
    assert f"0.0.0.0:{env.get('PORT', '8000')}" in config["bind"]


@pytest.mark.boot
def test_the_manifests_probe_paths_answer_and_sigterm_fits_the_grace_period(
    project: Project, boot: Boot
) -> None:
    objects = kustomize(project.path / "deploy/k8s/overlays/production")
    container = web_container(objects)
    settings = k8s_settings(project)
    service = boot(**{k: v for k, v in settings.items() if k not in HARNESS_PROVIDES})
    with service.client() as client:
        for kind in ("startupProbe", "livenessProbe", "readinessProbe"):
            response = client.get(container[kind]["httpGet"]["path"])
            assert response.status_code == 200, (kind, response.text)
        endpoint = one(objects, "PodMonitor")["spec"]["podMetricsEndpoints"][0]
        assert client.get(endpoint["path"]).status_code == 200

    # SIGTERM arrives after the preStop sleep; a request still in flight then
    # completes, and the pod exits 0 before the kubelet's SIGKILL.
    pod = one(objects, "Deployment")["spec"]["template"]["spec"]
    pre_stop = container["lifecycle"]["preStop"]["sleep"]["seconds"]
    budget = pod["terminationGracePeriodSeconds"] - pre_stop
    # API requests come through the ingress, under the public host name.
    public = settings.get("DJANGO_ALLOWED_HOSTS", "").split(",")[0].strip()
    headers = {"Host": public} if public else {}
    with requests_in_flight(service, 1, headers=headers) as held:
        started = time.monotonic()
        service.signal(signal.SIGTERM)
        time.sleep(2.5)  # the request waits for the database meanwhile
    status = service.wait(timeout=budget)
    elapsed = time.monotonic() - started
    assert [response.status_code for response in held.responses] == [201]
    assert status == 0, service.output()
    assert 2 < elapsed < budget, elapsed


@pytest.mark.boot
def test_ci_steps_pass_against_postgresql(project: Project) -> None:
    # What the workflow's test job runs against its PostgreSQL service container.
    server = PostgresServer()
    try:
        url = server.create_database("ci")
        release = project.run(procfile(project.path)["release"], DATABASE_URL=url)
        assert release.returncode == 0, release.stdout + release.stderr
        # The tests really run on PostgreSQL: the service's connections (it names
        # itself with application_name) show up there while they run. Whether
        # rows remain afterwards depends on the framework's test isolation.
        seen = threading.Event()
        done = threading.Event()

        def watch() -> None:
            while not done.is_set() and not seen.is_set():
                with server.connect() as connection:
                    row = connection.execute(
                        "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
                        (project.path.name,),
                    ).fetchone()
                if row is not None and row[0] > 0:
                    seen.set()
                time.sleep(0.02)

        watcher = threading.Thread(target=watch)
        watcher.start()
        try:
            tests = project.run(
                [
                    str(project.bin / "pytest"),
                    "-q",
                    "-p",
                    "no:cacheprovider",
                    "-m",
                    "not resilience",
                    # As `make test`: the coverage floor holds on PostgreSQL too.
                    "--cov",
                ],
                timeout=600,
                TEST_DATABASE_URL=url,
            )
        finally:
            done.set()
            watcher.join()
        assert tests.returncode == 0, tests.stdout[-6000:] + tests.stderr[-3000:]
        assert "Required test coverage of" in tests.stdout
        assert seen.is_set(), "the project's tests never connected to PostgreSQL"
    finally:
        server.close()


@pytest.mark.boot
def test_the_image_build_steps_install_a_project_that_serves(
    project: Project, tmp_path: Path
) -> None:
    # The closest to `docker build` without a Docker engine: the build stage's
    # commands on the build context, with the image's Python; then the web
    # command from the result, as the final stage runs it.
    # The bootstrap (`python -m kit.system`) installs the image's Python.
    python = require_python(image_python(project.path / "Dockerfile"))
    app = tmp_path / "app"
    ran = replay_build_stage(project.path, app, python)
    assert any("--no-install-project" in command for command in ran)
    assert not (app / "tests").exists(), ".dockerignore keeps the tests out of the image"
    assert (app / ".venv/bin/gunicorn").exists()
    assert not (app / ".venv/bin/pytest").exists(), "no dev dependencies in the image"

    image = Project(project.framework, app)
    database = f"sqlite:///{tmp_path / 'image.sqlite3'}"
    # The service writes no bytecode (PYTHONDONTWRITEBYTECODE, a read-only
    # /app): the build compiled the project's own modules, so a worker's
    # start compiles none of them from source.
    module = procfile(app)["web"][-1].split(":")[0]
    imported = image.run(
        [str(image.bin / "python"), "-v", "-c", f"import {module}"],
        DATABASE_URL=database,
        PYTHONDONTWRITEBYTECODE="1",
    )
    assert imported.returncode == 0, imported.stderr[-3000:]
    # -v says "code object from <file>.py" for each module compiled from source.
    compiled = re.findall(r"^# code object from (\S+\.py)$", imported.stderr, re.MULTILINE)
    assert compiled == [], compiled
    assert f"/{image.package}/" in imported.stderr  # it did import the project
    image.release(DATABASE_URL=database)
    service = image.start(tmp_path / "run", DATABASE_URL=database, OTEL_TRACES_EXPORTER="none")
    try:
        with service.client() as client:
            assert client.get(LIVENESS).status_code == 200
            assert client.get(READINESS).status_code == 200
            created = client.post("/api/items", json={"name": "from the image"})
            assert created.status_code == 201, created.text
    finally:
        status = service.stop()
    assert status == 0, service.output()
