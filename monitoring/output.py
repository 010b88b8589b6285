"""Serialising the generated files the way they are committed.

The YAML half is what the post-generation hook writes rules with, so it
needs nothing beyond PyYAML (a dependency of cookiecutter itself).
"""

from __future__ import annotations

import json
from typing import Any

import yaml


class _Dumper(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:
        return True

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)  # lists indented under their key


def _string(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    # Multi-line PromQL reads best as a literal block.
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _string)


def comment(header: str) -> str:
    return "".join(f"# {line}".rstrip() + "\n" for line in header.splitlines())


def to_yaml(data: Any, header: str = "") -> str:
    body = yaml.dump(data, Dumper=_Dumper, sort_keys=False, width=10_000, allow_unicode=True)
    return comment(header) + body


def to_json(data: Any) -> str:
    from grafana_foundation_sdk.cog.encoder import JSONEncoder  # only the kit has the SDK

    # Round-trip through the SDK's encoder so only plain JSON values remain.
    plain = json.loads(json.dumps(data, cls=JSONEncoder))
    return json.dumps(plain, indent=2, ensure_ascii=False) + "\n"
