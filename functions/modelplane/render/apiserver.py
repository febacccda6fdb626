"""What the API server (and its admission webhooks) decide for Crossplane's composite reconciler.

Render's engine plays Crossplane; this module plays the parts of the API server that a real
control plane would use to refuse or shape Crossplane's writes:

- **Scope**: which kinds are cluster-scoped (a namespaced XR may compose only namespaced kinds).
- **Namespaces**: a namespaced object cannot be created in a namespace that does not exist.
- **Server-side apply**: an apply merges the applier's intent into the live object by field
  ownership; fields others set survive, and fields the applier set before but no longer sends
  are removed.
- **Usages**: the ``protection.crossplane.io`` webhook refuses deleting a resource in use and
  records the attempt on it (``replayDeletion`` replays it once the Usage is gone).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Iterator
from typing import Any

from modelplane.render.store import Key, Obj, Store, group_of

PROTECTION_GROUP = "protection.crossplane.io"
USAGE_KINDS = ("Usage", "ClusterUsage")
#: What Crossplane's usage webhook writes on a resource whose deletion it refused: the
#: propagation policy of the attempt (Crossplane's protection.AnnotationKeyDeletionAttempt).
DELETION_ATTEMPT_ANNOTATION = "usage.crossplane.io/deletion-attempt-with-policy"

# Namespaces a control plane has before anything is applied: Kubernetes' own, and the one
# Crossplane is installed into (its providers' managed resources and Usages live there).
BUILTIN_NAMESPACES = frozenset({"default", "kube-system", "kube-public", "kube-node-lease",
                                "crossplane-system"})

# Cluster-scoped kinds of the groups render knows (XRDs add their own scope). Everything else
# is namespaced, which matches v2 providers: their `.m.` API groups are all namespaced.
_CLUSTER_SCOPED: frozenset[tuple[str, str]] = frozenset({
    ("", "Namespace"), ("", "Node"), ("", "PersistentVolume"),
    ("rbac.authorization.k8s.io", "ClusterRole"),
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"),
    ("storage.k8s.io", "StorageClass"), ("storage.k8s.io", "CSIDriver"),
    ("apiextensions.k8s.io", "CustomResourceDefinition"),
    ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration"),
    ("admissionregistration.k8s.io", "MutatingWebhookConfiguration"),
    ("gateway.networking.k8s.io", "GatewayClass"),
    ("resource.k8s.io", "DeviceClass"), ("resource.k8s.io", "ResourceSlice"),
    (PROTECTION_GROUP, "ClusterUsage"),
})
# Crossplane's own groups and v1 (legacy) providers' groups are cluster-scoped throughout.
_CLUSTER_SCOPED_GROUPS = frozenset({"apiextensions.crossplane.io", "pkg.crossplane.io",
                                    "kubernetes.crossplane.io", "helm.crossplane.io"})


def cluster_scoped(api_version: str, kind: str, xrd_scopes: dict[tuple[str, str], str]) -> bool:
    """Whether the API server serves ``kind`` cluster-scoped."""
    group = group_of(api_version)
    scope = xrd_scopes.get((group, kind))
    if scope is not None:
        return scope in ("Cluster", "LegacyCluster")
    if (group, kind) in _CLUSTER_SCOPED or group in _CLUSTER_SCOPED_GROUPS:
        return True
    if kind in ("ClusterProviderConfig", "ClusterProviderConfigUsage"):
        return True
    # v1 providers (`*.upbound.io` without `.m.`) serve cluster-scoped managed resources.
    return group.endswith(".upbound.io") and ".m." not in f".{group}"


def namespace_exists(store: Store, namespace: str, assumed: Iterable[str]) -> bool:
    return namespace in assumed or ("", "Namespace", "", namespace) in store


# -- server-side apply ---------------------------------------------------------------------------

def _leaves(obj: Any, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Field paths a manager owns in an applied object (maps are granular, lists atomic)."""
    if isinstance(obj, dict) and obj:
        for k, v in obj.items():
            yield from _leaves(v, (*prefix, str(k)))
    elif prefix:
        yield prefix


def _has(obj: Any, path: tuple[str, ...]) -> bool:
    for p in path:
        if not isinstance(obj, dict) or p not in obj:
            return False
        obj = obj[p]
    return True


def _remove(obj: Any, path: tuple[str, ...]) -> None:
    """Delete ``path`` and the maps it leaves empty."""
    parents = []
    for p in path[:-1]:
        if not isinstance(obj, dict) or not isinstance(obj.get(p), dict):
            return
        parents.append((obj, p))
        obj = obj[p]
    if isinstance(obj, dict):
        obj.pop(path[-1], None)
    for parent, p in reversed(parents):
        if parent[p] == {}:
            del parent[p]
        else:
            break


def _merge(into: dict[str, Any], intent: dict[str, Any]) -> None:
    for k, v in intent.items():
        if isinstance(v, dict) and v and isinstance(into.get(k), dict):
            _merge(into[k], v)
        else:
            into[k] = copy.deepcopy(v)


def server_side_apply(live: Obj | None, previous: Obj | None, intent: Obj) -> Obj:
    """The object after one manager applies ``intent`` (its last applied intent: ``previous``).

    Fields the manager applied before and no longer sends are removed (it was their owner);
    fields set by anyone else are kept; the manager's fields take its values. Lists are atomic,
    as for most Kubernetes fields (``listType: map`` lists, e.g. containers, merge by key on a
    real API server; our steps own such lists whole, so atomic is what they see). The status
    subresource is never written by an apply of the main resource.
    """
    out = copy.deepcopy(live) if live is not None else {}
    intent = {k: v for k, v in intent.items() if k != "status"}
    if previous is not None:
        for path in _leaves({k: v for k, v in previous.items() if k != "status"}):
            if not _has(intent, path):
                _remove(out, path)
    _merge(out, intent)
    return out


# -- Usages -------------------------------------------------------------------------------------

def of_key(usage_key: Key, usage: Obj) -> Key | None:
    """The resource a Usage protects (``spec.of``), as a store key (None for a selector)."""
    return _ref_key((usage.get("spec") or {}).get("of") or {}, usage_key[2])


def by_uid(store: Store, usage_key: Key) -> str:
    """The uid of a Usage's ``by`` when it exists now, else ""."""
    u = store.get(usage_key) or {}
    spec = u.get("spec") or {}
    by = _ref_key(spec["by"], usage_key[2]) if spec.get("by") else None
    found = _candidates(store, by) if by is not None else []
    return str(((store.get(found[0]) or {}).get("metadata") or {}).get("uid") or "") if found \
        else ""


def _ref_key(ref: dict[str, Any], usage_ns: str) -> Key | None:
    name = (ref.get("resourceRef") or {}).get("name")
    if not name:
        return None  # resourceSelector: resolved by the Usage controller, not modelled
    ns = str((ref.get("resourceRef") or {}).get("namespace") or usage_ns)
    return (group_of(str(ref.get("apiVersion", ""))), str(ref.get("kind", "")), ns, str(name))


def _same(key: Key, ref: Key) -> bool:
    # A namespaced Usage's reference defaults to its namespace; a cluster-scoped target has none.
    return key[:2] == ref[:2] and key[3] == ref[3] and key[2] in (ref[2], "")


def usages_of(store: Store, key: Key) -> list[tuple[Key, Obj]]:
    """The Usages that protect ``key`` now: their ``by`` (if any) still exists."""
    out = []
    for ukey, u in store.items():
        if ukey[0] != PROTECTION_GROUP or ukey[1] not in USAGE_KINDS:
            continue
        spec = u.get("spec") or {}
        of = _ref_key(spec.get("of") or {}, ukey[2])
        if of is None or not _same(key, of):
            continue
        by = _ref_key(spec["by"], ukey[2]) if spec.get("by") else None
        if by is not None and not any(_same(k, by) for k in _candidates(store, by)):
            continue  # the using resource is gone: the Usage controller releases it
        out.append((ukey, u))
    return out


def _candidates(store: Store, ref: Key) -> list[Key]:
    return [k for k in ((ref[0], ref[1], ref[2], ref[3]), (ref[0], ref[1], "", ref[3]))
            if k in store]


def refused_delete(store: Store, key: Key) -> str | None:
    """The webhook's refusal to delete ``key``, or None when it may be deleted."""
    used = usages_of(store, key)
    if not used:
        return None
    ukey, u = used[0]
    by = (u.get("spec") or {}).get("by") or {}
    who = (f" by {by.get('kind')} {(by.get('resourceRef') or {}).get('name')!r}"
           if by else "")
    reason = (u.get("spec") or {}).get("reason")
    return (f'admission webhook "nousages.protection.crossplane.io" denied the request: '
            f"this resource is in use by {len(used)} usage(s), including the {ukey[1]} "
            f"{ukey[3]!r}{who}" + (f": {reason}" if reason else ""))


def usage_held(store: Store, key: Key) -> bool:
    """A Usage with a ``by`` that still exists is held by its finalizer until ``by`` is gone."""
    if key[0] != PROTECTION_GROUP or key[1] not in USAGE_KINDS:
        return False
    u = store.get(key) or {}
    spec = u.get("spec") or {}
    by = _ref_key(spec["by"], key[2]) if spec.get("by") else None
    return by is not None and bool(_candidates(store, by))
