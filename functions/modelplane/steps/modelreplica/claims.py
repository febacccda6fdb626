"""DRA: one ResourceClaimTemplate per claiming member, one request per device request."""

from __future__ import annotations

from typing import Any

from modelplane.steps.modelreplica.spec import Member

DRA_API_VERSION = "resource.k8s.io/v1"


def claim_template(name: str, namespace: str, labels: dict[str, str],
                   member: Member) -> dict[str, Any] | None:
    """The member's ResourceClaimTemplate, or None when it claims no devices.

    Each pod gets its own claim from the template, asking for exactly ``count`` devices of the
    DeviceClass that match every selector -- the same CEL the scheduler evaluated, verbatim, so
    the cluster's DRA allocator is the authority on what placement assumed.
    """
    if not member.devices:
        return None
    requests: list[dict[str, Any]] = []
    for d in member.devices:
        exactly: dict[str, Any] = {
            "deviceClassName": d.device_class_name,
            "allocationMode": "ExactCount",
            "count": d.count,
        }
        if d.selectors:
            exactly["selectors"] = [{"cel": {"expression": s}} for s in d.selectors]
        requests.append({"name": d.name, "exactly": exactly})
    return {
        "apiVersion": DRA_API_VERSION,
        "kind": "ResourceClaimTemplate",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {"metadata": {"labels": labels}, "spec": {"devices": {"requests": requests}}},
    }
