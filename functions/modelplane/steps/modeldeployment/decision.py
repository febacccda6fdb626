"""The placement decision as it crosses the pipeline context, from `place` to `compose`.

One typed record (:class:`PlacementRecord`) and one codec: `place` builds it from the
scheduler's :class:`~modelplane.placement.model.Decision` and :func:`encode`\\ s it under
:data:`modelplane.contract.context.PLACEMENT`; `compose-deployment` :func:`decode`\\ s it. The
context is JSON (a protobuf Struct), so nothing but this module reads or writes its keys.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from modelplane.contract.boundary import copied_labels
from modelplane.placement.model import (
    Blocked,
    Cluster,
    Decision,
    Eviction,
    ResolvedDevice,
    Unschedulable,
)


@dataclass(frozen=True)
class PlacedMember:
    """One engine member of a replica: its pool and the devices each of its pods claims."""

    engine: str
    member: str  # role
    pool: str
    devices: tuple[ResolvedDevice, ...] = ()


@dataclass(frozen=True)
class PlacedReplica:
    """A replica after this decision: where it runs, and whether it is being replaced."""

    name: str
    ordinal: int
    cluster: str
    new: bool = False
    members: tuple[PlacedMember, ...] = ()
    # Why it no longer fits where it runs (kept until its replacement is Ready).
    invalid: str | None = None
    # Kept in place although its cluster has not admitted it: the cluster's message.
    waiting: str = ""


@dataclass(frozen=True)
class PlacementRecord:
    """Everything compose-deployment needs of a placement decision."""

    desired: int
    scheduled: int = 0
    shortfall: int = 0
    replicas: tuple[PlacedReplica, ...] = ()
    removed: tuple[str, ...] = ()
    # Per cluster hosting a replica, the cluster labels its ModelEndpoints copy.
    cluster_labels: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    evicted: tuple[Eviction, ...] = ()
    unschedulable: tuple[Unschedulable, ...] = ()
    unschedulable_more: Mapping[str, int] = field(default_factory=dict)
    spread: str = ""
    blocked: Blocked | None = None


def record(decision: Decision, clusters: Mapping[str, Cluster]) -> PlacementRecord:
    """The record of a scheduler decision; ``clusters`` supplies the labels endpoints copy."""
    labels: dict[str, dict[str, str]] = {}
    for r in decision.replicas:
        c = clusters.get(r.cluster)
        if c is not None:
            labels[r.cluster] = copied_labels(c.labels)
    return PlacementRecord(
        desired=decision.desired, scheduled=decision.scheduled, shortfall=decision.shortfall,
        replicas=tuple(PlacedReplica(
            name=r.name, ordinal=r.ordinal, cluster=r.cluster, new=r.new,
            members=tuple(PlacedMember(a.engine, a.member, a.pool, a.devices)
                          for a in r.assignments),
            invalid=r.invalid, waiting=r.waiting) for r in decision.replicas),
        removed=tuple(decision.removed), cluster_labels=labels,
        evicted=tuple(decision.evicted), unschedulable=tuple(decision.unschedulable),
        unschedulable_more=dict(sorted(decision.unschedulable_more.items())),
        spread=decision.spread, blocked=decision.blocked)


def device_spec(d: ResolvedDevice) -> dict[str, Any]:
    """A resolved device as ModelReplica.spec carries it (read back by compose-replica)."""
    out: dict[str, Any] = {"name": d.name, "deviceClassName": d.device_class_name,
                           "count": d.count}
    if d.selectors:
        out["selectors"] = [{"cel": s} for s in d.selectors]
    return out


def encode(rec: PlacementRecord) -> dict[str, Any]:
    """The record as plain JSON for the pipeline context."""
    reps = []
    for r in rec.replicas:
        reps.append({
            "name": r.name, "ordinal": r.ordinal, "cluster": r.cluster, "new": r.new,
            **({"invalid": r.invalid} if r.invalid else {}),
            **({"waiting": r.waiting} if r.waiting else {}),
            "members": [{"engine": m.engine, "member": m.member, "pool": m.pool,
                         "devices": [device_spec(d) for d in m.devices]} for m in r.members],
        })
    out: dict[str, Any] = {
        "desired": rec.desired, "scheduled": rec.scheduled, "shortfall": rec.shortfall,
        "replicas": reps, "removed": list(rec.removed),
        "clusterLabels": {c: dict(v) for c, v in rec.cluster_labels.items()},
        "evicted": [e._asdict() for e in rec.evicted],
        "unschedulable": [{"cluster": u.cluster, "reason": u.reason, "message": u.message}
                          for u in rec.unschedulable],
        "unschedulableMore": dict(rec.unschedulable_more),
    }
    if rec.spread:
        out["spread"] = rec.spread
    if rec.blocked:
        out["blocked"] = rec.blocked._asdict()
    return out


class DecodeError(ValueError):
    """The context value is not a placement record (a bug or a foreign writer)."""


def _d(v: Any, what: str) -> dict[str, Any]:
    if not isinstance(v, dict):
        raise DecodeError(f"{what}: expected an object, got {type(v).__name__}")
    return v


def _l(v: Any, what: str) -> list[Any]:
    if v is None:
        return []
    if not isinstance(v, list):
        raise DecodeError(f"{what}: expected a list, got {type(v).__name__}")
    return v


def _int(v: Any, what: str) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or int(v) != v:
        raise DecodeError(f"{what}: expected an integer, got {v!r}")
    return int(v)


def _device(v: Any) -> ResolvedDevice:
    d = _d(v, "device")
    return ResolvedDevice(
        name=str(d.get("name", "")), device_class_name=str(d.get("deviceClassName", "")),
        count=_int(d.get("count", 1), "device.count"),
        selectors=tuple(str(_d(s, "selector").get("cel", ""))
                        for s in _l(d.get("selectors"), "device.selectors")))


def decode(value: Any) -> PlacementRecord:
    """The record written by :func:`encode`; :class:`DecodeError` when it is not one.

    Protobuf Structs carry every number as a double, so integers are read back tolerantly.
    """
    v = _d(value, "placement")
    replicas = []
    for raw in _l(v.get("replicas"), "replicas"):
        r = _d(raw, "replica")
        replicas.append(PlacedReplica(
            name=str(r.get("name", "")), ordinal=_int(r.get("ordinal", 0), "ordinal"),
            cluster=str(r.get("cluster", "")), new=bool(r.get("new", False)),
            members=tuple(PlacedMember(
                engine=str(m.get("engine", "")), member=str(m.get("member", "")),
                pool=str(m.get("pool", "")),
                devices=tuple(_device(x) for x in _l(m.get("devices"), "devices")))
                for m in (_d(x, "member") for x in _l(r.get("members"), "members"))),
            invalid=str(r["invalid"]) if r.get("invalid") else None,
            waiting=str(r.get("waiting") or "")))
    blocked = v.get("blocked")
    return PlacementRecord(
        desired=_int(v.get("desired", 0), "desired"),
        scheduled=_int(v.get("scheduled", 0), "scheduled"),
        shortfall=_int(v.get("shortfall", 0), "shortfall"),
        replicas=tuple(replicas),
        removed=tuple(str(x) for x in _l(v.get("removed"), "removed")),
        cluster_labels={str(c): {str(k): str(x) for k, x in _d(lbl, "clusterLabels").items()}
                        for c, lbl in _d(v.get("clusterLabels") or {}, "clusterLabels").items()},
        evicted=tuple(Eviction(str(e.get("name", "")), str(e.get("cluster", "")),
                               str(e.get("message", "")))
                      for e in (_d(x, "evicted") for x in _l(v.get("evicted"), "evicted"))),
        unschedulable=tuple(
            Unschedulable(str(u.get("cluster", "")), str(u.get("reason", "")),
                          str(u.get("message", "")))
            for u in (_d(x, "unschedulable") for x in _l(v.get("unschedulable"),
                                                          "unschedulable"))),
        unschedulable_more={str(k): _int(n, "unschedulableMore")
                            for k, n in _d(v.get("unschedulableMore") or {},
                                           "unschedulableMore").items()},
        spread=str(v.get("spread") or ""),
        blocked=(Blocked(str(_d(blocked, "blocked").get("reason", "")),
                         str(blocked.get("message", ""))) if blocked else None))
