"""The scheduler's plain data: what the fleet offers, what a deployment asks, what was decided.

Everything here is immutable or plain, built once per reconcile from the objects Crossplane sends
(``inputs.py``), and never touches protobuf or dicts again: the filter, ledger and scoring code
work on these types only, so they are fast and easy to test.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from functools import cached_property
from typing import Any, NamedTuple

# A pod's demand or a node's capacity: device name -> count, sorted by name.
Vector = tuple[tuple[str, int], ...]

INFINITE_COST = Decimal("Infinity")


@dataclass(frozen=True)
class DeviceShape:
    """One device entry a node of a class offers (defaults resolved)."""

    name: str
    driver: str
    claim: str  # DRA | Synthetic
    device_class_name: str
    count: int  # devices of this entry on one node
    # The entry as published: what CEL selectors see. Excluded from eq/hash; ``key`` stands in.
    raw: Mapping[str, Any] = field(compare=False, hash=False, repr=False)
    key: str = ""  # canonical form of ``raw`` (memo key)


@dataclass(frozen=True)
class Pool:
    """A node pool as placement sees it (InferenceCluster.status.pools[], or derived)."""

    name: str
    class_name: str
    node_ceiling: int
    devices: tuple[DeviceShape, ...]
    cost: Decimal | None = None
    ready: bool = True
    # Removed from the cluster's spec.nodePools but kept while replicas run on it
    # (status.pools[].draining): takes nothing new, and the replicas on it move.
    draining: bool = False
    # Set when the pool cannot be evaluated (e.g. its InferenceClass is missing).
    problem: str | None = None

    # Cached: the placement loop asks for these thousands of times per reconcile. (A frozen
    # dataclass without slots keeps an instance __dict__, which cached_property writes to.)
    @cached_property
    def shape(self) -> tuple[str, ...]:
        """What a device-request match depends on (memo key part)."""
        return tuple(d.key for d in self.devices)

    @cached_property
    def capacity(self) -> Vector:
        """Devices one node offers that the ledger accounts (DRA-claimed ones)."""
        out: dict[str, int] = {}
        for d in self.devices:
            if d.claim != "Synthetic":
                out[d.name] = out.get(d.name, 0) + d.count
        return tuple(sorted(out.items()))


@dataclass(frozen=True)
class Taint:
    key: str
    value: str
    effect: str  # NoSchedule | NoExecute
    # Only a taint the platform marks tolerable may be tolerated by a tenant's toleration; a
    # cordon or drain repels every replica, whatever it tolerates (docs/security.md).
    tolerable: bool = False


@dataclass(frozen=True)
class Toleration:
    key: str
    operator: str  # Equal | Exists
    value: str
    effect: str  # "" matches both effects

    def tolerates(self, t: Taint) -> bool:
        if not t.tolerable:
            return False
        if self.effect and self.effect != t.effect:
            return False
        if self.operator == "Exists":
            return not self.key or self.key == t.key
        return self.key == t.key and self.value == t.value


@dataclass(frozen=True)
class Cluster:
    name: str
    labels: Mapping[str, str] = field(compare=False, hash=False)
    taints: tuple[Taint, ...] = ()
    ready: bool = True
    not_ready_since: datetime | None = None
    pools: tuple[Pool, ...] = ()

    def pool(self, name: str) -> Pool | None:
        for p in self.pools:
            if p.name == name:
                return p
        return None


@dataclass(frozen=True)
class DeviceRequest:
    name: str
    count: int
    selectors: tuple[str, ...] = ()


@dataclass(frozen=True)
class Member:
    """One pod role of an engine: Standalone, Leader (1 pod per copy) or Worker (n pods)."""

    role: str
    pods: int  # pods per engine copy
    devices: tuple[DeviceRequest, ...] = ()


@dataclass(frozen=True)
class Engine:
    name: str
    copies: int
    members: tuple[Member, ...]

    @cached_property
    def requests(self) -> tuple[tuple[str, tuple[DeviceRequest, ...]], ...]:
        """The device requests of every member (the pool-match memo key)."""
        return tuple((m.role, m.devices) for m in self.members)


@dataclass(frozen=True)
class Request:
    """A ModelDeployment as the scheduler reads it."""

    namespace: str
    name: str
    replicas: int
    engines: tuple[Engine, ...]
    cluster_selector: Mapping[str, Any] | None = field(default=None, compare=False, hash=False)
    tolerations: tuple[Toleration, ...] = ()
    spread_key: str = ""
    failover_window: timedelta = timedelta(minutes=5)
    # Clusters a referenced ModelCache stages weights on; None when no cache is referenced.
    footprint: frozenset[str] | None = None
    now: datetime | None = None
    # Own replicas that lose their place on an over-committed pool (its InferenceCluster's
    # status.pools[].evicting, see placement/eviction.py): name -> why. They are removed and
    # their slots placed again.
    evicted: Mapping[str, str] = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True)
class ResolvedDevice:
    """A device request resolved against the pool's class: what the ResourceClaim asks for.

    Placement produces it, ModelReplica.spec carries it, and compose-replica reads it back
    (steps/modelreplica/spec.py) to write the ResourceClaimTemplate.
    """

    name: str
    device_class_name: str
    count: int
    selectors: tuple[str, ...] = ()


@dataclass(frozen=True)
class Assignment:
    """The pool one engine member runs on, and its resolved (claimed) device requests."""

    engine: str
    member: str  # role
    pool: str
    devices: tuple[ResolvedDevice, ...] = ()


class PodGroup(NamedTuple):
    """Identical pods of one replica on one pool: what the ledger books."""

    pool: str
    demand: Vector  # one pod's devices
    pods: int  # number of such pods


@dataclass(frozen=True)
class Usage:
    """One ModelReplica's device consumption, as the ledger counts it."""

    namespace: str
    name: str
    cluster: str
    pods: tuple[PodGroup, ...]


@dataclass
class Replica:
    """One of this deployment's replicas: observed, or newly placed by this decision."""

    name: str
    ordinal: int
    cluster: str
    assignments: tuple[Assignment, ...]
    ready: bool = False
    new: bool = False
    # Its readiness is not known (no Ready condition: status lost or not yet written). It may
    # be serving, so scale-down counts it with the Ready ones (unknown is not false).
    ready_unknown: bool = False
    # Why an existing replica no longer fits where it runs (it is replaced make-before-break).
    invalid: str | None = None
    # The spread record it carries (annotation modelplane.ai/spread-domains), "" when none.
    spread: str = ""
    # Why its cluster cannot admit its pods (ModelReplica WorkloadsReady=False, reason
    # Unschedulable), "" when it did not say so. Such a replica holds no devices.
    not_admitted: str = ""
    # Set by the plan when not being admitted is the only thing wrong with it: it may wait in
    # place when nowhere else has room and the ledger says its own pool should (a stale ledger).
    may_wait: bool = False
    # Kept in place although not admitted (see ``may_wait``): the cluster's message.
    waiting: str = ""


class Eviction(NamedTuple):
    """A replica removed because its cluster could not admit its pods."""

    name: str
    cluster: str
    message: str


class Blocked(NamedTuple):
    """Placement refused to act: everything observed is kept."""

    reason: str
    message: str


@dataclass(frozen=True)
class Unschedulable:
    cluster: str
    reason: str
    message: str


@dataclass
class Fleet:
    clusters: dict[str, Cluster]
    usages: list[Usage] = field(default_factory=list)
    # More usages, by cluster, read only for the pools whose ledger a decision replays (the
    # capacity summaries' ledgers: placing a few replicas replays a few clusters of thousands).
    published: Callable[[str], Iterable[Usage]] | None = field(default=None, compare=False)


@dataclass
class Decision:
    """What placement decided; the composing step turns it into ModelReplicas."""

    desired: int
    # Replicas that exist after this reconcile: retained, new, and old ones kept until their
    # replacement is Ready. Sorted by (ordinal, name).
    replicas: list[Replica] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    # Removed because their cluster could not admit their pods.
    evicted: list[Eviction] = field(default_factory=list)
    unschedulable: list[Unschedulable] = field(default_factory=list)
    unschedulable_more: dict[str, int] = field(default_factory=dict)
    shortfall: int = 0
    # Set when placement refused to act. Everything observed is kept.
    blocked: Blocked | None = None
    # "<eligible spread domains>/<spec hash>" as of the last fleet read (see core.spread_record);
    # stamped on the replicas so a steady reconcile can tell "evenly spread" without the fleet.
    spread: str = ""

    @property
    def scheduled(self) -> int:
        """Slots with a valid replica (placed or retained)."""
        return len({r.ordinal for r in self.replicas if r.invalid is None})
