"""Elastic Fabric Adapter (EFA): the facts InferenceCluster, placement and validation share.

A pool with ``fabric: EFA`` (EKS only) launches its nodes with EFA network interfaces and the
cluster gets AWS's DRA network driver (DRANET, chart ``aws-dranet``), which publishes each EFA
interface as a DRA device of the DeviceClass :data:`EFA_DEVICE_CLASS` (driver name
:data:`EFA_DRIVER`). A class declares those devices like any other; the pods of a multi-node
engine then claim all of a node's EFA devices beside their GPUs, and placement counts them.

An InferenceClass device is an EFA device when its driver is :data:`EFA_DRIVER` or
:data:`EFA_DEVICE_CLASS`, or its ``deviceClassName`` is :data:`EFA_DEVICE_CLASS`. A platform
that installs the driver with another DeviceClass name (the chart's ``deviceClass.name``) writes
``driver: dra.net`` and its own ``deviceClassName``: that is what the claims then name.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

#: The DeviceClass the aws-dranet chart creates (its ``deviceClass.name`` default).
EFA_DEVICE_CLASS = "efa.networking.k8s.aws"
#: The driver name DRANET publishes its ResourceSlices under.
EFA_DRIVER = "dra.net"
#: The device name a pool publishes for EFA when its class declares no EFA device itself.
DEFAULT_DEVICE_NAME = "efa"

#: EFA interfaces per instance, by EC2 instance type: one per network card, as AWS recommends
#: for the accelerated instance types (EC2 User Guide, "Maximize network bandwidth ... with
#: EFA"). A type not listed is not known to be EFA-capable: a pool of it with ``fabric: EFA``
#: gets a condition unless its class declares how many EFA devices a node has (that count,
#: when declared, is what the launch template attaches).
EFA_INTERFACES: Mapping[str, int] = {
    "p4d.24xlarge": 4,
    "p4de.24xlarge": 4,
    "p5.48xlarge": 32,
    "p5e.48xlarge": 32,
    "p5en.48xlarge": 16,
}


def is_efa_device(device: Mapping[str, Any]) -> bool:
    """Whether a (resolved or raw) class device entry is an EFA device."""
    driver = str(device.get("driver") or "")
    device_class = str(device.get("deviceClassName") or driver)
    return driver in (EFA_DRIVER, EFA_DEVICE_CLASS) or device_class == EFA_DEVICE_CLASS


def declared_count(devices: Iterable[Mapping[str, Any]]) -> int:
    """EFA devices one node of the class offers, as its devices declare them (0: none)."""
    total = 0
    for d in devices:
        if is_efa_device(d) and (d.get("claim") or "DRA") == "DRA":
            count = d.get("count", 1)
            total += count if isinstance(count, int) and not isinstance(count, bool) else 1
    return total


def interfaces(instance_type: str, devices: Iterable[Mapping[str, Any]]) -> int | str:
    """How many EFA interfaces a node of this shape gets, or why it cannot have any.

    The class's declared EFA devices win (they are what pods will claim); otherwise the
    instance type's entry in :data:`EFA_INTERFACES`. A declared count above the instance
    type's known maximum is refused: the launch would fail.
    """
    declared = declared_count(devices)
    known = EFA_INTERFACES.get(instance_type)
    if declared and known is not None and declared > known:
        return (f"its class declares {declared} EFA devices per node but instance type "
                f"{instance_type!r} has at most {known} EFA interfaces")
    if declared:
        return declared
    if known is not None:
        return known
    return (f"instance type {instance_type!r} is not an EFA-capable instance type Modelplane "
            f"knows ({', '.join(sorted(EFA_INTERFACES))}); declare the class's EFA devices "
            f"(driver {EFA_DRIVER}, deviceClassName {EFA_DEVICE_CLASS}, count = interfaces per "
            "node) to use another")


def default_device(count: int) -> dict[str, Any]:
    """The EFA device entry a ``fabric: EFA`` pool publishes when its class declares none."""
    return {"name": DEFAULT_DEVICE_NAME, "driver": EFA_DRIVER, "claim": "DRA",
            "deviceClassName": EFA_DEVICE_CLASS, "count": count}
