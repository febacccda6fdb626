"""Views of a rendered fleet: the tree of an XR and what it composes (what `crossplane resource
trace` shows on a real control plane), and one self-contained HTML page of the fleet — where
each replica runs, what capacity is left, where traffic goes, and what is not True."""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from modelplane.render.summary import INFORMATIONAL, is_ready, ours

if TYPE_CHECKING:
    from modelplane.render import Fleet

Obj = dict[str, Any]


def _cond(obj: Obj, type_: str) -> Obj | None:
    for c in (obj.get("status") or {}).get("conditions") or []:
        if isinstance(c, dict) and c.get("type") == type_:
            return c
    return None


def _label(obj: Obj) -> str:
    meta = obj.get("metadata") or {}
    kind = str(obj.get("kind", "?"))
    if kind == "Object":  # provider-kubernetes: say what it wraps
        manifest = ((obj.get("spec") or {}).get("forProvider") or {}).get("manifest") or {}
        inner = f" [{manifest.get('kind')} {(manifest.get('metadata') or {}).get('name')}]"
        return f"{kind}/{meta.get('name')}{inner}"
    return f"{kind}/{meta.get('name')}"


def _status(obj: Obj) -> tuple[str, str, str]:
    """(Synced, Ready, why) as a trace shows them; why names the first unmet condition."""
    synced, ready = _cond(obj, "Synced"), _cond(obj, "Ready")
    why = ""
    unmet = [c for c in (obj.get("status") or {}).get("conditions") or []
             if isinstance(c, dict) and c.get("status") != "True"
             and c.get("reason") not in INFORMATIONAL]
    pick = next((c for c in unmet if c.get("type") not in ("Ready", "Synced")), None) or (
        unmet[0] if unmet else None)
    if pick is not None:
        msg = f": {pick['message']}" if pick.get("message") else ""
        why = f"{pick.get('type')}={pick.get('status')} ({pick.get('reason')}){msg}"
    elif ready is not None:
        why = str(ready.get("reason") or "")
    return (str(synced.get("status")) if synced else "-",
            str(ready.get("status")) if ready else "-", why)


@dataclass
class Node:
    obj: Obj
    children: list[Node]


def _children(fleet: Fleet, obj: Obj) -> list[Obj]:
    uid = (obj.get("metadata") or {}).get("uid")
    if not uid:
        return []
    kids = fleet.store.owned_by(str(uid))
    return sorted(kids, key=lambda o: (str(o.get("kind")), str((o.get("metadata") or {})
                                                                   .get("name"))))


def build(fleet: Fleet, obj: Obj, seen: set[str] | None = None) -> Node:
    seen = set() if seen is None else seen
    uid = str((obj.get("metadata") or {}).get("uid", id(obj)))
    seen.add(uid)
    kids = [build(fleet, k, seen) for k in _children(fleet, obj)
            if str((k.get("metadata") or {}).get("uid", "")) not in seen]
    return Node(obj, kids)


def roots(fleet: Fleet) -> list[Obj]:
    """Modelplane objects nothing controls: what users (or a platform team) created."""
    return [o for o in ours(fleet) if not any(
        r.get("controller") for r in (o.get("metadata") or {}).get("ownerReferences") or [])]


def tree(fleet: Fleet, start: list[Obj] | None = None, width: int = 200) -> str:
    """`crossplane resource trace`-like text: NAME, SYNCED, READY, STATUS, for each tree."""
    rows: list[tuple[str, str, str, str]] = []

    def walk(node: Node, prefix: str, last: bool, top: bool) -> None:
        branch = "" if top else ("└─ " if last else "├─ ")
        meta = node.obj.get("metadata") or {}
        ns = f" ({meta['namespace']})" if top and meta.get("namespace") else ""
        synced, ready, why = _status(node.obj)
        rows.append((prefix + branch + _label(node.obj) + ns, synced, ready, why))
        child_prefix = prefix + ("" if top else ("   " if last else "│  "))
        for i, child in enumerate(node.children):
            walk(child, child_prefix, i == len(node.children) - 1, False)

    for obj in start if start is not None else roots(fleet):
        walk(build(fleet, obj), "", True, True)
    name_w = max([len("NAME")] + [len(r[0]) for r in rows])
    lines = [f"{'NAME':<{name_w}}  SYNCED  READY  STATUS"]
    for name, synced, ready, why in rows:
        line = f"{name:<{name_w}}  {synced:<6}  {ready:<5}  {why}"
        lines.append(line if len(line) <= width else line[:width - 3] + "...")
    return "\n".join(lines) + "\n"


def find(fleet: Fleet, resource: str, namespace: str | None) -> list[Obj]:
    """Objects matching ``KIND[/NAME]`` (kind case-insensitive, plural or singular)."""
    kind, _, name = resource.partition("/")
    want = kind.lower().rstrip("s")
    out = []
    for obj in ours(fleet):
        meta = obj.get("metadata") or {}
        if str(obj.get("kind", "")).lower().rstrip("s") != want:
            continue
        if name and meta.get("name") != name:
            continue
        if namespace is not None and meta.get("namespace") not in (namespace, None):
            continue
        out.append(obj)
    return out


# -- HTML ---------------------------------------------------------------------------------------

_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#1b1f24;background:#fff}
h1{font-size:20px;margin:0 0 4px} h2{font-size:16px;margin:24px 0 8px;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:4px 0 12px;width:100%} th,td{border:1px solid #ddd;
padding:4px 8px;text-align:left;vertical-align:top} th{background:#f4f6f8}
.ok{color:#1a7f37;font-weight:600} .bad{color:#cf222e;font-weight:600}
.bar{display:inline-block;height:10px;background:#eee;width:160px;vertical-align:middle}
.bar>span{display:block;height:10px;background:#0969da}
.muted{color:#57606a} code{font-size:12px}
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _ready_cell(obj: Obj) -> str:
    ok = is_ready(obj)
    return f'<td class="{"ok" if ok else "bad"}" data-ready="{str(ok).lower()}">' \
           f'{"Ready" if ok else "not Ready"}</td>'


def capacity(fleet: Fleet) -> dict[tuple[str, str], dict[str, tuple[int, int]]]:
    """(cluster, pool) -> device -> (free, total), from the same ledger placement uses."""
    from modelplane.contract.api import INFERENCE_CLASS, INFERENCE_CLUSTER, MODEL_REPLICA
    from modelplane.placement.inputs import clusters_from, usage_from
    from modelplane.placement.ledger import Ledger
    from modelplane.placement.model import Fleet as PlacementFleet

    objs = ours(fleet)

    def of(kind: str) -> list[Obj]:
        return [o for o in objs if o.get("kind") == kind]

    clusters = clusters_from(of(INFERENCE_CLUSTER), of(INFERENCE_CLASS))
    ledger = Ledger(PlacementFleet(clusters, [usage_from(o) for o in of(MODEL_REPLICA)]))
    out: dict[tuple[str, str], dict[str, tuple[int, int]]] = {}
    for cname in sorted(clusters):
        for pool in clusters[cname].pools:
            led = ledger.pool(cname, pool.name)
            if led is None or pool.problem:
                continue
            out[(cname, pool.name)] = {dev: (int(free), int(total))
                                       for dev, (free, total, _) in sorted(led.free().items())}
    return out


def page(fleet: Fleet, title: str = "Modelplane fleet") -> str:
    """One self-contained HTML page (no scripts, no external resources)."""
    objs = ours(fleet)
    unready = [o for o in objs if not is_ready(o)]
    cap = capacity(fleet)
    parts: list[str] = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{_e(title)}</h1>",
        f'<p class="muted" id="totals" data-objects="{len(objs)}" data-unready="{len(unready)}">'
        f"converged in {fleet.rounds} rounds; {len(objs) - len(unready)}/{len(objs)} Modelplane "
        "objects Ready</p>",
    ]

    # Clusters and pools: capacity used and free.
    parts.append('<h2>Clusters and pools</h2><table id="pools"><tr><th>cluster</th><th>ready</th>'
                 "<th>pool</th><th>class</th><th>nodes (max)</th><th>device</th><th>used</th>"
                 "<th>free</th><th>total</th><th></th></tr>")
    for c in fleet.of_kind("InferenceCluster"):
        cname = c["metadata"]["name"]
        for p in (c.get("status") or {}).get("pools") or [{}]:
            devs = cap.get((cname, str(p.get("name")))) or {"-": (0, 0)}
            for dev, (free, total) in devs.items():
                used = total - free
                pct = 0 if not total else round(100 * used / total)
                parts.append(
                    f'<tr class="pool" data-cluster="{_e(cname)}" data-pool="{_e(p.get("name"))}" '
                    f'data-used="{used}" data-free="{free}" data-total="{total}">'
                    f"<td>{_e(cname)}</td>{_ready_cell(c)}<td>{_e(p.get('name', '-'))}</td>"
                    f"<td>{_e(p.get('className', '-'))}</td><td>{_e(p.get('nodeCeiling', '-'))}"
                    f"</td><td>{_e(dev)}</td><td>{used}</td><td>{free}</td><td>{total}</td>"
                    f'<td><span class="bar"><span style="width:{pct}%"></span></span></td></tr>')
    parts.append("</table>")

    # Where each replica runs.
    parts.append('<h2>Replicas</h2><table id="replicas"><tr><th>deployment</th><th>replica</th>'
                 "<th>cluster</th><th>pools</th><th>ready</th></tr>")
    for d in fleet.of_kind("ModelDeployment"):
        meta = d["metadata"]
        st = d.get("status") or {}
        want = (d.get("spec") or {}).get("replicas")
        ready_replicas = st.get("readyReplicas", 0)
        parts.append(f'<tr class="deployment" data-name="{_e(meta["name"])}" '
                     f'data-desired="{_e(want)}" data-ready-replicas="{ready_replicas}">'
                     f'<td colspan="4"><b>{_e(meta.get("namespace"))}/{_e(meta["name"])}</b> '
                     f'{st.get("readyReplicas", 0)}/{_e(want)} ready, '
                     f'{st.get("scheduledReplicas", 0)} scheduled</td>{_ready_cell(d)}</tr>')
        for p in st.get("placements") or []:
            rep = fleet.get("ModelReplica", str(p.get("replica")), str(meta.get("namespace", "")))
            pools = ", ".join(f"{x.get('engine')}/{x.get('member')} → {x.get('pool')}"
                              for x in p.get("pools") or [])
            ready = _ready_cell(rep) if rep is not None else '<td class="bad">missing</td>'
            parts.append(f'<tr class="replica" data-deployment="{_e(meta["name"])}" '
                         f'data-cluster="{_e(p.get("cluster"))}"><td></td>'
                         f"<td>{_e(p.get('replica'))}</td><td>{_e(p.get('cluster'))}</td>"
                         f"<td>{_e(pools)}</td>{ready}</tr>")
    parts.append("</table>")

    # Each service's backends and weights.
    parts.append('<h2>Services</h2><table id="services"><tr><th>service</th><th>address</th>'
                 "<th>backend</th><th>role</th><th>weight</th><th>ready</th></tr>")
    for s in fleet.of_kind("ModelService"):
        meta = s["metadata"]
        st = s.get("status") or {}
        backends = st.get("backends") or []
        total = sum(int(b.get("weight") or 0) for b in backends)
        parts.append(f'<tr class="service" data-name="{_e(meta["name"])}" '
                     f'data-weight-total="{total}"><td><b>{_e(meta.get("namespace"))}/'
                     f'{_e(meta["name"])}</b></td><td><code>{_e(st.get("address", "-"))}</code>'
                     f'</td><td colspan="3"></td>{_ready_cell(s)}</tr>')
        for b in backends:
            parts.append(f'<tr class="backend" data-service="{_e(meta["name"])}" '
                         f'data-weight="{int(b.get("weight") or 0)}"><td></td><td></td>'
                         f"<td>{_e(b.get('endpoint'))}</td><td>{_e(b.get('role', 'Primary'))}</td>"
                         f"<td>{_e(b.get('weight'))}</td><td>{_e(b.get('ready'))}</td></tr>")
        for x in st.get("excluded") or []:
            parts.append(f'<tr class="excluded"><td></td><td></td><td>{_e(x.get("endpoint"))}'
                         f'</td><td colspan="3" class="muted">excluded: {_e(x.get("reason"))}'
                         "</td></tr>")
    parts.append("</table>")

    # Every other Modelplane object, so each one that is not Ready has a row saying so.
    shown_kinds = {"InferenceCluster", "ModelDeployment", "ModelReplica", "ModelService"}
    others = [o for o in objs if o.get("kind") not in shown_kinds]
    parts.append('<h2>Other objects</h2><table id="objects"><tr><th>kind</th><th>object</th>'
                 "<th>ready</th></tr>")
    for obj in others:
        meta = obj.get("metadata") or {}
        name = f"{meta['namespace']}/{meta['name']}" if meta.get("namespace") else meta.get("name")
        parts.append(f'<tr class="object" data-kind="{_e(obj.get("kind"))}">'
                     f"<td>{_e(obj.get('kind'))}</td><td>{_e(name)}</td>{_ready_cell(obj)}</tr>")
    parts.append("</table>")

    # Conditions that are not True.
    parts.append('<h2>Conditions that are not True</h2><table id="conditions"><tr><th>object</th>'
                 "<th>condition</th><th>reason</th><th>message</th></tr>")
    shown = 0
    for obj in objs:
        meta = obj.get("metadata") or {}
        name = f"{meta['namespace']}/{meta['name']}" if meta.get("namespace") else meta.get("name")
        for c in (obj.get("status") or {}).get("conditions") or []:
            if c.get("status") == "True" or c.get("reason") in INFORMATIONAL:
                continue
            parts.append(f'<tr class="condition"><td>{_e(obj.get("kind"))} {_e(name)}</td>'
                         f"<td>{_e(c.get('type'))}={_e(c.get('status'))}</td>"
                         f"<td>{_e(c.get('reason'))}</td><td>{_e(c.get('message', ''))}</td></tr>")
            shown += 1
    if not shown:
        parts.append('<tr><td colspan="4" class="muted">none: everything is Ready</td></tr>')
    parts.append("</table></body></html>")
    return "\n".join(parts) + "\n"
