"""Reading Kubernetes objects (plain dicts) into the scheduler's model.

Tolerant by design: a malformed field degrades to a conservative value (no devices, not ready)
rather than an exception, because bad input must become a condition, never a crash. Schema
validation at admission already rejects most of it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from modelplane.common import conditions, selectors
from modelplane.contract import context
from modelplane.contract.inferenceclass import class_devices
from modelplane.contract.metadata import ORDINAL_ANNOTATION, SPREAD_ANNOTATION
from modelplane.placement.model import (
    Assignment,
    Cluster,
    DeviceRequest,
    DeviceShape,
    Engine,
    Member,
    PodGroup,
    Pool,
    Replica,
    Request,
    Taint,
    Toleration,
    Usage,
)

_DURATION = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ns|us|ms|s|m|h)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def _d(v: Any) -> dict[str, Any]:
    return v if isinstance(v, dict) else {}


def _l(v: Any) -> list[Any]:
    return v if isinstance(v, list) else []


def _int(v: Any, default: int) -> int:
    try:
        return int(v)
    except (TypeError, ValueError):
        return default


def parse_duration(text: str, default: timedelta = timedelta(minutes=5)) -> timedelta:
    """A Go-style duration (``5m``, ``1h30m``, ``90s``); the default when unparseable."""
    parts = _DURATION.findall(text or "")
    if not parts or "".join(n + u for n, u in parts) != text:
        return default
    return timedelta(seconds=sum(float(n) * _UNITS[u] for n, u in parts))


def parse_time(text: Any) -> datetime | None:
    """An RFC 3339 timestamp, or None."""
    if not isinstance(text, str) or not text:
        return None
    try:
        t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def now_from(ctx: Mapping[str, Any]) -> datetime:
    """The pipeline's notion of now (``modelplane.ai/now``), else the wall clock."""
    return parse_time(ctx.get(context.NOW)) or datetime.now(UTC)


# -- classes and clusters ---------------------------------------------------------------------

def _shape(entry: Mapping[str, Any]) -> DeviceShape:
    return DeviceShape(
        name=str(entry.get("name")), driver=str(entry.get("driver")),
        claim=str(entry.get("claim") or "DRA"),
        device_class_name=str(entry.get("deviceClassName") or entry.get("driver")),
        count=max(_int(entry.get("count"), 1), 0),
        raw=entry, key=json.dumps(entry, sort_keys=True, separators=(",", ":")))


def _cost(v: Any) -> Decimal | None:
    if v is None:
        return None
    try:
        c = Decimal(str(v))
    except InvalidOperation:
        return None
    return c if c.is_finite() else None


PoolCache = dict[tuple[Any, ...], Pool]


def _published_pool(p: Mapping[str, Any], cache: PoolCache | None) -> Pool:
    """One ``status.pools[]`` entry; identical entries of different clusters share one Pool.

    Sharing matters at fleet scale: a thousand clusters usually offer a handful of distinct
    pools, and every per-pool memo downstream (device matching, capacity) then hits by identity.
    """
    devices = p.get("devices")
    head = (str(p.get("name", "")), str(p.get("className", "")), p.get("nodeCeiling"),
            str(p.get("costPerNodeHour")), bool(p.get("ready", True)), p.get("draining") is True)
    # Two-level key: repr() is several times cheaper than canonical JSON and hits whenever the
    # entries were serialised alike (the usual case); a miss falls back to the canonical form,
    # so equal pools written in another key order still share one Pool.
    quick = (*head, "repr", repr(devices))
    got = cache.get(quick) if cache is not None else None
    if got is not None:
        return got
    key = (*head, "json", json.dumps(devices, sort_keys=True, separators=(",", ":"),
                                     default=str))
    got = cache.get(key) if cache is not None else None
    if got is not None:
        if cache is not None:
            cache[quick] = got
        return got
    pool = Pool(name=head[0], class_name=head[1],
                node_ceiling=max(_int(p.get("nodeCeiling"), 0), 0),
                devices=tuple(_shape(d) for d in class_devices({"spec": {"devices": devices}})),
                cost=_cost(p.get("costPerNodeHour")), ready=head[4], draining=head[5])
    if cache is not None:
        cache[key] = cache[quick] = pool
    return pool


def cluster_from(obj: Mapping[str, Any], classes: Mapping[str, Mapping[str, Any]],
                 cache: PoolCache | None = None) -> Cluster:
    """An InferenceCluster as placement sees it: status.pools, else spec.nodePools + classes."""
    meta = _d(obj.get("metadata"))
    spec, status = _d(obj.get("spec")), _d(obj.get("status"))
    pools: list[Pool] = []
    published = [p for p in _l(status.get("pools")) if isinstance(p, dict)]
    if published:
        for p in published:
            pools.append(_published_pool(p, cache))
    else:
        for p in _l(spec.get("nodePools")):
            if not isinstance(p, dict):
                continue
            cname = str(p.get("className", ""))
            cls = classes.get(cname)
            # An autoscaling pool's ceiling is maxNodeCount; a fixed-size pool (no maxNodeCount)
            # is nodeCount nodes, 1 when unset (the API default).
            ceiling = (_int(p["maxNodeCount"], 0) if p.get("maxNodeCount") is not None
                       else _int(p.get("nodeCount", 1), 0))
            if cls is None:
                pools.append(Pool(str(p.get("name", "")), cname, max(ceiling, 0), (),
                                  problem=f"InferenceClass {cname!r} (spec.nodePools"
                                          f"[{p.get('name')}].className) does not exist"))
                continue
            pools.append(Pool(
                name=str(p.get("name", "")), class_name=cname, node_ceiling=max(ceiling, 0),
                devices=tuple(_shape(d) for d in class_devices(cls)),
                cost=_cost(_d(cls.get("spec")).get("costPerNodeHour"))))
    ready = conditions.get(obj, "Ready")
    is_ready = bool(ready and ready.get("status") == "True")
    since = None if is_ready or ready is None else parse_time(ready.get("lastTransitionTime"))
    taints = tuple(Taint(str(t.get("key", "")), str(t.get("value", "")), str(t.get("effect", "")),
                         tolerable=t.get("tolerable") is True)
                   for t in _l(spec.get("taints")) if isinstance(t, dict))
    labels = {str(k): str(v) for k, v in _d(meta.get("labels")).items()}
    if len(pools) > 1:
        pools.sort(key=lambda p: p.name)
    return Cluster(name=str(meta.get("name", "")), labels=labels, taints=taints, ready=is_ready,
                   not_ready_since=since, pools=tuple(pools))


def clusters_from(objs: Iterable[Mapping[str, Any]],
                  classes: Iterable[Mapping[str, Any]]) -> dict[str, Cluster]:
    by_name = {str(_d(c.get("metadata")).get("name")): c for c in classes}
    out: dict[str, Cluster] = {}
    cache: PoolCache = {}
    for o in objs:
        c = cluster_from(o, by_name, cache)
        if c.name:
            out[c.name] = c
    return out


# -- deployments and replicas -----------------------------------------------------------------

def request_from(md: Mapping[str, Any], now: datetime | None = None,
                 footprint: frozenset[str] | None = None) -> Request:
    """A ModelDeployment as a placement request."""
    meta, spec = _d(md.get("metadata")), _d(md.get("spec"))
    engines: list[Engine] = []
    for e in _l(spec.get("engines")):
        if not isinstance(e, dict):
            continue
        members: list[Member] = []
        for m in _l(e.get("members")):
            if not isinstance(m, dict):
                continue
            role = str(m.get("role", "Standalone"))
            pods = max(_int(_d(m.get("worker")).get("nodes"), 1), 1) if role == "Worker" else 1
            devs = tuple(
                DeviceRequest(str(d.get("name", "")), max(_int(d.get("count"), 1), 1),
                              # a selector without an expression (v0.1 allows it) adds none
                              tuple(str(s["cel"]) for s in _l(d.get("selectors"))
                                    if isinstance(s, dict) and s.get("cel")))
                for d in _l(_d(m.get("nodeSelector")).get("devices")) if isinstance(d, dict))
            members.append(Member(role, pods, devs))
        engines.append(Engine(str(e.get("name", "")), max(_int(e.get("copies"), 1), 1),
                              tuple(members)))
    placement = _d(spec.get("placement"))
    tolerations = tuple(
        Toleration(str(t.get("key", "")), str(t.get("operator", "Equal")),
                   str(t.get("value", "")), str(t.get("effect", "")))
        for t in _l(spec.get("tolerations")) if isinstance(t, dict))
    selector = spec.get("clusterSelector")
    return Request(
        namespace=str(meta.get("namespace") or ""), name=str(meta.get("name") or ""),
        replicas=max(_int(spec.get("replicas", 1), 1), 0), engines=tuple(engines),
        cluster_selector=selector if isinstance(selector, dict) else None,
        tolerations=tolerations, spread_key=str(placement.get("spreadTopologyKey") or ""),
        failover_window=parse_duration(str(placement.get("failoverWindow") or "5m")),
        footprint=footprint, now=now)


def _member_pods(m: Mapping[str, Any], copies: int) -> PodGroup:
    vec: dict[str, int] = {}
    for d in _l(m.get("devices")):
        if isinstance(d, dict) and d.get("name"):
            vec[str(d["name"])] = vec.get(str(d["name"]), 0) + max(_int(d.get("count"), 1), 0)
    pods = max(_int(_d(m.get("worker")).get("nodes"), 1), 1) if m.get("role") == "Worker" else 1
    return PodGroup(str(m.get("pool", "")), tuple(sorted(vec.items())), pods * copies)


def usage_from(obj: Mapping[str, Any]) -> Usage:
    """A ModelReplica's device consumption for the ledger."""
    meta, spec = _d(obj.get("metadata")), _d(obj.get("spec"))
    pods: list[PodGroup] = []
    for e in _l(spec.get("engines")):
        if not isinstance(e, dict):
            continue
        copies = max(_int(e.get("copies"), 1), 1)
        for m in _l(e.get("members")):
            if isinstance(m, dict):
                pods.append(_member_pods(m, copies))
    return Usage(str(meta.get("namespace") or ""), str(meta.get("name") or ""),
                 str(spec.get("cluster", "")), tuple(pods))


def readiness_unknown(obj: Mapping[str, Any] | None) -> bool:
    """Whether a ModelReplica's readiness is unknown rather than false.

    Unknown: no Ready condition, Ready=Unknown, or Ready=False while its workloads or
    exposure report Unknown (the composed objects exist but report no status, e.g. after a
    restore) and neither reports False. Unknown is not false: such a replica may be serving.
    """
    if not obj:
        return False
    ready = conditions.get(obj, "Ready")
    if ready is None or ready.get("status") == "Unknown":
        return True
    if ready.get("status") == "True":
        return False
    parts = [(conditions.get(obj, t) or {}).get("status")
             for t in ("WorkloadsReady", "ExposureReady")]
    return "Unknown" in parts and "False" not in parts


def replicas_from(objs: Iterable[Mapping[str, Any]]) -> list[Replica]:
    """This deployment's own ModelReplicas, each in its slot (ordinal)."""
    out: list[Replica] = []
    loose: list[Replica] = []
    for obj in objs:
        meta, spec = _d(obj.get("metadata")), _d(obj.get("spec"))
        assignments = tuple(
            Assignment(str(e.get("name", "")), str(m.get("role", "")), str(m.get("pool", "")))
            for e in _l(spec.get("engines")) if isinstance(e, dict)
            for m in _l(e.get("members")) if isinstance(m, dict))
        annotations = _d(meta.get("annotations"))
        ordinal = _int(annotations.get(ORDINAL_ANNOTATION), -1)
        workloads = conditions.get(obj, "WorkloadsReady") or {}
        not_admitted = (str(workloads.get("message") or "pods cannot be scheduled")
                        if workloads.get("status") == "False"
                        and workloads.get("reason") == context.UNSCHEDULABLE_REASON else "")
        r = Replica(str(meta.get("name", "")), ordinal, str(spec.get("cluster", "")),
                    assignments, ready=conditions.is_true(obj, "Ready"),
                    ready_unknown=readiness_unknown(obj),
                    spread=str(annotations.get(SPREAD_ANNOTATION) or ""),
                    not_admitted=not_admitted)
        (out if ordinal >= 0 else loose).append(r)
    # Replicas without a readable ordinal take the lowest free ones, in name order.
    used = {r.ordinal for r in out}
    nxt = 0
    for r in sorted(loose, key=lambda r: r.name):
        while nxt in used:
            nxt += 1
        r.ordinal = nxt
        used.add(nxt)
    return out + loose


def footprint_from(cache: Mapping[str, Any], clusters: Iterable[Cluster]) -> frozenset[str]:
    """Clusters a ModelCache stages weights on: its status, else its clusterSelector."""
    published = [c for c in _l(_d(cache.get("status")).get("clusters")) if isinstance(c, dict)]
    if published:
        return frozenset(str(c.get("name")) for c in published if c.get("phase") != "Failed")
    sel = _d(cache.get("spec")).get("clusterSelector")
    return frozenset(c.name for c in clusters
                     if selectors.matches(sel if isinstance(sel, dict) else None, c.labels))
