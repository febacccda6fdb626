"""The human summary `modelplane render` prints by default: problems first, then one line per
cluster, deployment, cache and service."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from modelplane.contract.api import GROUP

if TYPE_CHECKING:
    from modelplane.render import Fleet

MODELPLANE = GROUP
# Conditions that may be False on a healthy object (docs/conditions.md, "informational"); the
# Argo CD health check skips the same ones (tests/packaging/test_argocd.py keeps them equal).
INFORMATIONAL = frozenset({"NoReplicas", "ClusterDefault", "Immutable", "NoneHeld"})


def _name(obj: dict[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    return f"{meta['namespace']}/{meta['name']}" if meta.get("namespace") else str(meta["name"])


def _conditions(obj: dict[str, Any]) -> list[dict[str, Any]]:
    return [c for c in (obj.get("status") or {}).get("conditions") or [] if isinstance(c, dict)]


def _cond(obj: dict[str, Any], type_: str) -> str:
    for c in _conditions(obj):
        if c.get("type") == type_:
            return str(c.get("status"))
    return "-"


def is_ready(obj: dict[str, Any]) -> bool:
    return _cond(obj, "Ready") == "True"


def ours(fleet: Fleet) -> list[dict[str, Any]]:
    """Every Modelplane object of the fleet, in store order."""
    return [o for o in fleet.objects() if str(o.get("apiVersion", "")).startswith(MODELPLANE + "/")]


def unmet(obj: dict[str, Any]) -> list[dict[str, Any]]:
    """The conditions that are not True and say something (Ready and Synced excluded)."""
    return [c for c in _conditions(obj) if c.get("status") != "True"
            and c.get("type") not in ("Ready", "Synced") and c.get("reason") not in INFORMATIONAL]


def _describe(c: dict[str, Any]) -> str:
    msg = f": {c['message']}" if c.get("message") else ""
    return f"{c.get('type')}={c.get('status')} ({c.get('reason')}){msg}"


def problems(fleet: Fleet) -> list[str]:
    """Objects that are not Ready (then Ready ones with an unmet condition), each with why."""
    lines: list[str] = []
    objs = ours(fleet)
    for obj in sorted(objs, key=is_ready):  # stable: not Ready first, store order within
        why = unmet(obj)
        synced = next((c for c in _conditions(obj) if c.get("type") == "Synced"
                       and c.get("status") == "False"), None)
        if is_ready(obj) and not why and synced is None:
            continue
        state = "Ready, but" if is_ready(obj) else "not Ready"
        lines.append(f"  {obj['kind']} {_name(obj)}: {state}")
        lines += [f"    {_describe(c)}" for c in ([synced] if synced else []) + why]
        for u in (obj.get("status") or {}).get("unschedulable") or []:
            lines.append(f"    not on {u.get('cluster')}: {u.get('reason')}: {u.get('message')}")
    return lines


def summarize(fleet: Fleet) -> str:
    objs = ours(fleet)
    unready = [o for o in objs if not is_ready(o)]
    lines: list[str] = [f"Fleet converged in {fleet.rounds} rounds: {len(fleet.store)} objects; "
                        f"{len(objs) - len(unready)}/{len(objs)} Modelplane objects Ready."]
    found = problems(fleet)
    if found:
        lines += ["", "Problems:", *found]
    warnings = [e for e in fleet.engine.events if e.severity == "Warning"]
    if warnings:
        lines += ["", "Warning events (latest reconcile of each object):"]
        lines += [f"  {e.object}: {e.reason}: {e.message}" for e in warnings]

    clusters = fleet.of_kind("InferenceCluster")
    if clusters:
        capacity = _capacity(fleet)
        lines += ["", f"Clusters ({len(clusters)}):"]
        for c in clusters:
            pools = []
            for p in (c.get("status") or {}).get("pools") or []:
                free = capacity.get((c["metadata"]["name"], p.get("name")))
                pools.append(f"{p.get('name')} ({p.get('className')}, <= {p.get('nodeCeiling')} "
                             f"nodes{', free ' + free if free else ''})")
            lines.append(f"  {_name(c)}  Ready={_cond(c, 'Ready')}  " + "; ".join(pools))

    deployments = fleet.of_kind("ModelDeployment")
    if deployments:
        lines += ["", f"Deployments ({len(deployments)}):"]
        for d in deployments:
            st = d.get("status") or {}
            where: dict[str, int] = {}
            for p in st.get("placements") or []:
                where[str(p.get("cluster"))] = where.get(str(p.get("cluster")), 0) + 1
            on = ", ".join(f"{c} x{n}" if n > 1 else c for c, n in where.items())
            lines.append(
                f"  {_name(d)}  {st.get('readyReplicas', 0)}/{d.get('spec', {}).get('replicas')} "
                f"ready, {st.get('scheduledReplicas', 0)} scheduled" + (f"  on {on}" if on else ""))

    caches = fleet.of_kind("ModelCache")
    if caches:
        lines += ["", f"Model caches ({len(caches)}):"]
        for c in caches:
            st = c.get("status") or {}
            copies = ", ".join(f"{cl.get('name')} {cl.get('phase')}"
                               for cl in st.get("clusters") or [])
            lines.append(f"  {_name(c)}  {st.get('summary', '(no status)')}"
                         + (f"  ({copies})" if copies else ""))

    services = fleet.of_kind("ModelService")
    if services:
        lines += ["", f"Services ({len(services)}):"]
        for s in services:
            st = s.get("status") or {}
            backends = ", ".join(f"{b.get('endpoint')} {b.get('weight')}"
                                 f"{'' if b.get('role', 'Primary') == 'Primary' else ' fallback'}"
                                 for b in st.get("backends") or [] if b.get("weight"))
            lines.append(f"  {_name(s)}  {st.get('address', '(no address)')}  -> "
                         f"{backends or 'nothing (503)'}")
            for x in st.get("excluded") or []:
                lines.append(f"    excluded {x.get('endpoint')}: {x.get('reason')}")
    return "\n".join(lines) + "\n"


def _capacity(fleet: Fleet) -> dict[tuple[str, str], str]:
    """Free devices per (cluster, pool), from the placement core when it provides a ledger."""
    from modelplane.placement import free_capacity

    result: dict[tuple[str, str], str] = free_capacity(fleet.objects())
    return result
