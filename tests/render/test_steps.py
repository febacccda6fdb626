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


@step("test-semantics", kinds=["Parent"])
def semantics(req: StepRequest) -> StepResult:
    """Optional behaviours a test switches on through spec (after test-parent and -context)."""
    res = StepResult(desired=dict(req.desired), status=dict(req.desired_composite_status))
    spec = req.spec
    if spec.get("extraStatus"):
        res.status["extra"] = spec["extraStatus"]
    if spec.get("blobBytes"):
        res.status["blob"] = "x" * int(spec["blobBytes"])
    if spec.get("clusterScoped"):
        res.desired["namespace"] = Desired({"apiVersion": "v1", "kind": "Namespace",
                                            "metadata": {"name": f"{req.name}-ns"}})
    for of in spec.get("protect") or []:
        res.desired[f"usage-{of}"] = Desired({
            "apiVersion": "protection.crossplane.io/v1beta1", "kind": "Usage",
            "metadata": {"name": f"{req.name}-protects-{of}"},
            "spec": {"of": {"apiVersion": "test.modelplane.ai/v1", "kind": "Child",
                            "resourceRef": {"name": f"{req.name}-{of}"}},
                     "reason": "a test protects it"}}, ready="True")
    if spec.get("offer"):
        res.desired["offer"] = Desired({"apiVersion": "v1", "kind": "ConfigMap",
                                        "metadata": {"name": f"{req.name}-offer",
                                                     "labels": {"pick": "me"}}}, ready="True")
    # What this XR saw the first time it resolved its required ConfigMaps (kept from status).
    if "picked" in res.status:
        res.status["firstPicked"] = req.status.get("firstPicked", res.status["picked"])
    return res


@step("test-root", kinds=["Root"])
def root(req: StepRequest) -> StepResult:
    """A cluster-scoped XR composing a ConfigMap in spec.namespace (and that Namespace, if
    spec.createNamespace)."""
    res = StepResult()
    ns = str(req.spec.get("namespace", "absent"))
    if req.spec.get("createNamespace"):
        res.desired["namespace"] = Desired({"apiVersion": "v1", "kind": "Namespace",
                                            "metadata": {"name": ns}}, ready="True")
    res.desired["config"] = Desired({"apiVersion": "v1", "kind": "ConfigMap",
                                     "metadata": {"name": req.name, "namespace": ns}},
                                    ready="True")
    return res
