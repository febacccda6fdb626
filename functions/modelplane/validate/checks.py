"""Checks beyond the XRD schema that the API server cannot make but placement and the cluster
would: DRA CEL selectors compiled and type-checked with our CEL engine, pod templates against
Kubernetes' own schema, and references between the objects validated together."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from modelplane.common.fields import mapping, sequence
from modelplane.contract import fabric
from modelplane.contract.api import (
    GROUP,
    INFERENCE_CLASS,
    INFERENCE_CLUSTER,
    INFERENCE_GATEWAY,
    MODEL_CACHE,
    MODEL_DEPLOYMENT,
    MODEL_ENDPOINT,
    MODEL_REPLICA,
    MODEL_SERVICE,
)
from modelplane.contract.inferenceclass import resolve_devices
from modelplane.steps.inferencecluster.existing import SECRET_NAMESPACE as EXISTING_SECRET_NAMESPACE
from modelplane.validate.admission import FieldError

# The Kubernetes version pod templates are checked against: DRA (resource.k8s.io/v1) is GA in
# 1.34, the oldest release Modelplane supports.
KUBERNETES_VERSION = "1.34"
_POD_TEMPLATE_DEF = "io.k8s.api.core.v1.PodTemplateSpec"
_TEMPLATE_KINDS = {MODEL_DEPLOYMENT, MODEL_REPLICA}


def _members(doc: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for ei, engine in enumerate(sequence(mapping(doc.get("spec")).get("engines"))):
        for mi, member in enumerate(sequence(mapping(engine).get("members"))):
            yield f"spec.engines[{ei}].members[{mi}]", mapping(member)


# -- CEL selectors ------------------------------------------------------------------------------

def selector_errors(doc: dict[str, Any]) -> list[FieldError]:
    """Every device selector the API server or placement would reject (syntax, type, not bool,
    length, worst-case cost), wherever our kinds carry one (``selectors[].cel``)."""
    from modelplane.cel import selector_problems

    return [FieldError(where, f"invalid selector {expr!r}: {problem}")
            for where, expr, problem in selector_problems(doc.get("spec"), "spec")]


# -- pod templates ------------------------------------------------------------------------------

@lru_cache(maxsize=1)
def _pod_template_validator() -> Any:
    import jsonschema
    import kubernetes_validate.utils as kv
    from referencing import Registry, Resource

    version = [v for v in kv.all_versions()
               if kv.major_minor(v) <= KUBERNETES_VERSION][-1]
    defs = kv.schema_contents(f"kubernetes-json-schema/v{version}-local-strict/_definitions.json",
                              KUBERNETES_VERSION)
    registry: Registry[Any] = Resource.from_contents(defs) @ Registry()
    schema = {"$ref": f"{defs['$id']}#/$defs/{_POD_TEMPLATE_DEF}"}
    return jsonschema.validators.Draft202012Validator(schema, registry=registry)


def _json_path(parts: Iterable[Any]) -> str:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else f".{p}"
    return out


def pod_template_errors(doc: dict[str, Any]) -> list[FieldError]:
    """Each member's pod template against Kubernetes' PodTemplateSpec (strict: unknown fields
    are errors), and every container has an image (Kubernetes leaves that to controllers;
    nothing in Modelplane fills it in)."""
    if doc.get("kind") not in _TEMPLATE_KINDS:
        return []
    errors: list[FieldError] = []
    validator = _pod_template_validator()
    for where, member in _members(doc):
        template = member.get("template")
        if not isinstance(template, dict):
            continue  # the XRD schema reports it
        base = f"{where}.template"
        found = sorted(validator.iter_errors(template), key=lambda e: list(map(str, e.path)))
        for err in found:
            errors.append(FieldError(base + _json_path(err.absolute_path),
                                     f"{err.message} (Kubernetes {KUBERNETES_VERSION} "
                                     "PodTemplateSpec)"))
        spec = mapping(template.get("spec"))
        for group in ("initContainers", "containers"):
            for ci, container in enumerate(sequence(spec.get(group))):
                if isinstance(container, dict) and not container.get("image"):
                    errors.append(FieldError(f"{base}.spec.{group}[{ci}].image",
                                             f"container {container.get('name')!r} has no "
                                             "image"))
    return errors


# -- references ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Reference:
    """One object naming another: where, and what it must find."""

    field: str
    kind: str
    name: str
    namespace: str | None  # None: cluster-scoped


def _ns(doc: dict[str, Any]) -> str:
    return str(mapping(doc.get("metadata")).get("namespace") or "default")


def references(doc: dict[str, Any]) -> list[Reference]:
    """The objects ``doc`` names that must exist for it to work."""
    if str(doc.get("apiVersion", "")).split("/")[0] != GROUP:
        return []
    kind, spec, ns = doc.get("kind"), mapping(doc.get("spec")), _ns(doc)
    out: list[Reference] = []
    if kind == INFERENCE_CLUSTER:
        for i, pool in enumerate(sequence(spec.get("nodePools"))):
            cname = mapping(pool).get("className")
            if cname:
                out.append(Reference(f"spec.nodePools[{i}].className", INFERENCE_CLASS,
                                     str(cname), None))
        existing = mapping(mapping(spec.get("cluster")).get("existing"))
        for field, ref, default_ns in (
                ("spec.credentials.secretRef",
                 mapping(mapping(spec.get("credentials")).get("secretRef")), "default"),
                # An Existing cluster's Secrets live in modelplane-system unless they say.
                ("spec.cluster.existing.secretRef", mapping(existing.get("secretRef")),
                 EXISTING_SECRET_NAMESPACE),
                ("spec.cluster.existing.identitySecretRef",
                 mapping(existing.get("identitySecretRef")), EXISTING_SECRET_NAMESPACE)):
            if ref.get("name"):
                out.append(Reference(f"{field}.name", "Secret", str(ref["name"]),
                                     str(ref.get("namespace") or default_ns)))
    elif kind in (MODEL_DEPLOYMENT, MODEL_REPLICA):
        cache = mapping(spec.get("modelCacheRef")).get("name")
        if cache:
            out.append(Reference("spec.modelCacheRef.name", MODEL_CACHE, str(cache), ns))
    elif kind == MODEL_CACHE:
        token = mapping(mapping(spec.get("huggingFace")).get("authSecret")).get("name")
        if token:
            out.append(Reference("spec.huggingFace.authSecret.name", "Secret", str(token), ns))
    elif kind == MODEL_ENDPOINT:
        secret = mapping(spec.get("apiKeySecretRef")).get("name")
        if secret:
            out.append(Reference("spec.apiKeySecretRef.name", "Secret", str(secret), ns))
    elif kind == MODEL_SERVICE:
        gateway = mapping(spec.get("gatewayRef")).get("name") or "default"
        out.append(Reference("spec.gatewayRef.name", INFERENCE_GATEWAY, str(gateway), None))
    return out


def identity(doc: dict[str, Any]) -> tuple[str, str, str | None]:
    """(kind, name, namespace) as references name objects (namespace None: cluster-scoped)."""
    meta = mapping(doc.get("metadata"))
    kind = str(doc.get("kind", ""))
    cluster_scoped = kind in (INFERENCE_CLASS, INFERENCE_CLUSTER, INFERENCE_GATEWAY)
    return kind, str(meta.get("name", "")), None if cluster_scoped else _ns(doc)


# -- EFA pools against their classes --------------------------------------------------------------

def fabric_errors(doc: dict[str, Any], classes: dict[str, dict[str, Any]]) -> list[FieldError]:
    """An InferenceCluster's ``fabric: EFA`` pools whose class (validated with it) cannot have
    EFA: an instance type without EFA and no EFA devices, or more devices than it has. The same
    check the cluster makes at run time (``contract/fabric.py``); a class not in the set is not
    judged."""
    group = str(doc.get("apiVersion", "")).split("/")[0]
    if doc.get("kind") != INFERENCE_CLUSTER or group != GROUP:
        return []
    out: list[FieldError] = []
    for i, pool in enumerate(sequence(mapping(doc.get("spec")).get("nodePools"))):
        pool = mapping(pool)
        cls = classes.get(str(pool.get("className", "")))
        if pool.get("fabric") != "EFA" or cls is None:
            continue
        eks = mapping(mapping(cls.get("provisioning")).get("eks"))
        if not eks:
            continue  # a class for another cloud: the cluster reports ClassMismatch
        got = fabric.interfaces(str(eks.get("instanceType", "")), resolve_devices(cls))
        if isinstance(got, str):
            out.append(FieldError(f"spec.nodePools[{i}].fabric",
                                  f"'EFA' with InferenceClass {pool.get('className')!r}: {got}"))
    return out
