"""The routing decision of a ModelService, as a pure function of its spec and its endpoints.

Rules, in the order they apply:

1. Tenancy: only ModelEndpoints in the service's own namespace are considered, whatever a
   selector says (the required-resource selector is namespaced too; this is the second lock).
2. Selection: ``spec.endpoints[i].selector`` (matchLabels and matchExpressions). An endpoint
   selected by several groups belongs to the first; later groups list it as excluded.
3. Data boundary: an endpoint whose labels fall outside ``spec.dataBoundary.selector`` is
   excluded, as a Primary and as a Fallback alike, with the label that put it outside.
4. Fallback: Fallback groups carry traffic only while no Primary endpoint in a group with
   weight > 0 is ready. A drained (weight 0) Primary group does not hold fallback back.
5. Weights: the active role's group weights are split over their ready endpoints (see
   ``weights.split_weights``); nothing ready is rounded to zero.
6. An HTTPRoute rule carries at most 16 backends: beyond that, endpoints are excluded in
   (group, name) order and say so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from modelplane.common import selectors
from modelplane.contract.api import MODEL_DEPLOYMENT
from modelplane.contract.boundary import outside as boundary_outside
from modelplane.contract.ownership import not_composed_by
from modelplane.steps.routing import endpointpolicy
from modelplane.steps.routing.upstream import Upstream, UpstreamError, parse_upstream
from modelplane.steps.routing.weights import split_weights

MAX_BACKENDS = 16  # HTTPRoute spec.rules[].backendRefs maxItems
OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")
Mode = Literal["Primary", "Fallback", "None"]


@dataclass
class Backend:
    """One selected endpoint inside the boundary, and what it receives."""

    endpoint: str
    role: str
    group: int
    ready: bool
    upstream: Upstream
    weight: int = 0

    def status(self) -> dict[str, Any]:
        return {"endpoint": self.endpoint, "weight": self.weight, "ready": self.ready,
                "role": self.role}


@dataclass
class Excluded:
    endpoint: str
    reason: str

    def status(self) -> dict[str, Any]:
        return {"endpoint": self.endpoint, "reason": self.reason}


@dataclass
class Plan:
    backends: list[Backend] = field(default_factory=list)
    excluded: list[Excluded] = field(default_factory=list)
    mode: Mode = "None"
    message: str = ""

    @property
    def serving(self) -> list[Backend]:
        return [b for b in self.backends if b.weight > 0]


def selector_problem(selector: Any, field_path: str) -> str | None:
    """Why a label selector cannot be evaluated (naming the field and value), or None."""
    if not isinstance(selector, dict):
        return f"{field_path} must be a label selector, got {selector!r}"
    labels = selector.get("matchLabels") or {}
    if not isinstance(labels, dict):
        return f"{field_path}.matchLabels must be a map, got {labels!r}"
    exprs = selector.get("matchExpressions") or []
    if not isinstance(exprs, list):
        return f"{field_path}.matchExpressions must be a list, got {exprs!r}"
    if not labels and not exprs:
        return (f"{field_path} is empty; it would select every endpoint in the namespace "
                f"(give matchLabels or matchExpressions)")
    for j, expr in enumerate(exprs):
        where = f"{field_path}.matchExpressions[{j}]"
        if not isinstance(expr, dict) or not expr.get("key"):
            return f"{where} needs a key, got {expr!r}"
        op, values = expr.get("operator"), expr.get("values") or []
        if op not in OPERATORS:
            return f"{where}.operator {op!r} is not one of {', '.join(OPERATORS)}"
        if op in ("In", "NotIn") and not values:
            return f"{where}.values must not be empty for operator {op}"
        if op in ("Exists", "DoesNotExist") and values:
            return f"{where}.values must be empty for operator {op}, got {values!r}"
    return None


def _meta(obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, dict) else {}


def readiness(endpoint: dict[str, Any]) -> bool | None:
    """``status.ready`` as evidence: True, False, or None when it is missing (unknown)."""
    status = endpoint.get("status")
    ready = status.get("ready") if isinstance(status, dict) else None
    return ready if isinstance(ready, bool) else None


def _is_ready(endpoint: dict[str, Any], role: str, service: str,
              last_routed: set[str] | None) -> bool:
    """Whether a backend may carry traffic. Unknown is not false: an endpoint without status
    keeps the last routing decision (live if the last route sent it traffic); with no last
    route, an unknown Primary counts as live, so fallback never engages without evidence."""
    known = readiness(endpoint)
    if known is not None:
        return known
    if last_routed is not None:
        return service in last_routed
    return role == "Primary"


def _policy_refusal(ep: dict[str, Any], upstream: Upstream,
                    policy: endpointpolicy.EndpointPolicy) -> str | None:
    """Why the endpoint policy keeps this endpoint out of the route, or None.

    The endpoint's own step has the last word on endpoints composed for replicas (it checks
    the URL against the hosting cluster's gateway); every other endpoint is checked here too,
    so a refused one is never routed even before its own step has run.
    """
    for c in (ep.get("status") or {}).get("conditions") or []:
        if isinstance(c, dict) and c.get("type") == "Routable" \
                and c.get("reason") == "EndpointRefused":
            return str(c.get("message") or "refused by the endpoint policy")
    if not_composed_by(ep, MODEL_DEPLOYMENT) is None:
        return None
    why = endpointpolicy.refusal(upstream.host, policy)
    return f"spec.url host {upstream.host!r} {why}" if why else None


def plan_routes(spec: dict[str, Any], namespace: str,
                selected: Sequence[Sequence[dict[str, Any]]],
                last_routed: set[str] | None = None,
                policy: endpointpolicy.EndpointPolicy = endpointpolicy.DEFAULT) -> Plan:
    """Decide backends, weights and exclusions.

    ``selected[i]`` holds the ModelEndpoints the required-resource selector of
    ``spec.endpoints[i]`` returned (matchLabels only; expressions are checked here).
    ``last_routed`` is the Services the observed route sends traffic to (weight > 0), or None
    when there is no route yet: what an endpoint of unknown readiness is judged by.
    """
    groups: list[dict[str, Any]] = list(spec.get("endpoints") or [])
    boundary = (spec.get("dataBoundary") or {}).get("selector")
    plan = Plan()
    owner: dict[str, int] = {}
    for i, group in enumerate(groups):
        role = str(group.get("role") or "Primary")
        candidates = selected[i] if i < len(selected) else []
        for ep in sorted(candidates, key=lambda o: str(_meta(o).get("name", ""))):
            meta = _meta(ep)
            name = str(meta.get("name", ""))
            if not name or meta.get("namespace") != namespace:
                continue  # another tenant's endpoint: never selected, never named
            labels = meta.get("labels") or {}
            if not selectors.matches(group.get("selector"), labels):
                continue
            if name in owner:
                plan.excluded.append(Excluded(
                    name, f"also selected by spec.endpoints[{i}]; routed once, as part of "
                          f"spec.endpoints[{owner[name]}]"))
                continue
            owner[name] = i
            why = boundary_outside(boundary, labels)
            if why is not None:
                plan.excluded.append(Excluded(name, f"outside the data boundary: {why}"))
                continue
            try:
                upstream = parse_upstream(name, ep.get("spec") or {})
            except UpstreamError as exc:
                plan.excluded.append(Excluded(name, f"not routable: {exc}"))
                continue
            refused = _policy_refusal(ep, upstream, policy)
            if refused:
                plan.excluded.append(Excluded(name, f"refused by the endpoint policy: {refused}"))
                continue
            plan.backends.append(Backend(name, role, i, _is_ready(ep, role, upstream.service,
                                                                 last_routed), upstream))

    def weight(b: Backend) -> int:
        return int(groups[b.group].get("weight", 1))

    def live(role: str) -> list[Backend]:
        return [b for b in plan.backends if b.role == role and b.ready and weight(b) > 0]

    primaries, fallbacks = live("Primary"), live("Fallback")
    active = primaries or fallbacks
    plan.mode = "Primary" if primaries else ("Fallback" if fallbacks else "None")
    active.sort(key=lambda b: (b.group, b.endpoint))
    kept, dropped = active[:MAX_BACKENDS], active[MAX_BACKENDS:]
    for b in dropped:
        plan.backends.remove(b)
        plan.excluded.append(Excluded(
            b.endpoint, f"over the {MAX_BACKENDS} backends one HTTPRoute rule can carry"))
    by_group: dict[int, list[str]] = {}
    for b in kept:
        by_group.setdefault(b.group, []).append(b.endpoint)
    weights = split_weights([(int(groups[g].get("weight", 1)), names)
                             for g, names in sorted(by_group.items())])
    for b in plan.backends:
        b.weight = weights.get(b.endpoint, 0) if b in kept else 0
    plan.backends.sort(key=lambda b: (b.group, b.endpoint))
    plan.excluded.sort(key=lambda x: (x.endpoint, x.reason))
    plan.message = _message(plan, primaries, fallbacks)
    return plan


def _names(backends: Sequence[Backend]) -> str:
    return ", ".join(sorted(b.endpoint for b in backends)) or "none"


def _message(plan: Plan, primaries: list[Backend], fallbacks: list[Backend]) -> str:
    all_primary = [b for b in plan.backends if b.role == "Primary"]
    excluded = f"; {len(plan.excluded)} excluded" if plan.excluded else ""
    if plan.mode == "Primary":
        standby = f"; Fallback standing by: {_names(fallbacks)}" if fallbacks else ""
        return (f"serving from {len(primaries)} of {len(all_primary)} Primary endpoints "
                f"({_names(primaries)}){standby}{excluded}")
    if plan.mode == "Fallback":
        return (f"degraded: no Primary endpoint is ready (Primary: {_names(all_primary)}); "
                f"serving from Fallback {_names(fallbacks)}{excluded}")
    selected = len(plan.backends)
    return (f"no endpoint is routable: {selected} selected inside the data boundary, none ready "
            f"in a group with weight > 0{excluded}; the gateway answers 503")
