"""ModelService composition (step `compose-service`): one OpenAI-compatible URL.

Composes one HTTPRoute in the service's own namespace, attached to the InferenceGateway's
Gateway, matching ``/<namespace>/<service>`` and rewriting that prefix to each backend's path,
so ``/<namespace>/<service>/v1/chat/completions`` reaches the upstream's ``/v1/chat/completions``.
Which endpoints get traffic, and how much, is ``routing.plan_routes`` (tenancy, data boundary,
fallback, weights); this module turns the plan into the route and the status.

Production choices:

- While the gateway or the endpoints are not resolved yet, or the spec is invalid, the existing
  route is kept as it is (Crossplane would delete it otherwise) and a condition says why.
- With nothing routable the route stays, pointing at an endpoint-less Service, so callers get
  the gateway's 503 for this path rather than a 404 (or another route's answer) and the URL is
  never given up; ``Routing=False/NoRoutableEndpoints`` and ``Ready=False`` say so.
"""

from __future__ import annotations

from typing import Any

from modelplane.common.names import dns_label
from modelplane.contract.api import API_VERSION, INFERENCE_GATEWAY, MODEL_ENDPOINT, MODEL_SERVICE
from modelplane.contract.metadata import OWNER_CONTACT_LABEL as OWNER_CONTACT
from modelplane.contract.metadata import OWNER_TEAM_LABEL as OWNER_TEAM
from modelplane.contract.metadata import SERVICE_LABEL
from modelplane.step import (
    Desired,
    Resource,
    Selector,
    StepRequest,
    StepResult,
    require,
    step,
)
from modelplane.steps.routing import (
    HTTP_LISTENER,
    Backend,
    Plan,
    endpointpolicy,
    gateway_names,
    plan_routes,
    route_name,
    selector_problem,
    unavailable_service_name,
)

GATEWAY_GROUP = "gateway.networking.k8s.io"


def spec_problem(spec: dict[str, Any]) -> str | None:
    """The first thing in the spec that makes routing impossible, naming field and value."""
    groups = spec.get("endpoints")
    if not isinstance(groups, list) or not groups:
        return f"spec.endpoints must list at least one endpoint group, got {groups!r}"
    for i, g in enumerate(groups):
        if not isinstance(g, dict):
            return f"spec.endpoints[{i}] must be an object, got {g!r}"
        problem = selector_problem(g.get("selector"), f"spec.endpoints[{i}].selector")
        if problem:
            return problem
        role = g.get("role", "Primary")
        if role not in ("Primary", "Fallback"):
            return f"spec.endpoints[{i}].role {role!r} is not Primary or Fallback"
        w = g.get("weight", 1)
        if not isinstance(w, int) or isinstance(w, bool) or not 0 <= w <= 1000:
            return f"spec.endpoints[{i}].weight {w!r} must be an integer from 0 to 1000"
    if not any(g.get("role", "Primary") == "Primary" and g.get("weight", 1) > 0 for g in groups):
        return "spec.endpoints needs at least one Primary group with weight > 0"
    boundary = spec.get("dataBoundary")
    if boundary is not None:
        if not isinstance(boundary, dict):
            return f"spec.dataBoundary must be an object, got {boundary!r}"
        # Fail closed: a boundary we cannot evaluate must never route everywhere.
        return selector_problem(boundary.get("selector"), "spec.dataBoundary.selector")
    return None


def _keep(req: StepRequest, res: StepResult) -> StepResult:
    res.desired = req.keep_observed()
    # Status is Crossplane's full intent: the kept route still serves, so what describes it
    # (the URL clients use, its backends) is written again rather than dropped.
    for field in ("address", "backends", "excluded"):
        if field in req.status:
            res.status[field] = req.status[field]
    for name, d in res.desired.items():
        d.ready = "True" if _route_accepted(req.observed.get(name)) or (
            name != "route" and name in req.observed) else "False"
    # What is kept may still route, but to a plan this reconcile could not check: not Ready.
    res.composite_ready = "False"
    return res


def _route_accepted(route: Resource | None) -> bool:
    for parent in ((route or {}).get("status") or {}).get("parents") or []:
        for c in parent.get("conditions") or []:
            if c.get("type") == "Accepted" and c.get("status") == "True":
                return True
    return False


def last_routed(req: StepRequest) -> set[str] | None:
    """The Services the observed route sends traffic to (weight > 0); None without a route.

    An endpoint whose readiness is unknown (status missing, e.g. after a restore) is judged by
    this: the last routing decision stands until there is evidence (docs/routing.md).
    """
    route = req.observed.get("route")
    if route is None:
        return None
    out: set[str] = set()
    for rule in ((route.get("spec") or {}).get("rules") or []):
        for ref in (rule.get("backendRefs") or []) if isinstance(rule, dict) else []:
            if isinstance(ref, dict) and ref.get("name") and ref.get("weight", 1) != 0:
                out.add(str(ref["name"]))
    return out


def _rewrite(path: str) -> dict[str, Any]:
    return {"type": "URLRewrite",
            "urlRewrite": {"path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": path}}}


def build_route(req: StepRequest, plan: Plan, gateway: str) -> dict[str, Resource]:
    """The HTTPRoute (and, with nothing routable, its 503 Service) for a plan."""
    ns, name = str(req.namespace), req.name
    gw = gateway_names(gateway)
    serving: list[Backend] = plan.serving
    rule: dict[str, Any] = {
        "name": "openai",
        "matches": [{"path": {"type": "PathPrefix", "value": f"/{ns}/{name}"}}],
    }
    out: dict[str, Resource] = {}
    if serving:
        paths = {b.upstream.route_path for b in serving}
        shared = len(paths) == 1
        refs = []
        for b in serving:
            ref: dict[str, Any] = {"group": "", "kind": "Service", "name": b.upstream.service,
                                   "port": b.upstream.service_port, "weight": b.weight}
            if not shared:
                # Per-backend rewrites are implementation-specific in Gateway API; Traefik
                # supports them, and different upstream paths in one weighted split need them.
                ref["filters"] = [_rewrite(b.upstream.route_path)]
            refs.append(ref)
        if shared:
            rule["filters"] = [_rewrite(paths.pop())]
        rule["backendRefs"] = refs
    else:
        unavailable = unavailable_service_name(name)
        rule["backendRefs"] = [{"group": "", "kind": "Service", "name": unavailable,
                                "port": 80, "weight": 1}]
        out["unavailable"] = {
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": unavailable, "labels": {SERVICE_LABEL: dns_label(name)}},
            # No selector and no EndpointSlice: a Service with no ready endpoints, which the
            # gateway answers with 503.
            "spec": {"type": "ClusterIP",
                     "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]},
        }
    owner = req.spec.get("owner") or {}
    annotations = {SERVICE_LABEL: f"{ns}/{name}"}
    if owner.get("team"):
        annotations[OWNER_TEAM] = str(owner["team"])
    if owner.get("contact"):
        annotations[OWNER_CONTACT] = str(owner["contact"])
    out["route"] = {
        "apiVersion": f"{GATEWAY_GROUP}/v1", "kind": "HTTPRoute",
        "metadata": {"name": route_name(name), "labels": {SERVICE_LABEL: dns_label(name)},
                     "annotations": annotations},
        "spec": {
            "parentRefs": [{"group": GATEWAY_GROUP, "kind": "Gateway", "namespace": gw.namespace,
                            "name": gw.gateway, "sectionName": HTTP_LISTENER}],
            "rules": [rule],
        },
    }
    return out


@step("compose-service", kinds=[MODEL_SERVICE])
def compose(req: StepRequest) -> StepResult:
    res = StepResult()
    ns = req.namespace
    if not ns:
        res.condition("Routing", "False", "NoNamespace",
                      "a ModelService must be namespaced (metadata.namespace is empty)")
        return _keep(req, res)
    spec = req.spec
    problem = spec_problem(spec)
    if problem:
        res.condition("Routing", "False", "InvalidSpec", f"{problem}; keeping the existing route")
        res.event("Warning", problem, "InvalidSpec")
        return _keep(req, res)

    gateway = str((spec.get("gatewayRef") or {}).get("name") or "default")
    gateways = require(req, res, "gateway",
                       Selector(API_VERSION, INFERENCE_GATEWAY, match_name=gateway))
    selected: list[list[Resource] | None] = []
    for i, group in enumerate(spec["endpoints"]):
        labels = {str(k): str(v) for k, v in
                  ((group.get("selector") or {}).get("matchLabels") or {}).items()}
        # Namespaced: only this namespace's endpoints are ever fetched.
        selected.append(require(req, res, f"endpoints-{i}",
                                Selector.labels(API_VERSION, MODEL_ENDPOINT, labels, ns)))
    if gateways is None or any(s is None for s in selected):
        res.condition("Routing", "Unknown", "Resolving",
                      "waiting for the InferenceGateway and ModelEndpoints to be resolved")
        return _keep(req, res)
    if not gateways:
        msg = (f"spec.gatewayRef.name {gateway!r}: no InferenceGateway of that name; "
               "keeping the existing route")
        res.condition("Routing", "False", "GatewayNotFound", msg)
        return _keep(req, res)

    for i, found in enumerate(selected):
        if not found:
            # Routing still works from the other groups (or answers 503); name the group that
            # selects nothing, since a typo here silently shifts traffic.
            sel = (spec["endpoints"][i].get("selector") or {})
            res.event("Warning", f"spec.endpoints[{i}].selector {sel!r} selects no "
                      f"ModelEndpoint in namespace {ns!r}", "NoEndpointsSelected")
    plan = plan_routes(spec, ns, [s or [] for s in selected], last_routed(req),
                       endpointpolicy.policy_from(gateways))
    for rname, obj in sorted(build_route(req, plan, gateway).items()):
        observed = req.observed.get(rname)
        ok = _route_accepted(observed) if rname == "route" else observed is not None
        res.desired[rname] = Desired(obj, "True" if ok else "False")

    base = str(((gateways[0].get("status") or {}).get("address")) or "").rstrip("/")
    if base:
        res.status["address"] = f"{base}/{ns}/{req.name}"
    res.status["backends"] = [b.status() for b in plan.backends]
    res.status["excluded"] = [x.status() for x in plan.excluded]
    if plan.mode == "Primary":
        res.condition("Routing", "True", "ServingFromPrimary", plan.message)
        res.condition("Serving", "True", "ServingFromPrimary", plan.message)
    elif plan.mode == "Fallback":
        # Answering, but not from what the service is for: Serving says it answers, Ready
        # (and Routing) say it is not serving its primary.
        res.condition("Routing", "False", "ServingFromFallback", plan.message)
        res.condition("Serving", "True", "ServingFromFallback", plan.message)
    else:
        res.condition("Routing", "False", "NoRoutableEndpoints", plan.message)
        res.condition("Serving", "False", "NoRoutableEndpoints", plan.message)
    # Ready: routed to a ready primary through an accepted route at a published address.
    route_ok = all(d.ready == "True" for d in res.desired.values())
    res.composite_ready = "True" if (plan.mode == "Primary" and route_ok and base) else "False"
    if base:
        res.condition("Address", "True", "Published", f"serving at {base}/{ns}/{req.name}")
    else:
        res.condition("Address", "False", "GatewayAddressPending",
                      f"InferenceGateway {gateway!r} has no address yet")
    return res
