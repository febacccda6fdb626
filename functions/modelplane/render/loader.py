"""Loading a directory of manifests (or render's own output) into the local control plane."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from modelplane.render.store import Obj, group_of

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")

# API groups whose objects the local control plane accepts without an XRD: Kubernetes
# built-ins, Crossplane itself, the providers we compose, and the ecosystems the examples show
# (KEDA, Argo CD, the Prometheus Operator). Anything else is an unknown kind and an input error.
KNOWN_GROUPS = frozenset({
    "", "apps", "batch", "rbac.authorization.k8s.io", "resource.k8s.io", "storage.k8s.io",
    "networking.k8s.io", "policy", "autoscaling", "coordination.k8s.io", "discovery.k8s.io",
    "apiextensions.crossplane.io", "pkg.crossplane.io", "protection.crossplane.io",
    "ops.crossplane.io",
    "kubernetes.m.crossplane.io", "helm.m.crossplane.io",
    "kubernetes.crossplane.io", "helm.crossplane.io",
    "gateway.networking.k8s.io", "inference.networking.k8s.io",
    "inference.networking.x-k8s.io", "leaderworkerset.x-k8s.io",
    "keda.sh", "argoproj.io", "monitoring.coreos.com",
})
KNOWN_GROUP_SUFFIXES = (".upbound.io",)


class InputError(Exception):
    """A problem with a user's manifest, naming the file and document."""


@dataclass
class Loaded:
    xrds: list[Obj] = field(default_factory=list)
    compositions: list[Obj] = field(default_factory=list)
    objects: list[tuple[str, Obj]] = field(default_factory=list)  # (where, object)


def _documents(path: Path) -> list[Any]:
    text = path.read_text()
    if path.suffix == ".json":
        data = json.loads(text)
        return data if isinstance(data, list) else [data]
    docs: list[Any] = []
    for doc in yaml.safe_load_all(text):
        if isinstance(doc, dict) and doc.get("kind") == "List" and "items" in doc:
            docs.extend(doc["items"] or [])
        elif doc is not None:
            docs.append(doc)
    return docs


def files_under(paths: list[Path]) -> list[Path]:
    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            out.extend(sorted(f for f in p.rglob("*") if f.suffix in MANIFEST_SUFFIXES))
        elif p.exists():
            out.append(p)
        else:
            raise InputError(f"{p}: no such file or directory")
    return out


def load(paths: list[Path], our_groups: frozenset[str]) -> Loaded:
    """Read every manifest; raise InputError naming file and document on the first problem.

    XRDs found among the manifests extend the known groups, wherever they appear.
    """
    docs: list[tuple[str, dict[str, Any]]] = []
    for f in files_under(paths):
        try:
            parsed = _documents(f)
        except (yaml.YAMLError, json.JSONDecodeError) as exc:
            raise InputError(f"{f}: not valid YAML/JSON: {exc}") from exc
        for i, doc in enumerate(parsed):
            where = f"{f}#{i}"
            if not isinstance(doc, dict):
                raise InputError(f"{where}: a document must be a mapping, got {type(doc).__name__}")
            if not doc.get("apiVersion") or not doc.get("kind"):
                raise InputError(f"{where}: apiVersion and kind are required")
            if not (doc.get("metadata") or {}).get("name"):
                raise InputError(f"{where}: {doc['kind']} has no metadata.name")
            docs.append((where, doc))
    xrd_groups = {
        str((d.get("spec") or {}).get("group", "")) for _, d in docs
        if d["kind"] == "CompositeResourceDefinition"
    }
    known = our_groups | xrd_groups
    loaded = Loaded()
    for where, doc in docs:
        api_version, kind = str(doc["apiVersion"]), str(doc["kind"])
        group = group_of(api_version)
        if kind == "CompositeResourceDefinition" and group == "apiextensions.crossplane.io":
            loaded.xrds.append(doc)
        elif kind == "Composition" and group == "apiextensions.crossplane.io":
            loaded.compositions.append(doc)
        elif group in known or group in KNOWN_GROUPS or group.endswith(KNOWN_GROUP_SUFFIXES):
            loaded.objects.append((where, doc))
        else:
            raise InputError(
                f"{where}: unknown kind {kind} in apiVersion {api_version} "
                f"(no XRD defines it and it is not a kind the local control plane knows)"
            )
    return loaded
