"""On fleets and tickets no other test contains (seeded), the ticket's answer is right and its
fit prediction agrees with what render places once the implied ModelDeployment exists."""

from __future__ import annotations

import copy
import random
from pathlib import Path
from typing import Any

import pytest
import yaml
from modelplane.render import render_fleet
from modelplane.steps.inferenceticket.ticket import implied

REGIONS = {"eu-west": "eu", "eu-north": "eu", "us-east": "us"}
NS = "gen"


def _doc(kind: str, name: str, spec: dict[str, Any], labels: dict[str, str] | None = None,
         ns: str | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if labels:
        meta["labels"] = labels
    if ns:
        meta["namespace"] = ns
    return {"apiVersion": "modelplane.ai/v1alpha1", "kind": kind, "metadata": meta, "spec": spec}


def generate(seed: int) -> tuple[list[dict[str, Any]], dict[str, Any], dict[str, Any]]:
    """(fleet objects, ticket, the facts an independent oracle reads off them)."""
    rnd = random.Random(seed)
    classes: dict[str, tuple[int, int]] = {}
    fleet: list[dict[str, Any]] = [_doc("InferenceGateway", "default", {
        "backend": "Traefik", "traefik": {"version": "40.2.0"}})]
    for i in range(rnd.randint(2, 4)):
        mem, per_node = rnd.choice([16, 24, 48, 80, 96]), rnd.choice([1, 2, 4])
        name = f"class-{i}"
        classes[name] = (mem, per_node)
        fleet.append(_doc("InferenceClass", name, {"devices": [{
            "name": "gpu", "driver": "gpu.nvidia.com", "count": per_node,
            "capacity": {"memory": {"value": f"{mem}Gi"}}}]}))
    clusters: dict[str, tuple[dict[str, str], list[str]]] = {}
    for i in range(rnd.randint(2, 4)):
        region = rnd.choice(sorted(REGIONS))
        labels = {"modelplane.ai/region": region, "modelplane.ai/jurisdiction": REGIONS[region]}
        pools = rnd.sample(sorted(classes), rnd.randint(1, min(2, len(classes))))
        name = f"cluster-{i}"
        clusters[name] = (labels, pools)
        fleet.append(_doc("InferenceCluster", name, {
            "cluster": {"source": "GKE",
                        "gke": {"project": "gen-project", "region": "europe-west4"}},
            "nodePools": [{"name": f"p-{c}", "className": c, "minNodeCount": 0,
                           "maxNodeCount": rnd.randint(1, 3)} for c in pools]}, labels))
    gpus, memory = rnd.choice([1, 2]), rnd.choice([16, 24, 40, 80])
    replicas = rnd.randint(1, 4)
    spec: dict[str, Any] = {
        "model": {"name": "org/model", "job": "generated"},
        "engine": {"image": "vllm/vllm-openai:v0.11.0"},
        "hardware": {"gpus": gpus, "memory": f"{memory}Gi"},
        "scaling": {"replicas": replicas, "maxReplicas": replicas + rnd.randint(0, 6)},
        "endpoint": {"service": "svc", "owner": "oncall@example.com"},
        "overflow": {"none": True}, "cache": {"none": True},
        "lifecycle": {"rollback": "delete", "retireAfter": "2099-01-01"},
    }
    region = rnd.choice([None, *sorted(REGIONS)])
    spec["fleet"] = {"clusterSelector": {"matchLabels": {"modelplane.ai/region": region}}
                     if region else {}}
    jurisdiction = rnd.choice([None, "eu", "us"])
    spec["sovereignty"] = ({"dataBoundary": {"matchLabels": {
        "modelplane.ai/jurisdiction": jurisdiction}}} if jurisdiction else {"none": True})
    ticket = _doc("InferenceTicket", f"t{seed}", spec, ns=NS)
    lanes = sorted(c for c, (mem, per_node) in classes.items()
                   if mem >= memory and per_node >= gpus)
    inside = sorted(n for n, (labels, pools) in clusters.items()
                    if (region is None or labels["modelplane.ai/region"] == region)
                    and (jurisdiction is None
                         or labels["modelplane.ai/jurisdiction"] == jurisdiction)
                    and set(pools) & set(lanes))
    return fleet, ticket, {"lanes": lanes, "clusters": inside}


def _render(tmp: Path, docs: list[dict[str, Any]]) -> Any:
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "fleet.yaml").write_text(yaml.safe_dump_all(docs))
    return render_fleet([tmp])


@pytest.mark.parametrize("seed", [11, 23, 37, 41, 58, 64])
def test_prediction_agrees_with_placement(seed: int, tmp_path: Path) -> None:
    fleet, ticket, truth = generate(seed)
    answered = _render(tmp_path / "check", [*fleet, ticket])
    status = answered.get("InferenceTicket", ticket["metadata"]["name"], NS)["status"]
    assert status["lanes"] == truth["lanes"]
    assert status["clusters"] == truth["clusters"]

    classes = [d for d in fleet if d["kind"] == "InferenceClass"]
    md = implied(ticket, classes).deployment
    assert md is not None
    replicas, peak = (ticket["spec"]["scaling"][k] for k in ("replicas", "maxReplicas"))
    for wanted, predicted in ((replicas, status["fitsNow"]), (peak, status["fitsAtPeak"])):
        placed_md = copy.deepcopy(md)
        placed_md["spec"]["replicas"] = wanted
        got = _render(tmp_path / f"place-{wanted}", [*fleet, placed_md]).get(
            "ModelDeployment", md["metadata"]["name"], NS)
        scheduled = got["status"]["scheduledReplicas"]
        on = {p["cluster"] for p in got["status"].get("placements") or []}
        if status["clusters"]:
            assert (scheduled == wanted) is predicted, (wanted, scheduled, status["reasons"])
            assert on <= set(status["clusters"])
        else:
            assert predicted is False


@pytest.mark.parametrize("seed", [11, 23, 37, 41, 58, 64])
def test_deploy_true_composes_only_what_the_answer_says_runs(seed: int, tmp_path: Path) -> None:
    fleet, ticket, _ = generate(seed)
    ticket["spec"]["deploy"] = True
    rendered = _render(tmp_path, [*fleet, ticket])
    status = rendered.get("InferenceTicket", ticket["metadata"]["name"], NS)["status"]
    md = rendered.get("ModelDeployment", ticket["metadata"]["name"], NS)
    if status["runnable"]:
        assert md is not None
        assert md["status"]["scheduledReplicas"] == ticket["spec"]["scaling"]["replicas"]
    else:
        assert md is None
