"""InferenceClass: eks.accelerator must name the kind of accelerator the class's devices are.

The disagreement is reported on the class (where the platform engineer defines the lane) and
drops nothing: the class stays Valid and Ready and its devices stay published.
"""

from __future__ import annotations

from typing import Any

import pytest
from modelplane.step import StepRequest, StepResult
from modelplane.steps import inferenceclass

from tests.provisioning.helpers import klass

GPU = {"name": "gpu", "driver": "gpu.nvidia.com", "count": 8}
NEURON = {"name": "neuron", "driver": "neuron.aws.com", "count": 16}


def run(accelerator: str, devices: list[dict[str, Any]]) -> StepResult:
    spec = {"provisioning": {"provider": "EKS", "eks": {
        "instanceType": "p5.48xlarge", "accelerator": {"type": accelerator, "count": 8}}},
        "devices": devices}
    return inferenceclass.compose(StepRequest("compose-class", {}, klass("k", spec)))


def consistency(res: StepResult) -> list[tuple[str, str, str | None]]:
    return [(c.status, c.reason, c.message) for c in res.conditions
            if c.type == "AcceleratorConsistent"]


@pytest.mark.parametrize(("accelerator", "devices", "kind", "claimed"), [
    ("nvidia-h100-80gb", [NEURON], "NVIDIA", "neuron.aws.com (device 'neuron')"),
    ("aws-trainium2", [GPU], "Neuron", "gpu.nvidia.com (device 'gpu')"),
])
def test_an_accelerator_of_another_kind_than_the_devices_names_both(
        accelerator: str, devices: list[dict[str, Any]], kind: str, claimed: str) -> None:
    res = run(accelerator, devices)
    [(status, reason, message)] = consistency(res)
    assert (status, reason) == ("False", "AcceleratorMismatch")
    assert f"spec.provisioning.eks.accelerator.type {accelerator!r}" in (message or "")
    assert f"names a {kind} accelerator" in (message or "")
    assert claimed in (message or "")


def test_the_disagreement_drops_nothing() -> None:
    res = run("nvidia-h100-80gb", [NEURON])
    assert res.composite_ready == "True"
    assert [d["name"] for d in res.status["devices"]] == ["neuron"]
    assert [(c.type, c.status) for c in res.conditions if c.type == "Valid"] == [
        ("Valid", "True")]


@pytest.mark.parametrize(("accelerator", "devices"), [
    ("nvidia-h100-80gb", [GPU]),
    ("nvidia-h100-80gb", [GPU, {"name": "efa", "driver": "dra.net", "count": 32}]),
    ("aws-inferentia2", [NEURON]),
    ("amd-mi300x", [GPU]),  # a kind Modelplane does not know is not judged
    ("nvidia-h100-80gb", [{"name": "x", "driver": "gpu.example.com"}]),  # nor an unknown driver
])
def test_agreeing_or_unknown_kinds_report_no_disagreement(
        accelerator: str, devices: list[dict[str, Any]]) -> None:
    assert consistency(run(accelerator, devices)) == []
