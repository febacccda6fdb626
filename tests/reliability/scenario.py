"""Edit a converged fleet as a platform team would, and watch every round until it settles.

``Scenario`` renders a fleet one round at a time (the same engine and function server as
``modelplane render``), so a test can check after *every* round that nothing serving was lost
before its replacement served: Ready replicas, cloud node pools under them, cache copies they
mount, and routes.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from modelplane.common.output import to_json
from modelplane.contract.api import GROUP
from modelplane.placement.inputs import readiness_unknown
from modelplane.render import Fleet, _admit, package_dirs
from modelplane.render.engine import Engine, LocalFunctionServer
from modelplane.render.loader import load
from modelplane.render.store import Store

Obj = dict[str, Any]
NODE_POOL_KINDS = {"NodePool", "NodeGroup", "KubernetesClusterNodePool"}


def converged(fleet: Fleet) -> list[Obj]:
    """The fleet's objects as plain JSON data (a deep copy)."""
    objs: list[Obj] = json.loads(to_json(fleet.objects()))
    return objs


def find(objs: list[Obj], kind: str, name: str | None = None) -> Obj:
    return next(o for o in objs if o.get("kind") == kind
                and (name is None or o["metadata"]["name"] == name))


def ready(o: Obj) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (o.get("status") or {}).get("conditions") or [])


def condition(o: Obj, type_: str) -> dict[str, Any]:
    return next((c for c in (o.get("status") or {}).get("conditions") or []
                 if c.get("type") == type_), {})


def replica_pools(o: Obj) -> set[str]:
    return {str(m.get("pool")) for e in (o.get("spec") or {}).get("engines") or []
            for m in e.get("members") or []}


def _remote_kind(o: Obj) -> str:
    if o.get("kind") == "Object":
        manifest = (((o.get("spec") or {}).get("forProvider") or {}).get("manifest") or {})
        return str(manifest.get("kind", ""))
    return str(o.get("kind", ""))


@dataclass
class Snapshot:
    """What serves in one round."""

    ready_replicas: dict[str, set[str]] = field(default_factory=dict)  # deployment -> names
    # (cluster label, pool) -> cloud node pool names present
    node_pools: set[tuple[str, str]] = field(default_factory=set)
    # (cluster, pool) each Ready replica runs on
    replica_homes: dict[str, set[tuple[str, str]]] = field(default_factory=dict)
    cache_pvcs: set[tuple[str, str]] = field(default_factory=set)  # (ns/cache, cluster)
    # Ready replica -> the (ns/cache, cluster) copy it mounts
    mounts: dict[str, tuple[str, str]] = field(default_factory=dict)
    routing: dict[str, tuple[str, str]] = field(default_factory=dict)  # service -> (status, reason)
    targets: dict[str, int] = field(default_factory=dict)  # deployment -> spec.replicas


def snapshot(objs: list[Obj]) -> Snapshot:
    s = Snapshot()
    for o in objs:
        kind, meta = o.get("kind"), o.get("metadata") or {}
        labels = meta.get("labels") or {}
        if kind == "ModelReplica" and (ready(o) or readiness_unknown(o)):
            # Ready, or of unknown readiness (its workloads report no status): serving as far
            # as anyone can tell.
            dep = f"{meta.get('namespace')}/{(o.get('spec') or {}).get('deployment')}"
            s.ready_replicas.setdefault(dep, set()).add(meta["name"])
            cluster = str((o.get("spec") or {}).get("cluster"))
            s.replica_homes[meta["name"]] = {(cluster, p) for p in replica_pools(o)}
            ref = (o.get("spec") or {}).get("modelCacheRef") or {}
            if ref.get("name"):
                s.mounts[meta["name"]] = (f"{meta.get('namespace')}/{ref['name']}", cluster)
        elif kind in NODE_POOL_KINDS:
            cluster = str(labels.get("modelplane.ai/cluster", ""))
            owner = labels.get("crossplane.io/composite", "")
            s.node_pools.add((cluster or owner, str(
                (meta.get("annotations") or {}).get("crossplane.io/composition-resource-name",
                                                   "")).removeprefix("nodepool-")))
        elif kind == "Object" and _remote_kind(o) == "PersistentVolumeClaim" and \
                labels.get("modelplane.ai/cache"):
            s.cache_pvcs.add((f"{meta.get('namespace')}/{labels['modelplane.ai/cache']}",
                              str(labels.get("modelplane.ai/cluster"))))
        elif kind == "ModelDeployment":
            s.targets[f"{meta.get('namespace')}/{meta['name']}"] = int(
                (o.get("spec") or {}).get("replicas", 1))
        elif kind == "ModelService":
            c = condition(o, "Routing")
            s.routing[f"{meta.get('namespace')}/{meta['name']}"] = (
                str(c.get("status")), str(c.get("reason")))
    return s


class Scenario:
    """A fleet store stepped one reconcile round at a time."""

    def __init__(self, objs: list[Obj]) -> None:
        apis, comps = package_dirs()
        base = load([apis, comps], frozenset({GROUP}))
        xrds = base.xrds
        our_kinds = {((x.get("spec") or {}).get("group", ""),
                      ((x.get("spec") or {}).get("names") or {}).get("kind", "")) for x in xrds}
        self.store = Store()
        for obj in _admit([("scenario", copy.deepcopy(o)) for o in objs], our_kinds):
            self.store.put(obj)
        self._fn = LocalFunctionServer()
        self._client = self._fn.client()
        self.engine = Engine(self.store, xrds, base.compositions, self._client)

    def objects(self) -> list[Obj]:
        out: list[Obj] = json.loads(to_json([o for _, o in self.store.items()]))
        return out

    def delete(self, kind: str, name: str, namespace: str = "") -> str:
        """``kubectl delete``: the API server's refusal (a Usage), or "" once it is deleted."""
        key = next(k for k in self.store.all_keys()
                   if k[1] == kind and k[3] == name and k[2] == namespace)
        return self.engine.delete(key)

    def rounds(self, most: int = 30) -> Iterator[list[Obj]]:
        """Run rounds until nothing changes, yielding the objects after each."""
        from modelplane.render import providers

        try:
            for self.engine.round in range(1, most + 1):
                before = {k: self.store.get(k) for k in self.store.all_keys()}
                for key in self.engine.xr_keys():
                    if key in self.store:
                        self.engine.reconcile(key)
                self.engine.collect_orphans()
                providers.simulate(self.store)
                yield self.objects()
                after = {k: self.store.get(k) for k in self.store.all_keys()}
                if before == after:
                    return
            raise AssertionError(f"no fixed point after {most} rounds")
        finally:
            self._client.close()
            self._fn.stop()


Check = Callable[[Snapshot, Snapshot, int], list[str]]


def nothing_serving_lost(first: Snapshot, now: Snapshot, _round: int) -> list[str]:
    """The rules every round must keep, against the converged state before the edit."""
    problems = []
    for dep, names in first.ready_replicas.items():
        floor = min(len(names), now.targets.get(dep, len(names)))
        if len(now.ready_replicas.get(dep, set())) < floor:
            problems.append(f"{dep}: {len(now.ready_replicas.get(dep, set()))} Ready replicas, "
                            f"{len(names)} before")
    for name, homes in now.replica_homes.items():
        for home in homes:
            if home in first.node_pools and home not in now.node_pools:
                problems.append(f"node pool {home} deleted under Ready replica {name}")
    for name, copy_ in now.mounts.items():
        if copy_ in first.cache_pvcs and copy_ not in now.cache_pvcs:
            problems.append(f"cache copy {copy_} deleted under Ready replica {name}")
    for svc, (status, _reason) in first.routing.items():
        if status == "True" and now.routing.get(svc, ("", ""))[0] != "True":
            problems.append(f"ModelService {svc} routing {now.routing.get(svc)}")
    return problems
