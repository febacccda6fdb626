"""Every XRD CEL rule stays well inside the API server's cost limit, its enclosing lists bounded.

The API server estimates a rule's cost before it accepts a CRD: the rule's own worst-case cost
times the largest number of times it can run, which is the product of the maximum cardinalities
of every list and map enclosing it (``maxItems``/``maxProperties``; an unbounded one counts as
many elements as fit in a maximum-size request). A CRD whose rule exceeds the limit does not
install, so one more term in a rule under an unbounded list breaks the package.

Approximation (documented in docs/render.md): Kubernetes' own estimator needs the Go CEL
library; here a rule's own cost is bounded by its token count (every CEL operation costs at
least one unit and no token more than one, except string comparisons, charged one unit per ten
characters of the longest string a rule reads, and macros, charged once per element of the
collection they range over). That over-estimates Kubernetes' figure, so staying under a tenth
of the limit here keeps a real margin there.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
XRD_FILES = sorted((REPO / "apis").glob("*/definition.yaml"))

COST_LIMIT = 10_000_000  # apiextensions' StaticEstimatedCostLimit
MAX_REQUEST_BYTES = 3 * 1024 * 1024  # the API server's maximum request size
MIN_ELEMENT_BYTES = {"object": 3, "array": 3, "string": 3}  # "{}," / "[]," / '"",'
MACROS = re.compile(r"\.(all|exists|exists_one|map|filter)\(")
TOKEN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|\d+|'[^']*'|\"[^\"]*\"|[=!<>]=|&&|\|\||\S")


def _cardinality(node: dict[str, Any]) -> int:
    if node.get("type") == "array":
        bound = node.get("maxItems")
        element = str((node.get("items") or {}).get("type", "object"))
    else:
        bound = node.get("maxProperties")
        element = str((node.get("additionalProperties") or {}).get("type", "object"))
    if bound is not None:
        return int(bound)
    return MAX_REQUEST_BYTES // MIN_ELEMENT_BYTES.get(element, 2)


def _longest_string(node: dict[str, Any]) -> int:
    best = int(node.get("maxLength", 0)) if node.get("type") == "string" else 0
    for child in (node.get("properties") or {}).values():
        best = max(best, _longest_string(child))
    return best


def _collections(node: dict[str, Any]) -> list[dict[str, Any]]:
    """Lists and maps directly reachable from ``node`` (what a macro in its rule ranges over)."""
    out = [node] if node.get("type") == "array" or isinstance(
        node.get("additionalProperties"), dict) else []
    for child in (node.get("properties") or {}).values():
        out += _collections(child)
    return out


def rule_cost(rule: str, node: dict[str, Any]) -> int:
    """An upper bound of one evaluation of ``rule`` on ``node`` (see the module docstring)."""
    cost = len(TOKEN.findall(rule)) + math.ceil(_longest_string(node) / 10)
    if MACROS.search(rule):
        ranges = [_cardinality(c) for c in _collections(node)] or [1]
        cost *= max(ranges)
    return cost


def estimates(node: dict[str, Any], path: str = "",
              times: int = 1) -> list[tuple[str, str, int]]:
    """(path, rule, estimated cost x how often it can run) for every rule under ``node``."""
    out = [(path, r["rule"], rule_cost(r["rule"], node) * times)
           for r in node.get("x-kubernetes-validations") or []]
    for key, child in (node.get("properties") or {}).items():
        out += estimates(child, f"{path}.{key}", times)
    if isinstance(node.get("additionalProperties"), dict):
        out += estimates(node["additionalProperties"], f"{path}[*]", times * _cardinality(node))
    if isinstance(node.get("items"), dict):
        out += estimates(node["items"], f"{path}[]", times * _cardinality(node))
    return out


def _schema(path: Path) -> dict[str, Any]:
    doc = yaml.safe_load(path.read_text())
    schema: dict[str, Any] = doc["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


@pytest.mark.parametrize("path", XRD_FILES, ids=lambda p: p.parent.name)
def test_every_rule_is_well_inside_the_cost_limit(path: Path) -> None:
    over = [(where, cost) for where, _, cost in estimates(_schema(path))
            if cost > COST_LIMIT // 10]
    assert over == []


def test_an_unbounded_enclosing_list_is_what_breaks_the_limit() -> None:
    rule = {"rule": "self.a == 'x'"}
    bounded = {"type": "array", "maxItems": 32,
               "items": {"type": "object", "x-kubernetes-validations": [rule],
                         "properties": {"a": {"type": "string", "maxLength": 8}}}}
    unbounded = {**bounded, "maxItems": None}
    del unbounded["maxItems"]
    assert estimates(bounded)[0][2] < COST_LIMIT // 10
    assert estimates(unbounded)[0][2] > COST_LIMIT // 10
