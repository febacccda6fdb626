"""The human summary `modelplane render` prints by default."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from modelplane.contract.api import GROUP

if TYPE_CHECKING:
    from modelplane.render import Fleet

MODELPLANE = GROUP


def _name(obj: dict[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    return f"{meta['namespace']}/{meta['name']}" if meta.get("namespace") else str(meta["name"])


def _cond(obj: dict[str, Any], type_: str) -> str:
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c.get("type") == type_:
            return str(c.get("status"))
    return "-"


def summarize(fleet: Fleet) -> str:
    lines: list[str] = [f"Fleet converged in {fleet.rounds} rounds: {len(fleet.store)} objects."]

    clusters = fleet.of_kind("InferenceCluster")
    if clusters:
        lines += ["", "Clusters:"]
        capacity = _capacity(fleet)
        for c in clusters:
            lines.append(f"  {_name(c)}  Ready={_cond(c, 'Ready')}")
            for p in (c.get("status") or {}).get("pools") or []:
                free = capacity.get((c["metadata"]["name"], p.get("name")))
                left = f", free {free}" if free else ""
                lines.append(f"    pool {p.get('name')}: class {p.get('className')}, "
                             f"up to {p.get('nodeCeiling')} nodes{left}")

    deployments = fleet.of_kind("ModelDeployment")
    if deployments:
        lines += ["", "Deployments:"]
        for d in deployments:
            st = d.get("status") or {}
            lines.append(
                f"  {_name(d)}  replicas {d.get('spec', {}).get('replicas')} desired, "
                f"{st.get('scheduledReplicas', 0)} scheduled, {st.get('readyReplicas', 0)} ready")
            for p in st.get("placements") or []:
                pools = ", ".join(f"{x.get('engine')}/{x.get('member')}->{x.get('pool')}"
                                  for x in p.get("pools") or [])
                lines.append(f"    {p.get('replica')} on {p.get('cluster')} ({pools})")
            for u in st.get("unschedulable") or []:
                lines.append(f"    not on {u.get('cluster')}: {u.get('reason')}: "
                             f"{u.get('message')}")

    caches = fleet.of_kind("ModelCache")
    if caches:
        lines += ["", "Model caches:"]
        for c in caches:
            st = c.get("status") or {}
            lines.append(f"  {_name(c)}  {st.get('summary', '(no status)')}")
            for cl in st.get("clusters") or []:
                msg = f": {cl['message']}" if cl.get("message") else ""
                lines.append(f"    {cl.get('name')}: {cl.get('phase')}{msg}")

    services = fleet.of_kind("ModelService")
    if services:
        lines += ["", "Services:"]
        for s in services:
            st = s.get("status") or {}
            lines.append(f"  {_name(s)}  {st.get('address', '(no address)')}")
            for b in st.get("backends") or []:
                lines.append(f"    -> {b.get('endpoint')} weight {b.get('weight')} "
                             f"({b.get('role', 'Primary')}, ready={b.get('ready')})")
            for x in st.get("excluded") or []:
                lines.append(f"    excluded {x.get('endpoint')}: {x.get('reason')}")

    problems: list[str] = []
    for _, obj in fleet.store.items():
        if not str(obj.get("apiVersion", "")).startswith(MODELPLANE + "/"):
            continue
        for c in (obj.get("status") or {}).get("conditions") or []:
            if c.get("status") != "True":
                msg = f": {c['message']}" if c.get("message") else ""
                problems.append(f"  {obj['kind']} {_name(obj)}: {c.get('type')}="
                                f"{c.get('status')} ({c.get('reason')}){msg}")
    if problems:
        lines += ["", "Conditions that are not True:", *problems]
    warnings = [e for e in fleet.engine.events if e.severity == "Warning"]
    if warnings:
        lines += ["", "Warning events (latest reconcile of each object):"]
        lines += [f"  {e.object}: {e.reason}: {e.message}" for e in warnings]
    return "\n".join(lines) + "\n"


def _capacity(fleet: Fleet) -> dict[tuple[str, str], str]:
    """Free devices per (cluster, pool), from the placement core when it provides a ledger."""
    from modelplane.placement import free_capacity

    result: dict[tuple[str, str], str] = free_capacity(fleet.objects())
    return result
