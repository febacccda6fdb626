"""YAML and JSON output shared by every command: sorted keys, integral numbers as integers."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import yaml


class _Dumper(yaml.SafeDumper):
    """Block-style YAML that quotes strings which would otherwise change type when re-read."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style: str | None = None
    if "\n" in value:
        style = "|"
    elif dumper.resolve(yaml.ScalarNode, value, (True, False)) != "tag:yaml.org,2002:str":
        style = '"'  # Go's YAML marshaller double-quotes strings that would read back typed
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


def _float(dumper: yaml.SafeDumper, value: float) -> yaml.ScalarNode:
    if value.is_integer():
        return dumper.represent_int(int(value))
    return dumper.represent_float(value)


_Dumper.add_representer(str, _str)
_Dumper.add_representer(float, _float)


def to_yaml(doc: Any) -> str:
    return yaml.dump(doc, Dumper=_Dumper, sort_keys=True, default_flow_style=False,
                     allow_unicode=True, width=100)


def yaml_stream(docs: Iterable[Any]) -> str:
    return "".join("---\n" + to_yaml(d) for d in docs)


def to_json(doc: Any) -> str:
    return json.dumps(doc, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


#: libyaml's safe loader when PyYAML was built with it (several times faster on large CRDs),
#: else the pure-Python one; both resolve the same YAML 1.1 types.
FastSafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_yaml(text: str) -> Any:
    """One YAML document, parsed as ``yaml.safe_load`` would, but with libyaml when present."""
    return yaml.load(text, Loader=FastSafeLoader)
