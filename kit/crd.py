"""Validating custom resources offline, against their CRD's OpenAPI schema.

kubernetes-validate knows Kubernetes' own kinds only, and no cluster runs
here, so a custom resource is checked the way the API server checks it: its
CRD's ``openAPIV3Schema`` with strict field validation (a field the schema
does not declare is an error, as ``kubectl apply`` reports it, unless the
schema preserves unknown fields), list-type ``map`` keys unique, and the
object's name a DNS subdomain.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from .render import KIT_ROOT

VENDORED = KIT_ROOT / "tests" / "data"
PROMETHEUS_RULE_CRD = (
    VENDORED / "prometheus-operator" / "monitoring.coreos.com_prometheusrules.yaml"
)
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def openapi_schema(crd: Path, version: str) -> dict[str, Any]:
    """The CRD's schema of ``version``, made strict."""
    definition = yaml.safe_load(crd.read_text(encoding="utf-8"))
    (served,) = [v for v in definition["spec"]["versions"] if v["name"] == version]
    schema: dict[str, Any] = _strict(served["schema"]["openAPIV3Schema"])
    return schema


def _strict(schema: Any) -> Any:
    if isinstance(schema, list):
        return [_strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    strict = {key: _strict(value) for key, value in schema.items()}
    if (
        "properties" in strict
        and "additionalProperties" not in strict
        and not strict.get("x-kubernetes-preserve-unknown-fields")
    ):
        strict["additionalProperties"] = False
    return strict


def _duplicate_map_keys(schema: dict[str, Any], value: Any, path: str) -> list[str]:
    found = []
    if isinstance(value, list) and schema.get("x-kubernetes-list-type") == "map":
        keys = [tuple(item.get(k) for k in schema["x-kubernetes-list-map-keys"]) for item in value]
        found += [f"{path}: duplicate key {key}" for key in {k for k in keys if keys.count(k) > 1}]
    if isinstance(value, list) and "items" in schema:
        for n, item in enumerate(value):
            found += _duplicate_map_keys(schema["items"], item, f"{path}[{n}]")
    if isinstance(value, dict):
        for key, item in value.items():
            child = schema.get("properties", {}).get(key)
            if child is not None:
                found += _duplicate_map_keys(child, item, f"{path}.{key}")
    return found


def errors(obj: dict[str, Any], schema: dict[str, Any]) -> list[str]:
    """Why the API server would refuse ``obj`` (empty when it would take it)."""
    # OpenAPI v3's structural schemas are a subset of JSON Schema draft 7 here.
    validator = jsonschema.Draft7Validator(schema)
    found = [
        "/".join(map(str, error.absolute_path)) + f": {error.message}"
        for error in validator.iter_errors(obj)
    ]
    found += _duplicate_map_keys(schema, obj, "")
    name = obj.get("metadata", {}).get("name", "")
    if not (DNS_SUBDOMAIN.match(name) and len(name) <= 253):
        found.append(f"metadata/name: {name!r} is not a DNS subdomain")
    return found
