"""Replay a converged fleet's pipelines step by step, with faults injected into their inputs.

A fault is applied where Crossplane could produce it: in the answers to required resources
(never resolved, resolved empty, one set missing, an object altered) or in the XR's spec
(schema-valid but semantically wrong). The replay calls the real step handlers through the same
``StepRequest`` the server builds, and follows Crossplane's requirements loop.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from modelplane.render import Fleet
from modelplane.render.engine import RESOURCE_NAME_ANNOTATION
from modelplane.server import load_steps
from modelplane.step import STEPS, Desired, Selector, StepRequest, StepResult

Resolver = Callable[[str, Selector], list[dict[str, Any]] | None]


@dataclass
class Outcome:
    observed: dict[str, dict[str, Any]]
    desired: dict[str, Desired] = field(default_factory=dict)
    results: list[StepResult] = field(default_factory=list)
    fatal: str | None = None

    @property
    def dropped(self) -> list[str]:
        """Composed resources that exist but the pipeline no longer returns."""
        return sorted(set(self.observed) - set(self.desired)) if self.fatal is None else []

    def problems(self) -> list[str]:
        """Every condition that is not True and every warning: what the pipeline reported."""
        out = []
        for r in self.results:
            out += [f"{c.type}={c.status} {c.reason}: {c.message}" for c in r.conditions
                    if c.status != "True"]
            out += [f"{e.severity}: {e.message}" for e in r.results if e.severity != "Normal"]
        return out


def store_resolver(fleet: Fleet) -> Resolver:
    def resolve(_: str, sel: Selector) -> list[dict[str, Any]]:
        labels = dict(sel.match_labels) if sel.match_labels is not None else None
        ns = sel.namespace if sel.namespace is not None else ("" if sel.match_name else None)
        return fleet.store.select(sel.api_version, sel.kind, name=sel.match_name,
                                  labels=labels, namespace=ns)
    return resolve


def replay(fleet: Fleet, xr: dict[str, Any], resolve: Resolver,
           only_step: str | None = None) -> Outcome:
    """Run xr's pipeline once against the fleet's current state, answering through ``resolve``.

    With ``only_step``, only that pipeline step sees ``resolve``; every other step is answered
    from the store, so a fault is injected into exactly one step at a time.
    """
    load_steps()
    healthy = store_resolver(fleet)
    uid = xr["metadata"].get("uid", "")
    observed = {
        o["metadata"]["annotations"][RESOURCE_NAME_ANNOTATION]: o
        for o in fleet.store.owned_by(uid)
    }
    out = Outcome(observed=observed)
    comp = fleet.engine.composition_for(xr)
    context: dict[str, Any] = {"modelplane.ai/now": fleet.engine.now}
    desired: dict[str, Desired] = {}
    status: dict[str, Any] = {}
    for step in comp["spec"]["pipeline"]:
        reg = STEPS[step["input"]["step"]]
        answer = resolve if only_step in (None, reg.name) else healthy
        required: dict[str, list[dict[str, Any]]] = {}
        last: dict[str, Selector] | None = None
        for _ in range(6):
            req = StepRequest(step=reg.name, input=step["input"], composite=copy.deepcopy(xr),
                              observed=copy.deepcopy(observed), desired=copy.deepcopy(desired),
                              desired_composite_status=dict(status), context=dict(context),
                              required=required)
            res = reg.handler(req)
            if any(r.severity == "Fatal" for r in res.results):
                out.fatal = next(r.message for r in res.results if r.severity == "Fatal")
                return out
            if res.requirements == last or not res.requirements:
                break
            last = dict(res.requirements)
            required = {}
            for name, sel in res.requirements.items():
                got = answer(name, sel)
                if got is not None:
                    required[name] = got
        out.results.append(res)
        desired = res.desired
        status.update(res.status)
        context.update(res.context)
    out.desired = desired
    return out


def steps_of(fleet: Fleet, xr: dict[str, Any]) -> list[str]:
    """The pipeline step names of xr's Composition, in order."""
    return [str(s["input"]["step"]) for s in fleet.engine.composition_for(xr)["spec"]["pipeline"]]


def requirements_of(fleet: Fleet, xr: dict[str, Any], step_name: str) -> dict[str, Selector]:
    """Every required-resource set ``step_name`` declares for xr on a healthy fleet."""
    seen: dict[str, Selector] = {}
    base = store_resolver(fleet)

    def record(name: str, sel: Selector) -> list[dict[str, Any]] | None:
        seen[name] = sel
        return base(name, sel)

    replay(fleet, xr, record, only_step=step_name)
    return dict(sorted(seen.items()))


def xrs(fleet: Fleet) -> list[dict[str, Any]]:
    """Every XR of a Modelplane kind in the fleet."""
    return [o for o in fleet.objects() if str(o.get("apiVersion", "")).startswith("modelplane.ai/")]
