"""Test-only pipeline steps that exercise the local control plane's Crossplane semantics."""

from __future__ import annotations

from modelplane.step import Desired, Selector, StepRequest, StepResult, require, step


@step("test-parent", kinds=["Parent"])
def parent(req: StepRequest) -> StepResult:
    if req.spec.get("boom"):
        raise RuntimeError("boom requested by spec.boom")
    res = StepResult()
    picks = require(req, res, "picks", Selector.labels("v1", "ConfigMap", {"pick": "me"}))
    if picks is not None:
        res.status["picked"] = sorted(p["metadata"]["name"] for p in picks)
    for child in req.spec.get("children", []):
        res.desired[f"child-{child}"] = Desired({
            "apiVersion": "test.modelplane.ai/v1", "kind": "Child",
            "metadata": {"name": f"{req.name}-{child}"},
            "spec": {"value": child},
        })
    for name, d in res.desired.items():
        obs = req.observed.get(name, {})
        conds = (obs.get("status") or {}).get("conditions") or []
        if any(c["type"] == "Ready" and c["status"] == "True" for c in conds):
            d.ready = "True"
    if req.spec.get("flap"):
        res.status["counter"] = int(req.status.get("counter", 0)) + 1
    res.context["test/children"] = len(req.spec.get("children", []))
    res.condition("Picked", "True" if picks else "False", "Picked" if picks else "NothingPicked")
    return res


@step("test-context", kinds=["Parent"])
def from_context(req: StepRequest) -> StepResult:
    res = StepResult(desired=req.desired)
    res.status["fromContext"] = req.context.get("test/children")
    return res


@step("test-child", kinds=["Child"])
def child(req: StepRequest) -> StepResult:
    res = StepResult()
    res.desired["config"] = Desired({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": f"{req.name}-config"},
        "data": {"value": str(req.spec.get("value"))},
    }, ready="True")
    return res
