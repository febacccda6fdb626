"""What an InferenceClass promises: when its spec is usable, and the devices one node offers.

InferenceClass publishes the devices (defaults applied) on ``status.devices``; InferenceCluster
checks each pool's class with :func:`problems` and copies the devices into
``status.pools[].devices``; placement matches device requests against them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# A quantity is a value type of the API (as in Kubernetes' apimachinery), not CEL machinery.
from modelplane.cel.quantity import is_quantity

PROVIDERS = ("GKE", "EKS", "AKS")
_BLOCK = {"GKE": "gke", "EKS": "eks", "AKS": "aks"}


def resolve_device(device: Mapping[str, Any]) -> dict[str, Any]:
    """One device entry with defaults applied: claim DRA, DeviceClass = driver, count 1."""
    out: dict[str, Any] = {"name": str(device.get("name", "")),
                           "driver": str(device.get("driver", ""))}
    claim = str(device.get("claim") or "DRA")
    out["claim"] = claim
    if claim == "DRA":
        out["deviceClassName"] = str(device.get("deviceClassName") or out["driver"])
    count = device.get("count")
    out["count"] = int(count) if isinstance(count, int) and not isinstance(count, bool) else 1
    for key in ("attributes", "capacity"):
        value = device.get(key)
        if isinstance(value, Mapping) and value:
            out[key] = {k: dict(v) if isinstance(v, Mapping) else v
                        for k, v in sorted(value.items())}
    if isinstance(device.get("allowMultipleAllocations"), bool):
        out["allowMultipleAllocations"] = device["allowMultipleAllocations"]
    return out


def resolve_devices(spec: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every device of a class spec with defaults applied, in declaration order."""
    devices = spec.get("devices")
    if not isinstance(devices, list):
        return []
    return [resolve_device(d) for d in devices if isinstance(d, Mapping)]


def class_devices(cls: Mapping[str, Any]) -> list[dict[str, Any]]:
    """What a class offers: its published ``status.devices``, else its spec resolved.

    Entries without a name or driver are left out: they cannot be matched or claimed.
    """
    status = cls.get("status")
    published = status.get("devices") if isinstance(status, Mapping) else None
    if isinstance(published, list) and published:
        entries = [resolve_device(d) for d in published if isinstance(d, Mapping)]
    else:
        spec = cls.get("spec")
        entries = resolve_devices(spec if isinstance(spec, Mapping) else {})
    return [e for e in entries if e["name"] and e["driver"]]


def problems(spec: Mapping[str, Any]) -> list[str]:
    """Every way a class spec is unusable, each naming the field and the offending value."""
    out: list[str] = []
    prov = spec.get("provisioning")
    if prov is not None:
        if not isinstance(prov, Mapping):
            out.append(f"spec.provisioning must be an object, got {prov!r}")
        else:
            provider = prov.get("provider")
            if provider not in PROVIDERS:
                out.append(f"spec.provisioning.provider {provider!r} is not one of "
                           f"{', '.join(PROVIDERS)}")
            for p, block in sorted(_BLOCK.items()):
                if provider == p and not isinstance(prov.get(block), Mapping):
                    out.append(f"spec.provisioning.{block} is required when provider is {p}")
                if provider != p and block in prov:
                    out.append(f"spec.provisioning.{block} is set but provider is {provider!r}")
    devices = spec.get("devices")
    if not isinstance(devices, list):
        out.append(f"spec.devices must be a list, got {devices!r}")
        return out
    seen: set[str] = set()
    for i, dev in enumerate(devices):
        where = f"spec.devices[{i}]"
        if not isinstance(dev, Mapping):
            out.append(f"{where} must be an object, got {dev!r}")
            continue
        name = dev.get("name")
        if not name:
            out.append(f"{where}.name is required")
        elif name in seen:
            out.append(f"{where}.name {name!r} is not unique")
        else:
            seen.add(str(name))
        if not dev.get("driver"):
            out.append(f"{where}.driver is required")
        claim = dev.get("claim", "DRA")
        if claim not in ("DRA", "Synthetic"):
            out.append(f"{where}.claim {claim!r} is not DRA or Synthetic")
        if dev.get("deviceClassName") and claim != "DRA":
            out.append(f"{where}.deviceClassName {dev['deviceClassName']!r} only applies to "
                       f"claim DRA (claim is {claim!r})")
        count = dev.get("count", 1)
        if not isinstance(count, int) or isinstance(count, bool) or count < 1:
            out.append(f"{where}.count {count!r} must be a positive integer")
        capacity = dev.get("capacity") or {}
        if not isinstance(capacity, Mapping):
            out.append(f"{where}.capacity must be an object, got {capacity!r}")
            continue
        for cname, cap in sorted(capacity.items()):
            value = cap.get("value") if isinstance(cap, Mapping) else None
            if not isinstance(value, str) or not is_quantity(value):
                out.append(f"{where}.capacity.{cname}.value {value!r} is not a Kubernetes "
                           f"quantity")
    return out


# -- eks.accelerator against the devices -----------------------------------------------------

#: The DRA driver that publishes each accelerator kind's devices, by kind.
ACCELERATOR_DRIVERS = {"NVIDIA": "gpu.nvidia.com", "Neuron": "neuron.aws.com"}


def accelerator_kind(accelerator_type: str) -> str | None:
    """The accelerator kind an ``accelerator.type`` names (NVIDIA, Neuron), None if unknown."""
    t = accelerator_type.lower()
    if t.startswith("nvidia"):
        return "NVIDIA"
    if any(k in t for k in ("neuron", "trainium", "inferentia")):
        return "Neuron"
    return None


def accelerator_disagreement(spec: Mapping[str, Any]) -> str | None:
    """How ``spec.provisioning.eks.accelerator`` disagrees with the class's devices, if it does.

    They disagree when the accelerator names a kind (NVIDIA, Neuron) and the class's DRA
    devices name another kind's driver but none of its own. A kind or driver Modelplane does
    not know is not judged (unknown is not a disagreement).
    """
    prov = spec.get("provisioning")
    eks = prov.get("eks") if isinstance(prov, Mapping) else None
    acc = eks.get("accelerator") if isinstance(eks, Mapping) else None
    if not isinstance(acc, Mapping) or not acc.get("type"):
        return None
    kind = accelerator_kind(str(acc["type"]))
    if kind is None:
        return None
    drivers = {d["driver"]: d["name"] for d in resolve_devices(spec) if d["claim"] == "DRA"}
    own = ACCELERATOR_DRIVERS[kind]
    others = sorted(f"{drv} (device {name!r})" for drv, name in drivers.items()
                    if drv in ACCELERATOR_DRIVERS.values() and drv != own)
    if own in drivers or not others:
        return None
    return (f"spec.provisioning.eks.accelerator.type {str(acc['type'])!r} names a {kind} "
            f"accelerator (driver {own}) but spec.devices claim {', '.join(others)}")
