"""modelplane validate: a ``fabric: EFA`` pool whose class, validated with it, cannot have EFA."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from modelplane.validate import validate_paths

CLUSTER = {"apiVersion": "modelplane.ai/v1alpha1", "kind": "InferenceCluster",
           "metadata": {"name": "east"},
           "spec": {"cluster": {"source": "EKS", "eks": {"region": "us-east-1"}},
                    "nodePools": [{"name": "gpu", "className": "c", "nodeCount": 2,
                                   "fabric": "EFA"}]}}


def klass(instance_type: str, efa: int | None = None) -> dict[str, object]:
    devices: list[dict[str, object]] = [{"name": "gpu", "driver": "gpu.nvidia.com", "count": 8}]
    if efa is not None:
        devices.append({"name": "efa", "driver": "dra.net", "count": efa})
    return {"apiVersion": "modelplane.ai/v1alpha1", "kind": "InferenceClass",
            "metadata": {"name": "c"},
            "spec": {"provisioning": {"provider": "EKS", "eks": {
                "instanceType": instance_type,
                "accelerator": {"type": "nvidia-h100-80gb", "count": 8}}},
                "devices": devices}}


def errors(tmp_path: Path, *docs: dict[str, object]) -> list[str]:
    f = tmp_path / "fleet.yaml"
    f.write_text(yaml.safe_dump_all(docs))
    return [p.line() for p in validate_paths([str(f)])]


def test_an_instance_type_without_efa_is_rejected_naming_field_value_and_type(
        tmp_path: Path) -> None:
    [line] = errors(tmp_path, klass("g6.2xlarge"), CLUSTER)
    assert "spec.nodePools[0].fabric: 'EFA' with InferenceClass 'c'" in line
    assert "'g6.2xlarge'" in line


def test_more_efa_devices_than_the_type_has_are_rejected(tmp_path: Path) -> None:
    [line] = errors(tmp_path, klass("p4d.24xlarge", efa=8), CLUSTER)
    assert "declares 8 EFA devices" in line and "at most 4" in line


@pytest.mark.parametrize(("instance_type", "efa"), [
    ("p5.48xlarge", None), ("p5en.48xlarge", 16), ("p6-b200.48xlarge", 8)])
def test_efa_capable_shapes_validate(tmp_path: Path, instance_type: str,
                                     efa: int | None) -> None:
    assert errors(tmp_path, klass(instance_type, efa), CLUSTER) == []


def test_a_class_not_validated_with_the_cluster_is_not_judged(tmp_path: Path) -> None:
    assert [e for e in errors(tmp_path, CLUSTER) if "fabric" in e] == []
