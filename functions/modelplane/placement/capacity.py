"""The capacity summary: what placement needs of one InferenceCluster, in a few hundred bytes.

Crossplane ships every required object in full on every call of the requirements loop, so a
placing reconcile that required every InferenceCluster paid ~4-5 KiB per cluster (spec,
conditions, the device shapes of every pool) and the conversion of all of it from protobuf.
Placement reads only a handful of facts per cluster, so each InferenceCluster composes them
into one small object (a ConfigMap, see ``contract.capacity``) that `place` requires by label:

    {"v": 1, "cluster": NAME, "labels": {...}, "taints": [...], "ready": BOOL,
     "notReadySince": RFC3339 | absent,
     "pools": [{"name", "className", "nodeCeiling", "costPerNodeHour", "ready", "draining",
                "devices": DIGEST, "allocated": [...compact ledger entries...]}]}

``devices`` is a digest of the devices the cluster resolved from its pool's InferenceClass
(what ``status.pools[].devices`` carries); placement resolves the same class, which it reads
anyway, and uses its devices only when the digest agrees. A pool whose class changed since the
cluster published (or is missing) takes nothing new until the cluster publishes again: unknown
is not "fits". The summary is one JSON string, so decoding it is one C call instead of a
protobuf walk. The writer (:func:`summary`) and the reader (:func:`read`) live together so the
format has one definition.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from modelplane.common.fields import mapping as _d
from modelplane.common.fields import sequence as _l
from modelplane.contract.inferenceclass import resolve_devices
from modelplane.placement.compact_ledger import ledger_usages
from modelplane.placement.inputs import PoolCache, _cost, _shape, parse_time
from modelplane.placement.model import Cluster, Pool, Taint, Usage

VERSION = 1


def devices_digest(devices: Iterable[Mapping[str, Any]]) -> str:
    """A short, stable digest of resolved device entries (canonical JSON)."""
    text = json.dumps(list(devices), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


def summary(name: str, labels: Mapping[str, str], taints: Iterable[Mapping[str, Any]],
            ready: bool, not_ready_since: str | None,
            pools: Iterable[Mapping[str, Any]], declares_pools: bool = False) -> str:
    """The summary of a cluster from its published ``status.pools`` entries (JSON text).

    A cluster that declares node pools but publishes none yet is marked ``unpublished``:
    placement then reads such a fleet the way it reads one without summaries (the pools from
    spec and classes, the ledger from every ModelReplica), as before summaries existed."""
    out_pools: list[dict[str, Any]] = []
    for p in pools:
        entry: dict[str, Any] = {
            "name": str(p.get("name", "")), "className": str(p.get("className", "")),
            "nodeCeiling": p.get("nodeCeiling", 0),
            "devices": devices_digest(_l(p.get("devices"))), "ready": p.get("ready") is True}
        if p.get("costPerNodeHour") is not None:
            entry["costPerNodeHour"] = str(p["costPerNodeHour"])
        if p.get("draining") is True:
            entry["draining"] = True
        if isinstance(p.get("allocated"), list):
            entry["allocated"] = p["allocated"]
        out_pools.append(entry)
    doc: dict[str, Any] = {"v": VERSION, "cluster": name, "labels": dict(sorted(labels.items())),
                           "ready": ready, "pools": out_pools}
    if not out_pools and declares_pools:
        doc["unpublished"] = True
    kept = [{k: t[k] for k in ("key", "value", "effect", "tolerable") if k in t}
            for t in taints if isinstance(t, Mapping)]
    if kept:
        doc["taints"] = kept
    if not ready and not_ready_since:
        doc["notReadySince"] = not_ready_since
    return json.dumps(doc, sort_keys=True, separators=(",", ":"))


class Summaries:
    """Summaries decoded into the scheduler's model (the fleet a placing reconcile reads)."""

    def __init__(self) -> None:
        self.clusters: dict[str, Cluster] = {}
        self._decoded: dict[str, _Decoded] = {}
        # Clusters that declare node pools but publish none yet (see :func:`summary`).
        self.unpublished: set[str] = set()

    def complete(self, cluster: str) -> bool:
        """Whether the cluster published its whole ledger."""
        got = self._decoded.get(cluster)
        return got is not None and got.allocated is not None

    def usages(self, cluster: str, skip_owner: str) -> list[Usage]:
        """The usages a cluster's published ledger stands for, without ``skip_owner``'s
        entries (built when first asked: a decision replays the ledgers of a few clusters)."""
        got = self._decoded.get(cluster)
        return [u for u in got.usages() if u.namespace != skip_owner] if got else []


class _Decoded:
    __slots__ = ("_usages", "allocated", "cluster", "unpublished")

    def __init__(self, cluster: Cluster, allocated: list[tuple[str, list[Any]]] | None,
                 unpublished: bool = False) -> None:
        self.cluster, self.allocated, self.unpublished = cluster, allocated, unpublished
        self._usages: tuple[Usage, ...] | None = None

    def usages(self) -> tuple[Usage, ...]:
        if self._usages is None:  # a race only computes the same tuple twice
            self._usages = tuple(ledger_usages(self.cluster.name, self.allocated or [], ""))
        return self._usages


class _DecodeCache:
    """Decoded summaries by (cluster, text, classes), least recently used first.

    A fleet's summaries change only when a cluster reconciles, while every placing reconcile
    of every deployment reads all of them: decoding each distinct one once per process makes
    the per-cluster cost a dictionary lookup (the text objects themselves are shared by the
    server's conversion cache, so their hashes are computed once too). Bounded by the summed
    length of the texts kept; decoded objects are immutable and shared.
    """

    MAX_TEXT_BYTES = 16 * 1024 * 1024

    def __init__(self) -> None:
        self._entries: OrderedDict[tuple[str, str, tuple[Any, ...]], _Decoded] = OrderedDict()
        self._pools: PoolCache = {}
        self.bytes = 0
        self._lock = threading.Lock()

    def get(self, key: tuple[str, str, tuple[Any, ...]]) -> _Decoded | None:
        with self._lock:
            got = self._entries.get(key)
            if got is not None:
                self._entries.move_to_end(key)
            return got

    def put(self, key: tuple[str, str, tuple[Any, ...]], value: _Decoded) -> None:
        with self._lock:
            if key in self._entries:
                return
            self._entries[key] = value
            self.bytes += len(key[1])
            while self.bytes > self.MAX_TEXT_BYTES and self._entries:
                old, _ = self._entries.popitem(last=False)
                self.bytes -= len(old[1])
            if len(self._pools) > 50_000:  # distinct pools are few; this only bounds a churn
                self._pools.clear()

    def pools(self) -> PoolCache:
        return self._pools

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._pools.clear()
            self.bytes = 0


DECODED = _DecodeCache()


def _pool(p: Mapping[str, Any], fingerprint: tuple[Any, ...],
          classes: Mapping[str, tuple[str, tuple[Any, ...]]], cache: PoolCache) -> Pool:
    cname = str(p.get("className", ""))
    head = (fingerprint, str(p.get("name", "")), cname, p.get("nodeCeiling"),
            str(p.get("costPerNodeHour")), p.get("ready") is True, p.get("draining") is True,
            str(p.get("devices")))
    got = cache.get(head)
    if got is not None:
        return got
    digest, shapes = classes.get(cname, ("", ()))
    problem = None
    if not digest:
        problem = f"InferenceClass {cname!r} does not exist"
    elif digest != head[7]:
        problem = (f"InferenceClass {cname!r} changed since the cluster last published its "
                   "capacity; it takes nothing new until it publishes again")
    try:
        ceiling = max(int(p.get("nodeCeiling") or 0), 0)
    except (TypeError, ValueError):
        ceiling = 0
    pool = Pool(name=head[1], class_name=cname, node_ceiling=ceiling,
                devices=shapes if problem is None else (), cost=_cost(p.get("costPerNodeHour")),
                ready=head[5], draining=head[6], problem=problem)
    cache[head] = pool
    return pool


def _decode(owner: str, text: str, fingerprint: tuple[Any, ...],
            classes: Mapping[str, tuple[str, tuple[Any, ...]]]) -> _Decoded | None:
    try:
        doc = json.loads(text)
    except (TypeError, ValueError):
        return None
    if not isinstance(doc, dict) or doc.get("v") != VERSION or doc.get("cluster") != owner:
        return None
    cache = DECODED.pools()
    pools: list[Pool] = []
    allocated: list[tuple[str, list[Any]]] | None = []
    for p in _l(doc.get("pools")):
        if not isinstance(p, dict):
            continue
        pools.append(_pool(p, fingerprint, classes, cache))
        if allocated is not None and isinstance(p.get("allocated"), list):
            allocated.append((str(p.get("name", "")), p["allocated"]))
        else:
            allocated = None
    pools.sort(key=lambda p: p.name)
    ready = doc.get("ready") is True
    since: datetime | None = None if ready else parse_time(doc.get("notReadySince"))
    taints = tuple(Taint(str(t.get("key", "")), str(t.get("value", "")),
                         str(t.get("effect", "")), tolerable=t.get("tolerable") is True)
                   for t in _l(doc.get("taints")) if isinstance(t, dict))
    labels = {str(k): str(v) for k, v in _d(doc.get("labels")).items()}
    cluster = Cluster(name=owner, labels=labels, taints=taints, ready=ready,
                      not_ready_since=since, pools=tuple(pools))
    return _Decoded(cluster, allocated, doc.get("unpublished") is True)


def read(texts: Iterable[tuple[str, str]], classes: Iterable[Mapping[str, Any]]) -> Summaries:
    """Decode ``(cluster, summary JSON)`` pairs; unreadable or mislabelled ones are left out.

    A summary whose ``cluster`` is not the cluster that composed it is ignored (the caller
    passes the name from the object's controller reference).
    """
    resolved: dict[str, tuple[str, tuple[Any, ...]]] = {}
    for c in classes:
        devices = resolve_devices(_d(c.get("spec")))
        resolved[str(_d(c.get("metadata")).get("name"))] = (
            devices_digest(devices), tuple(_shape(d) for d in devices))
    fingerprint = tuple(sorted((n, digest) for n, (digest, _) in resolved.items()))
    out = Summaries()
    for owner, text in texts:
        key = (owner, text, fingerprint)
        got = DECODED.get(key)
        if got is None:
            got = _decode(owner, text, fingerprint, resolved)
            if got is None:
                continue
            DECODED.put(key, got)
        out.clusters[owner] = got.cluster
        out._decoded[owner] = got
        if got.unpublished:
            out.unpublished.add(owner)
    return out
