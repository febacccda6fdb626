"""Kubernetes label selectors (matchLabels + matchExpressions) over plain label maps."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from modelplane.common.fields import mapping, sequence


def matches(selector: Mapping[str, Any] | None, labels: Mapping[str, str] | None) -> bool:
    """True when ``labels`` satisfy ``selector``; an empty or absent selector matches all.

    Semantics are Kubernetes' (metav1.LabelSelector): every matchLabels pair must be present,
    and every expression must hold (In, NotIn, Exists, DoesNotExist).
    """
    return explain_mismatch(selector, labels) is None


def explain_mismatch(
    selector: Mapping[str, Any] | None, labels: Mapping[str, str] | None
) -> str | None:
    """Why ``labels`` do not satisfy ``selector``, or None when they do."""
    if not selector:
        return None
    if not isinstance(selector, Mapping):
        return f"selector {selector!r} is not an object"
    labels = labels or {}
    for key, want in sorted(mapping(selector.get("matchLabels")).items()):
        have = labels.get(key)
        if have != want:
            return f"label {key}={have!r} does not equal {want!r}" if have is not None else (
                f"label {key} is missing (want {want!r})"
            )
    for expr in map(mapping, sequence(selector.get("matchExpressions"))):
        key = str(expr.get("key", ""))
        op = expr.get("operator")
        values = [str(v) for v in sequence(expr.get("values"))]
        have = labels.get(key)
        if op == "In" and have not in values:
            return f"label {key}={have!r} is not in {values}"
        if op == "NotIn" and have is not None and have in values:
            return f"label {key}={have!r} is in {values}"
        if op == "Exists" and key not in labels:
            return f"label {key} does not exist"
        if op == "DoesNotExist" and key in labels:
            return f"label {key} exists"
        if op not in ("In", "NotIn", "Exists", "DoesNotExist"):
            return f"unknown selector operator {op!r} for key {key}"
    return None


def to_string(selector: Mapping[str, Any] | None) -> str:
    """Render a selector in kubectl's string form (what a scale subresource's labelSelector is)."""
    if not selector or not isinstance(selector, Mapping):
        return ""
    parts = [f"{k}={v}" for k, v in sorted(mapping(selector.get("matchLabels")).items())]
    for expr in map(mapping, sequence(selector.get("matchExpressions"))):
        key, op = expr.get("key"), expr.get("operator")
        vals = ",".join(sorted(str(v) for v in sequence(expr.get("values"))))
        if op == "In":
            parts.append(f"{key} in ({vals})")
        elif op == "NotIn":
            parts.append(f"{key} notin ({vals})")
        elif op == "Exists":
            parts.append(f"{key}")
        elif op == "DoesNotExist":
            parts.append(f"!{key}")
    return ",".join(parts)
