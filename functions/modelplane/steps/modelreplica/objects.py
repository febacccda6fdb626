"""When the remote objects a ModelReplica composes count as ready (provider-kubernetes CEL).

The Object wrapper itself is the shared contract in :mod:`modelplane.contract.remote`.
"""

from __future__ import annotations


def available_query() -> str:
    """Ready when the remote workload reports Available=True (Deployment and LeaderWorkerSet).

    provider-kubernetes' DeriveFromObject policy only looks for a ``Ready`` condition, which
    neither a Deployment nor a LeaderWorkerSet has, so workloads derive readiness from a CEL query.
    """
    return ("has(object.status) && has(object.status.conditions) && "
            "object.status.conditions.exists(c, c.type == 'Available' && c.status == 'True')")


def route_accepted_query() -> str:
    """Ready when every parent gateway accepted the route and resolved its backends."""
    return ("has(object.status) && has(object.status.parents) && "
            "object.status.parents.size() > 0 && object.status.parents.all(p, "
            "p.conditions.exists(c, c.type == 'Accepted' && c.status == 'True') && "
            "p.conditions.exists(c, c.type == 'ResolvedRefs' && c.status == 'True'))")
