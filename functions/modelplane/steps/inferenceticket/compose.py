"""InferenceTicket (step `compose-ticket`): "can we run this model?" answered against the fleet.

The step reads the fleet through required resources (every InferenceClass, InferenceCluster and
ModelReplica; the overflow ModelEndpoint and the ModelCache by name, in the ticket's namespace),
answers the ticket in its status, and with ``spec.deploy: true`` composes the ModelDeployment and
ModelService the ticket implies, but only while it is Decided, Runnable and WithinBoundary. A
ticket that stops being so keeps what it composed (Crossplane would delete it otherwise) and
says so: the safety model never lets a changed answer take down what serves.
"""

from __future__ import annotations

from typing import Any

from modelplane.common.fields import mapping
from modelplane.contract.api import (
    API_VERSION,
    INFERENCE_CLASS,
    INFERENCE_CLUSTER,
    INFERENCE_TICKET,
    MODEL_CACHE,
    MODEL_ENDPOINT,
    MODEL_REPLICA,
)
from modelplane.placement.inputs import now_from
from modelplane.step import (
    Desired,
    Selector,
    StepRequest,
    StepResult,
    mark_ready_from_observed,
    require,
    step,
)
from modelplane.steps.inferenceticket.answer import Answer, Inputs, answer
from modelplane.steps.inferenceticket.ticket import (
    Problem,
    declined,
    implied,
    row,
    rows,
    scaling,
)

DEPLOYMENT = "deployment"
SERVICE = "service"


def _ref(spec: dict[str, Any], name: str, ref: str) -> str:
    value = row(spec, name)
    if value is None or declined(value):
        return ""
    return str(mapping(value.get(ref)).get("name") or "")


def _keep(req: StepRequest, res: StepResult, why: str) -> StepResult:
    res.desired = req.keep_observed()
    mark_ready_from_observed(req, res.desired)
    if req.spec.get("deploy") is True or res.desired:
        n = len(res.desired)
        res.condition("Deployed", "False", "KeptAsIs",
                      f"{why}; keeping the {n} resource(s) composed before and composing "
                      f"nothing new" if n else f"{why}; composing nothing")
    return res


@step("compose-ticket", kinds=[INFERENCE_TICKET])
def compose(req: StepRequest) -> StepResult:
    res = StepResult()
    spec, ns = req.spec, req.namespace or ""
    now = now_from(req.context)
    table = rows(req.composite, now)
    open_rows = [r for r in table if r.state == "open"]
    res.status["rows"] = [r.status() for r in table]
    res.status["decided"] = [r.name for r in table if r.state == "decided"]
    res.status["open"] = [r.name for r in open_rows]

    classes = require(req, res, "classes", Selector.labels(API_VERSION, INFERENCE_CLASS, {}))
    clusters = require(req, res, "clusters",
                       Selector.labels(API_VERSION, INFERENCE_CLUSTER, {}))
    replicas = require(req, res, "replicas", Selector.labels(API_VERSION, MODEL_REPLICA, {}))
    overflow_name = _ref(spec, "overflow", "endpointRef")
    cache_name = _ref(spec, "cache", "modelCacheRef")
    overflow: list[dict[str, Any]] | None = []
    cache: list[dict[str, Any]] | None = []
    if overflow_name:
        overflow = require(req, res, "overflow", Selector(API_VERSION, MODEL_ENDPOINT,
                                                          match_name=overflow_name,
                                                          namespace=ns))
    if cache_name:
        cache = require(req, res, "cache", Selector(API_VERSION, MODEL_CACHE,
                                                    match_name=cache_name, namespace=ns))
    if classes is None or clusters is None or replicas is None or overflow is None \
            or cache is None:
        for c in ("Decided", "Runnable", "WithinBoundary"):
            res.condition(c, "Unknown", "Resolving", "waiting for the fleet (required "
                          "resources) to be resolved")
        res.composite_ready = "False"
        return _keep(req, res, "waiting for the fleet")

    problems: list[Problem] = []
    if overflow_name and not overflow:
        problems.append(Problem("spec.overflow.endpointRef.name",
                                f"{overflow_name!r}: no ModelEndpoint of that name in "
                                f"namespace {ns}"))
    if cache_name and not cache:
        problems.append(Problem("spec.cache.modelCacheRef.name",
                                f"{cache_name!r}: no ModelCache of that name in namespace {ns}"))
    overflow_obj = overflow[0] if overflow else None
    if overflow_obj is not None and not mapping(mapping(overflow_obj.get("metadata")).get(
            "labels")):
        problems.append(Problem("spec.overflow.endpointRef.name",
                                f"{overflow_name!r}: the ModelEndpoint has no labels, so a "
                                f"ModelService cannot select it as a Fallback; label it"))
    made = implied(req.composite, classes, overflow_obj)
    problems += made.problems
    hardware = row(spec, "hardware")

    if problems:
        text = "; ".join(str(p) for p in problems)
        res.condition("Decided", "False", "InvalidTicket", text)
        res.condition("Runnable", "Unknown", "InvalidTicket", "the ticket cannot be answered "
                      "until it is fixed (see Decided)")
        res.condition("WithinBoundary", "Unknown", "InvalidTicket", "see Decided")
        res.event("Warning", text, "InvalidTicket")
        res.status["reasons"] = [str(p) for p in problems][:20]
        res.composite_ready = "False"
        return _keep(req, res, "the ticket is invalid")

    if open_rows:
        res.condition("Decided", "False", "RowsOpen", "open: " + "; ".join(
            f"{r.name} ({r.message})" for r in open_rows))
    else:
        res.condition("Decided", "True", "AllRowsDecided", "every row is filled or declined")

    got: Answer | None = None
    if made.deployment is not None:
        want, peak = scaling(req.composite)
        got = answer(req.composite, made.deployment, want, peak,
                     Inputs(classes=classes, clusters=clusters, replicas=replicas,
                            overflow=overflow_obj, overflow_name=overflow_name,
                            cache=cache[0] if cache else None, now=now))
        res.status.update({"lanes": got.lanes, "clusters": got.clusters,
                           "fitsNow": got.fits_now, "fitsAtPeak": got.fits_at_peak,
                           "withinBoundary": got.within_boundary,
                           "runnable": got.runnable and got.within_boundary,
                           "reasons": got.reasons})
        if got.runnable:
            res.condition("Runnable", "True", "Fits",
                          f"lanes {', '.join(got.lanes)}; clusters {', '.join(got.clusters)}; "
                          f"{want} replica(s) fit now and {peak} at peak")
        else:
            res.condition("Runnable", "False", "DoesNotFit",
                          "; ".join(r for r in got.blocking[:5]
                                    if r != got.boundary_message) or "does not fit")
        if got.within_boundary:
            res.condition("WithinBoundary", "True", "Inside",
                          "the overflow lies inside the data boundary" if overflow_obj
                          else "no overflow leaves the fleet")
        else:
            res.condition("WithinBoundary", "False", "OverflowOutsideBoundary",
                          got.boundary_message)
    else:
        why = ("spec.hardware is declined, so no lane can be matched" if declined(hardware)
               else "spec.hardware is open, so no lane can be matched")
        res.condition("Runnable", "Unknown", "HardwareOpen", why)
        res.condition("WithinBoundary", "Unknown", "HardwareOpen", why)

    ok = bool(got and got.runnable and got.within_boundary and not open_rows)
    if spec.get("deploy") is not True:
        # Not deploying (any more): the spec itself asks for nothing composed.
        res.composite_ready = "True" if ok else "False"
        return res
    if not ok or made.deployment is None or made.service is None:
        res.composite_ready = "False"
        return _keep(req, res, "the ticket is not Decided, Runnable and WithinBoundary")
    needed = [n for n in ("model", "engine", "scaling", "endpoint") if declined(row(spec, n))]
    if needed:
        res.composite_ready = "False"
        return _keep(req, res, f"spec.deploy is true but {', '.join(needed)} declined; "
                               f"there is nothing to deploy")
    res.desired[DEPLOYMENT] = Desired(made.deployment)
    res.desired[SERVICE] = Desired(made.service)
    mark_ready_from_observed(req, res.desired)
    res.condition("Deployed", "True", "Composed",
                  f"composed ModelDeployment {made.deployment['metadata']['name']} and "
                  f"ModelService {made.service['metadata']['name']}")
    return res
