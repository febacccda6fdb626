"""The published v0.1.0 API, field by field: every field it lists exists here with its type and
default, and no constraint of ours is stricter than v0.1's (../shared/compat/v0.1-api.md)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from modelplane.validate import default_registry

REPO = Path(__file__).resolve().parents[2]
V01 = REPO.parent / "shared" / "compat" / "v0.1-api.md"
API = "modelplane.ai/v1alpha1"

#: Patterns we keep on fields v0.1 leaves free: each is a rule the value must meet anyway for
#: the thing it names to work (Kubernetes, DRA, the clouds, Helm), so a value failing it could
#: never have worked under v0.1 either.
INTRINSIC_PATTERNS = {
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$":
        "DNS subdomain (object names)",
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$": "DNS label (names that become labels and object names)",
    r"^[-._a-zA-Z0-9]+$": "a Secret data key",
    r"^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$":
        "DRA version attributes are semver 2.0",
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$":
        "DRA capacities are Kubernetes quantities",
    r"^[a-z][-a-z0-9]{4,28}[a-z0-9]$": "a Google Cloud project ID",
    r"^[0-9]+\.[0-9]+(\.[0-9]+)?(-[0-9A-Za-z.-]+)?$": "a Kubernetes version the clouds accept",
    r"^v?[0-9]+\.[0-9]+\.[0-9]+([-+][0-9A-Za-z.+-]+)?$": "a Helm chart version (semver)",
    r"^[0-9A-Fa-f.:]+(/[0-9]{1,3}|\s*-\s*[0-9A-Fa-f.:]+)$": "the range forms MetalLB accepts",
    r"^[A-Za-z0-9][-A-Za-z0-9._]*(/[A-Za-z0-9][-A-Za-z0-9._]*)?$": "a Hugging Face repo id",
    r"^https?://[^\s/?#]+([/?#]\S*)?$": "an HTTP(S) URL the gateway can route to",
    r"^/\S*$": "an HTTP path",
}

#: Upper bounds v0.1 lacks that we keep: Kubernetes' own limits on the value, or bounds the API
#: server's CEL cost estimate needs under a rule, each well beyond any real value.
KEPT_BOUNDS = {
    "spec.provisioning.gke.machineType", "spec.provisioning.eks.instanceType",  # CEL cost
    "spec.nodePools[].zones", "spec.nodePools[].zones[]",  # CEL cost
    "spec.traefik.version",  # a Helm chart version
    "spec.huggingFace.repo", "spec.huggingFace.revision",  # Hub ids, git refs
    "spec.modelCacheRef.name",  # an object name
    "spec.clusterSelector.matchLabels.<key>",  # label values: 63
    "spec.engines[].members[].template.metadata.labels.<key>",  # label values: 63
    "spec.engines[].members[].template.metadata.annotations.<key>",  # annotations: 256Ki in all
    "spec.url", "spec.rewritePath",  # CEL cost
    "spec.endpoints", "spec.endpoints[].selector.matchLabels.<key>",  # CEL cost; label values
    "spec.cluster.gke.kubernetesVersion", "spec.cluster.eks.kubernetesVersion",  # CEL cost
    "spec.traefik.metallb.addressPool",  # CEL cost
    "spec.huggingFace.authSecret.name", "spec.huggingFace.authSecret.key",  # Secret name, key
}

#: Fields required here that v0.1 leaves optional, each because the object cannot mean anything
#: without it and v0.1 requires something inside it.
KEPT_REQUIRED = {
    "spec",  # every kind requires fields inside spec, in v0.1 too
    "spec.engines[].members[].template.spec",  # v0.1 requires its containers
}

def _rows() -> list[tuple[str, str, str, str]]:
    """(kind, field, type, constraints) for every row of the v0.1 field tables."""
    if not V01.is_file():
        return []  # ../shared is not beside the repo: nothing to compare against
    rows: list[tuple[str, str, str, str]] = []
    kind = ""
    for line in V01.read_text().splitlines():
        heading = re.match(r"^## (\w+)$", line)
        if heading:
            kind = heading.group(1)
            continue
        cell = re.match(r"^\| `([^`]+)` \| (\w+) \| (.*) \|$", line)
        if cell and kind:
            rows.append((kind, cell.group(1), cell.group(2), cell.group(3)))
    assert len(rows) > 150, "the v0.1 field tables were not parsed"
    return rows


def _node(kind: str, field: str) -> tuple[dict[str, Any] | None, bool]:
    """Our schema node for a v0.1 field path and whether its parent requires it; None when the
    field lies below a free-form object (a PodSpec passed through verbatim)."""
    schema = default_registry().schema_for(API, kind)
    assert schema is not None, f"{kind} is not served"
    node: dict[str, Any] = schema
    required = False
    for part in field.split("."):
        if node.get("x-kubernetes-preserve-unknown-fields") and not node.get("properties"):
            return None, False
        if part.endswith("[]"):
            if part[:-2] not in (node.get("properties") or {}) and \
                    node.get("x-kubernetes-preserve-unknown-fields"):
                return None, False
            node = node["properties"][part[:-2]]
            assert node.get("type") == "array", f"{field}: {part} is not an array"
            node = node["items"]
            required = False
            continue
        if part == "<key>":
            node = node["additionalProperties"]
            required = False
            continue
        props = node.get("properties") or {}
        if part not in props and node.get("x-kubernetes-preserve-unknown-fields"):
            return None, False  # a field the partial PodSpec schema leaves free-form
        assert part in props, f"{kind} {field}: {part!r} is unknown here"
        required = part in (node.get("required") or [])
        node = props[part]
    return node, required


def _constraints(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for piece in (p.strip() for p in text.split(";") if p.strip()):
        if piece == "required":
            out["required"] = "yes"
        elif piece.startswith("one of "):
            out["enum"] = piece.removeprefix("one of ")
        elif piece.startswith("list-map keyed by "):
            out["listKey"] = piece.removeprefix("list-map keyed by ")
        else:
            key, _, value = piece.partition(" ")
            out[key] = value
    return out


def _default(value: str, type_: str) -> Any:
    value = value.strip("'")
    return int(value) if type_ == "integer" else value


@pytest.mark.parametrize(("kind", "field", "type_", "constraints"), _rows(),
                         ids=lambda v: v if isinstance(v, str) and "." in v else None)
def test_the_v01_field_is_accepted_with_its_type_and_default(
        kind: str, field: str, type_: str, constraints: str) -> None:
    node, required = _node(kind, field)
    if node is None:
        return  # accepted as written, whatever it holds
    want = _constraints(constraints)
    assert node.get("type") == type_, f"{kind} {field}: type {node.get('type')} != {type_}"
    if "default" in want:
        assert node.get("default") == _default(want["default"], type_), (
            f"{kind} {field}: default {node.get('default')!r} != v0.1's {want['default']}")
    if (required and "required" not in want and "default" not in want
            and field not in KEPT_REQUIRED):
        pytest.fail(f"{kind} {field} is required here but optional in v0.1")
    if "enum" in want:
        ours = set(node.get("enum") or [])
        assert set(want["enum"].split(", ")) <= ours or not ours, (
            f"{kind} {field}: enum {sorted(ours)} lacks some of v0.1's {want['enum']}")
    for key, op in (("min", "minimum"), ("minLength", "minLength"), ("minItems", "minItems")):
        if op in node:
            limit = int(want.get(key, "0"))
            assert node[op] <= limit, f"{kind} {field}: {op} {node[op]} > v0.1's {limit}"
    for key, op in (("max", "maximum"), ("maxLength", "maxLength"), ("maxItems", "maxItems")):
        if op in node and key in want:
            assert node[op] >= int(want[key]), (
                f"{kind} {field}: {op} {node[op]} < v0.1's {want[key]}")
        elif op in node and field not in KEPT_BOUNDS:
            pytest.fail(f"{kind} {field}: {op} {node[op]} where v0.1 has no limit")
    if "pattern" in node and node["pattern"] not in INTRINSIC_PATTERNS:
        assert want.get("pattern") == node["pattern"], (
            f"{kind} {field}: pattern {node['pattern']} where v0.1 has {want.get('pattern')}")
    if "listKey" in want:
        assert node.get("x-kubernetes-list-map-keys") == [want["listKey"]]
