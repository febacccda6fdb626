"""OpenAPI v3 schemas (as CRDs and XRDs carry them) for validation with jsonschema."""

from __future__ import annotations

from typing import Any

#: What documents a field (an editor shows it on hover) rather than constrains it.
ANNOTATIONS = ("description", "example", "default", "format")


def to_jsonschema(node: Any, annotated: bool = False) -> Any:
    """OpenAPI v3 with Kubernetes extensions -> JSON Schema; unknown fields are rejected.
    ``annotated`` keeps descriptions, examples, defaults and formats (for editors)."""
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for k, v in node.items():
        if k == "properties":
            out[k] = {p: to_jsonschema(s, annotated) for p, s in v.items()}
        elif k in ("items", "additionalProperties", "not") and isinstance(v, dict):
            out[k] = to_jsonschema(v, annotated)
        elif k in ("allOf", "anyOf", "oneOf"):
            out[k] = [to_jsonschema(s, annotated) for s in v]
        elif k.startswith("x-kubernetes-") or k == "nullable" or (
                k in ANNOTATIONS and not annotated):
            continue
        else:
            out[k] = v
    if node.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if node.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
    if ("properties" in node and "additionalProperties" not in node
            and not node.get("x-kubernetes-preserve-unknown-fields")):
        out["additionalProperties"] = False
    return out
