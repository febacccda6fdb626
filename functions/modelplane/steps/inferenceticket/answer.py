"""The ticket's answer: lanes, clusters, fit now and at peak, the boundary, the cache.

Fit is the placement core's own dry run (``core.place``) of the ModelDeployment the ticket
implies (``ticket.implied``), read the way the ``place`` step reads it (``inputs.request_from``,
the cache footprint, every ModelReplica as the ledger). There is no second scheduler here.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from modelplane.common import selectors
from modelplane.common.fields import mapping
from modelplane.contract.boundary import endpoint_labels, outside
from modelplane.contract.metadata import DEPLOYMENT_LABEL
from modelplane.placement import core
from modelplane.placement.filter import PoolMatcher
from modelplane.placement.inputs import (
    clusters_from,
    footprint_from,
    replicas_from,
    request_from,
    usage_from,
)
from modelplane.placement.model import Decision, Fleet
from modelplane.steps.inferenceticket.ticket import OVERFLOW_WARNING, boundary_of, fleet_selector

MAX_REASONS = 20


@dataclass
class Inputs:
    """What the fleet offers, as Crossplane (or ``ticket check``) hands it over."""

    classes: Sequence[Mapping[str, Any]]
    clusters: Sequence[Mapping[str, Any]]
    replicas: Sequence[Mapping[str, Any]]
    overflow: Mapping[str, Any] | None = None
    overflow_name: str = ""
    cache: Mapping[str, Any] | None = None
    now: datetime | None = None


@dataclass
class Answer:
    lanes: list[str] = field(default_factory=list)
    clusters: list[str] = field(default_factory=list)
    fits_now: bool = False
    fits_at_peak: bool = False
    within_boundary: bool = True
    boundary_message: str = ""
    cache_staged: bool = True
    # Why not: what blocks the ticket first, then what merely narrows it (a cluster outside).
    blocking: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def reasons(self) -> list[str]:
        out = self.blocking + self.notes
        if len(out) > MAX_REASONS:
            out = [*out[:MAX_REASONS - 1], f"... and {len(out) - MAX_REASONS + 1} more"]
        return out

    @property
    def runnable(self) -> bool:
        return bool(self.clusters and self.fits_now and self.fits_at_peak and self.cache_staged)


def _dry_run(md: Mapping[str, Any], replicas: int, inputs: Inputs,
             footprint: frozenset[str] | None, matcher: PoolMatcher) -> Decision:
    spec_md = copy.deepcopy(dict(md))
    spec_md["spec"]["replicas"] = replicas
    request = request_from(spec_md, inputs.now, footprint)
    meta = mapping(md.get("metadata"))
    own_objs = [o for o in inputs.replicas
                if mapping(o.get("metadata")).get("namespace") == meta.get("namespace")
                and mapping(mapping(o.get("metadata")).get("labels")).get(DEPLOYMENT_LABEL)
                == meta.get("name")]
    fleet = Fleet(clusters_from(inputs.clusters, inputs.classes),
                  [usage_from(o) for o in inputs.replicas])
    return core.place(request, fleet, replicas_from(own_objs), matcher=matcher)


def _why_not(d: Decision, wanted: int, what: str) -> list[str]:
    if d.blocked:
        return [f"{what}: placement refused: {d.blocked.reason}: {d.blocked.message}"]
    if not d.shortfall:
        return []
    out = [f"{what}: {d.scheduled}/{wanted} replicas fit; {d.shortfall} could not be placed"]
    out += [f"{what}: {u.cluster}: {u.reason}: {u.message}" for u in d.unschedulable]
    return out


def answer(ticket: Mapping[str, Any], md: Mapping[str, Any], replicas: int, peak: int,
           inputs: Inputs) -> Answer:
    """Answer the ticket for the implied ModelDeployment ``md``."""
    out = Answer()
    matcher = PoolMatcher()
    name = str(mapping(md.get("metadata")).get("name"))
    request = request_from(md, inputs.now)
    [engine] = request.engines
    # Lanes: the classes whose devices satisfy the hardware row (one node of the class).
    class_names = sorted(str(mapping(c.get("metadata")).get("name")) for c in inputs.classes)
    probe = {"metadata": {"name": "lanes"},
             "spec": {"nodePools": [{"name": n, "className": n, "maxNodeCount": 1}
                                    for n in class_names]}}
    probe_cluster = clusters_from([probe], inputs.classes)["lanes"]
    out.lanes = [p.class_name for p in probe_cluster.pools
                 if matcher.engine_fits(engine, p) is None]
    if not out.lanes:
        out.blocking.append("no InferenceClass offers devices that satisfy spec.hardware")

    fleet_sel, boundary = fleet_selector(ticket), boundary_of(ticket)
    fleet_clusters = clusters_from(inputs.clusters, inputs.classes)
    for cname in sorted(fleet_clusters):
        c = fleet_clusters[cname]
        why = selectors.explain_mismatch(fleet_sel, c.labels)
        if why:
            out.notes.append(f"{cname}: outside the fleet boundary: {why}")
            continue
        why = outside(boundary, endpoint_labels(name, cname, c.labels))
        if why:
            out.notes.append(f"{cname}: outside the data boundary: {why}")
            continue
        if not any(matcher.engine_fits(engine, p) is None for p in c.pools if not p.problem):
            pools = ", ".join(f"{p.name} ({p.class_name})" for p in c.pools) or "none"
            out.notes.append(f"{cname}: no node pool offers a lane (pools: {pools})")
            continue
        out.clusters.append(cname)
    if not out.clusters:
        out.blocking.append("no cluster lies inside both the fleet boundary and the data "
                           "boundary with a lane")

    footprint: frozenset[str] | None = None
    if inputs.cache is not None:
        footprint = footprint_from(inputs.cache, fleet_clusters.values())
        staged = sorted(footprint & set(out.clusters))
        cache_name = mapping(inputs.cache.get("metadata")).get("name")
        if not staged:
            out.cache_staged = False
            out.blocking.append(
                f"ModelCache {cache_name} stages weights on "
                f"{', '.join(sorted(footprint)) or 'no cluster'}; none of the ticket's "
                f"clusters ({', '.join(out.clusters) or 'none'})")

    if out.clusters:
        now = _dry_run(md, replicas, inputs, footprint, matcher)
        out.fits_now = not now.blocked and not now.shortfall
        out.blocking += _why_not(now, replicas, "now")
        at_peak = _dry_run(md, peak, inputs, footprint, matcher)
        out.fits_at_peak = not at_peak.blocked and not at_peak.shortfall
        out.blocking += _why_not(at_peak, peak, "at peak")

    if inputs.overflow is not None:
        labels = {str(k): str(v) for k, v in
                  mapping(mapping(inputs.overflow.get("metadata")).get("labels")).items()}
        why = outside(boundary, labels)
        if why:
            out.within_boundary = False
            out.boundary_message = (
                f"overflow ModelEndpoint {inputs.overflow_name} (spec.overflow.endpointRef."
                f"name) lies outside spec.sovereignty.dataBoundary: {why}; "
                f"{OVERFLOW_WARNING}")
            out.blocking.append(out.boundary_message)
    return out
