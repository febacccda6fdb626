"""package/rbac.yaml grants Crossplane every kind our Compositions compose directly or read as
required resources (Crossplane's RBAC manager covers XR kinds and providers' managed
resources only), and every managed resource we compose has a provider dependency and is
activated by the Configuration's activation policy."""

from __future__ import annotations

import ast
import fnmatch
import functools
from pathlib import Path
from typing import Any

import pytest
import yaml
from modelplane.render import Fleet, render_fleet
from modelplane.render.engine import Engine

from tests.conformance import CRDS, _crd_index

REPO = Path(__file__).resolve().parents[2]
FUNCTIONS = REPO / "functions" / "modelplane"
EXAMPLES = sorted(p for p in (REPO / "examples").iterdir() if p.is_dir())
COMPOSE_VERBS = {"get", "list", "watch", "create", "update", "patch", "delete"}
READ_VERBS = {"get", "list", "watch"}
# Groups whose kinds Crossplane's RBAC manager grants to Crossplane itself: provider CRDs
# (managed resources and provider configs) and Crossplane's package/composition APIs.
PROVIDER_GROUPS = ("kubernetes.m.crossplane.io", "helm.m.crossplane.io",
                   "kubernetes.crossplane.io", "helm.crossplane.io")
CROSSPLANE_OWN = ("apiextensions.crossplane.io", "pkg.crossplane.io")


def group_of(api_version: str) -> str:
    return api_version.rpartition("/")[0]


def is_provider_group(group: str) -> bool:
    return group.endswith(".upbound.io") or group in PROVIDER_GROUPS


def our_groups() -> set[str]:
    return {yaml.safe_load(f.read_text())["spec"]["group"]
            for f in (REPO / "apis").glob("*/definition.yaml")}


def needs_grant(group: str) -> bool:
    return not (group in our_groups() or is_provider_group(group) or group in CROSSPLANE_OWN)


def plurals() -> dict[tuple[str, str], str]:
    """Plural resource names of every upstream CRD (the conformance index, loaded once)."""
    if not CRDS.is_dir():
        return {}
    return {k: crd["spec"]["names"]["plural"] for k, crd in _crd_index().items()}


def plural(group: str, kind: str) -> str:
    if (group, kind) in plurals():
        return plurals()[(group, kind)]
    low = kind.lower()  # Kubernetes built-ins follow the regular English rules
    if low.endswith("y") and low[-2:-1] not in "aeiou":
        return low[:-1] + "ies"
    if low.endswith(("s", "x", "ch", "sh")):
        return low + "es"
    return low + "s"


def granted() -> dict[tuple[str, str], set[str]]:
    role = yaml.safe_load((REPO / "package" / "rbac.yaml").read_text())
    out: dict[tuple[str, str], set[str]] = {}
    for rule in role["rules"]:
        for g in rule["apiGroups"]:
            for r in rule["resources"]:
                out.setdefault((g, r), set()).update(rule["verbs"])
    return out


# -- what the functions use --------------------------------------------------------------------

@functools.cache
def rendered() -> tuple[tuple[Fleet, ...], frozenset[tuple[str, str]]]:
    """Every example rendered, plus every (apiVersion, kind) asked for as a required resource."""
    asked: set[tuple[str, str]] = set()
    original = Engine._resolve

    def recording(self: Engine, sel: Any, view: Any) -> list[dict[str, Any]]:
        asked.add((sel.api_version, sel.kind))
        return original(self, sel, view)

    Engine._resolve = recording  # type: ignore[method-assign]
    try:
        fleets = tuple(render_fleet([d]) for d in EXAMPLES)
    finally:
        Engine._resolve = original  # type: ignore[method-assign]
    return fleets, frozenset(asked)


def composed_kinds() -> set[tuple[str, str]]:
    """(group, kind) of every object an XR composed in any rendered example."""
    fleets, _ = rendered()
    return {(group_of(str(o["apiVersion"])), str(o["kind"]))
            for fleet in fleets for o in fleet.objects()
            if "crossplane.io/composite" in ((o.get("metadata") or {}).get("labels") or {})}


def _module_constants() -> dict[str, set[str]]:
    consts: dict[str, set[str]] = {}
    for f in FUNCTIONS.rglob("*.py"):
        for node in ast.parse(f.read_text()).body:
            if (isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)
                    and isinstance(node.value.value, str)):
                for t in node.targets:
                    if isinstance(t, ast.Name):
                        consts.setdefault(t.id, set()).add(node.value.value)
    return consts


def statically_required() -> set[tuple[str, str]]:
    """(group, kind) of every `Selector(...)` / `Selector.labels(...)` in the source whose
    apiVersion and kind are literals or module-level string constants: required resources no
    example exercises (e.g. a token Secret) still need a grant."""
    consts = _module_constants()

    def values(node: ast.expr) -> set[str]:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return {node.value}
        if isinstance(node, ast.Name):
            return consts.get(node.id, set())
        if isinstance(node, ast.Attribute):
            return consts.get(node.attr, set())
        return set()

    out: set[tuple[str, str]] = set()
    for f in FUNCTIONS.rglob("*.py"):
        for node in ast.walk(ast.parse(f.read_text())):
            if not isinstance(node, ast.Call) or len(node.args) < 2:
                continue
            fn = node.func
            name = fn.attr if isinstance(fn, ast.Attribute) else getattr(fn, "id", "")
            owner = getattr(getattr(fn, "value", None), "id", "")
            if name == "Selector" or (name == "labels" and owner == "Selector"):
                for av in values(node.args[0]):
                    for kind in values(node.args[1]):
                        if "/" in av or av == "v1":
                            out.add((group_of(av), kind))
    return out


def required_kinds() -> set[tuple[str, str]]:
    _, asked = rendered()
    return {(group_of(av), k) for av, k in asked} | statically_required()


# -- the rules ---------------------------------------------------------------------------------

def test_cluster_role_aggregates_to_crossplane() -> None:
    role = yaml.safe_load((REPO / "package" / "rbac.yaml").read_text())
    assert role["kind"] == "ClusterRole"
    assert role["metadata"]["labels"]["rbac.crossplane.io/aggregate-to-crossplane"] == "true"


def test_examples_compose_something_to_check() -> None:
    assert composed_kinds(), "rendering the examples composed nothing; the RBAC check is vacuous"


def test_every_directly_composed_kind_is_granted_to_crossplane() -> None:
    grants = granted()
    missing = sorted(f"{kind}.{group or 'core'} ({plural(group, kind)})"
                     for group, kind in composed_kinds() if needs_grant(group)
                     and not grants.get((group, plural(group, kind)), set()) >= COMPOSE_VERBS)
    assert missing == [], f"add to package/rbac.yaml (and docs/operations.md): {missing}"


def test_every_required_resource_kind_is_readable_by_crossplane() -> None:
    grants = granted()
    missing = sorted(f"{kind}.{group or 'core'} ({plural(group, kind)})"
                     for group, kind in required_kinds() if needs_grant(group)
                     and not grants.get((group, plural(group, kind)), set()) >= READ_VERBS)
    assert missing == [], f"add get/list/watch to package/rbac.yaml: {missing}"


def test_secrets_are_never_composed_so_only_read() -> None:
    assert ("", "Secret") not in composed_kinds()
    assert granted().get(("", "secrets")) == READ_VERBS


# -- providers behind the managed resources we compose --------------------------------------------

def provider_for(group: str) -> str | None:
    """The provider package (repository basename) serving a managed resource group; None for a
    family group (ProviderConfigs), which every sub-provider of the family pulls in."""
    if group in ("kubernetes.m.crossplane.io", "kubernetes.crossplane.io"):
        return "provider-kubernetes"
    if group in ("helm.m.crossplane.io", "helm.crossplane.io"):
        return "provider-helm"
    parts = group.removesuffix(".upbound.io").removesuffix(".m").split(".")
    if len(parts) == 1:
        return None
    return f"provider-{parts[1]}-{parts[0]}"


def configuration() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(
        (REPO / "package" / "configuration" / "crossplane.yaml").read_text())
    return data


def managed_kinds() -> set[tuple[str, str]]:
    return {(g, k) for g, k in composed_kinds() if is_provider_group(g)
            and not k.endswith(("ProviderConfig", "ProviderConfigUsage"))}


def test_every_composed_managed_resource_has_a_provider_dependency() -> None:
    deps = {d["package"].rsplit("/", 1)[-1] for d in configuration()["spec"]["dependsOn"]}
    missing = sorted({f"{provider_for(g)} (for {k}.{g})" for g, k in composed_kinds()
                      if is_provider_group(g) and provider_for(g) not in (None, *deps)})
    assert missing == [], f"add to package/configuration/crossplane.yaml dependsOn: {missing}"


def test_every_composed_managed_resource_is_activated() -> None:
    if not CRDS.is_dir():
        pytest.skip(f"conformance data not found at {CRDS} (needed for plural names)")
    policy = yaml.safe_load((REPO / "package" / "configuration" / "activation.yaml").read_text())
    patterns = policy["spec"]["activate"]
    inactive = sorted(f"{plural(g, k)}.{g}" for g, k in managed_kinds()
                      if not any(fnmatch.fnmatchcase(f"{plural(g, k)}.{g}", p)
                                 for p in patterns))
    assert inactive == [], f"add to package/configuration/activation.yaml: {inactive}"
