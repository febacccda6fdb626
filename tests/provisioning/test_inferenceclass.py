"""compose-class: a class is validated, and its devices are published with defaults applied."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from modelplane.step import StepRequest
from modelplane.steps import inferenceclass

from tests.provisioning.helpers import GKE_L4, klass


def run(spec: dict[str, Any]):  # type: ignore[no-untyped-def]
    return inferenceclass.compose(StepRequest("compose-class", {}, klass("k", spec)))


def test_valid_class_publishes_devices_with_defaults_and_is_ready() -> None:
    res = run({"devices": [{"name": "gpu", "driver": "gpu.nvidia.com"},
                           {"name": "nic", "driver": "rdma.example.com", "claim": "Synthetic",
                            "count": 2}]})
    assert res.composite_ready == "True"
    assert res.desired == {}
    assert res.status["devices"] == [
        {"name": "gpu", "driver": "gpu.nvidia.com", "claim": "DRA",
         "deviceClassName": "gpu.nvidia.com", "count": 1},
        {"name": "nic", "driver": "rdma.example.com", "claim": "Synthetic", "count": 2},
    ]


def test_explicit_device_class_name_is_kept() -> None:
    res = run({"devices": [{"name": "gpu", "driver": "gpu.nvidia.com",
                            "deviceClassName": "mig-1g.10gb"}]})
    assert res.status["devices"][0]["deviceClassName"] == "mig-1g.10gb"


def _with(path: str, value: Any) -> dict[str, Any]:
    spec = copy.deepcopy(GKE_L4)
    cur: Any = spec
    keys = path.split(".")
    for k in keys[:-1]:
        cur = cur[int(k)] if isinstance(cur, list) else cur[k]
    cur[keys[-1]] = value
    return spec


@pytest.mark.parametrize(("spec", "names"), [
    pytest.param(_with("provisioning.provider", "EKS"), "spec.provisioning.eks",
                 id="provisioning-block-must-match-provider"),
    pytest.param(_with("devices", [{"name": "gpu", "driver": "a.b"},
                                   {"name": "gpu", "driver": "a.b"}]),
                 "spec.devices[1].name 'gpu' is not unique", id="device-names-unique"),
    pytest.param(_with("devices.0.capacity", {"memory": {"value": "lots"}}),
                 "spec.devices[0].capacity.memory.value 'lots'", id="capacity-is-a-quantity"),
    pytest.param(_with("devices.0.count", 0), "spec.devices[0].count 0",
                 id="count-positive"),
    pytest.param(
        _with("devices", [{"name": "g", "driver": "a.b", "claim": "Synthetic",
                           "deviceClassName": "x"}]),
        "spec.devices[0].deviceClassName 'x' only applies to claim DRA",
        id="device-class-only-for-dra"),
])
def test_invalid_class_is_a_condition_naming_the_field(spec: dict[str, Any], names: str) -> None:
    res = run(spec)
    assert res.composite_ready == "False"
    valid = next(c for c in res.conditions if c.type == "Valid")
    assert valid.status == "False" and names in valid.message
    assert "devices" not in res.status  # the last published devices stay as they were
