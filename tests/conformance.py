"""Check composed objects against the real upstream schemas in ../shared/conformance.

- Custom resources: the CRD's openAPIV3Schema for the object's served version, structurally
  (types, required, enums, bounds, unknown fields rejected as `kubectl apply --validate=strict`
  would) plus the CRD's `x-kubernetes-validations` CEL rules evaluated with cel-python.
- Kubernetes built-ins: the kubernetes-validate package's 1.34 schemas, strict.
- provider-kubernetes Objects: the Object itself against its CRD, then the embedded
  `spec.forProvider.manifest` as the object it is.

Tests call ``problems(obj)`` and assert it is empty; they skip when ../shared is absent.
"""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from modelplane.common.openapi import to_jsonschema
from modelplane.common.output import load_yaml

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
CRDS = SHARED / "conformance" / "crds"
K8S_VERSION = "1.34.0"


def require_shared() -> None:
    if not CRDS.is_dir():
        pytest.skip(f"conformance data not found at {CRDS} (clone with ../shared beside the repo)")


@functools.cache
def _crd_index() -> dict[tuple[str, str], dict[str, Any]]:
    index: dict[tuple[str, str], dict[str, Any]] = {}
    for f in sorted(CRDS.rglob("*.yaml")):
        crd = load_yaml(f.read_text())
        spec = crd["spec"]
        index[(spec["group"], spec["names"]["kind"])] = crd
    return index


def crd_schema(api_version: str, kind: str) -> dict[str, Any] | None:
    group, _, version = api_version.rpartition("/")
    crd = _crd_index().get((group, kind))
    if crd is None:
        return None
    for v in crd["spec"]["versions"]:
        if v["name"] == version and v.get("served", True):
            schema: dict[str, Any] = v["schema"]["openAPIV3Schema"]
            return schema
    raise AssertionError(f"{kind}.{group} does not serve version {version!r}")


def _cel_problems(schema: dict[str, Any], value: Any, path: str) -> list[str]:
    """Evaluate x-kubernetes-validations rules (cel-python; rules it cannot run are skipped)."""
    import celpy
    from celpy import celtypes

    out: list[str] = []
    for rule in schema.get("x-kubernetes-validations") or []:
        if "oldSelf" in rule["rule"]:
            continue  # transition rules do not apply on create
        try:
            env = celpy.Environment()
            prog = env.program(env.compile(rule["rule"]))
            result = prog.evaluate({"self": celpy.json_to_cel(value)})
        except Exception:  # an extension cel-python lacks: not evaluated, not failed
            continue
        if isinstance(result, celtypes.BoolType) and not bool(result):
            out.append(f"{path or '<root>'}: {rule.get('message') or rule['rule']}")
    if isinstance(value, dict):
        for name, sub in (schema.get("properties") or {}).items():
            if name in value:
                out += _cel_problems(sub, value[name], f"{path}.{name}".lstrip("."))
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for k, v in value.items():
                out += _cel_problems(extra, v, f"{path}.{k}".lstrip("."))
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, v in enumerate(value):
            out += _cel_problems(schema["items"], v, f"{path}[{i}]")
    return out


def _builtin_problems(obj: dict[str, Any], where: str) -> list[str]:
    import kubernetes_validate

    try:
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
    except kubernetes_validate.utils.SchemaNotFoundError:
        return [f"{where}: no schema for {obj.get('apiVersion')} {obj.get('kind')}"]
    except kubernetes_validate.utils.ValidationError as exc:
        return [f"{where}: {exc.path and '.'.join(map(str, exc.path))}: {exc.message}"]
    return []


def problems(obj: dict[str, Any], where: str = "") -> list[str]:
    """Every way ``obj`` fails its real upstream schema (empty list: conformant)."""
    require_shared()
    api_version, kind = str(obj.get("apiVersion", "")), str(obj.get("kind", ""))
    where = where or f"{kind}/{(obj.get('metadata') or {}).get('name')}"
    schema = crd_schema(api_version, kind)
    if schema is None:
        group = api_version.split("/")[0] if "/" in api_version else ""
        if "." in group and not group.endswith("k8s.io"):
            return [f"{where}: no CRD for {kind} {api_version} in {CRDS}"]
        return _builtin_problems(obj, where)
    body = copy.deepcopy(obj)
    body.pop("status", None)
    out = [f"{where}: {'.'.join(map(str, e.absolute_path))}: {e.message}"
           for e in jsonschema.Draft7Validator(to_jsonschema(schema)).iter_errors(body)]
    out += [f"{where}: {p}" for p in _cel_problems(schema, body, "")]
    manifest = ((obj.get("spec") or {}).get("forProvider") or {}).get("manifest")
    if kind == "Object" and isinstance(manifest, dict):
        out += problems(manifest, f"{where} manifest {manifest.get('kind')}")
    return out
