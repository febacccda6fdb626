"""Names and labels of everything a ModelReplica composes.

Remote objects live on the inference cluster in a namespace named like the replica's own; their
names always include the replica name, so two replicas of one deployment on one cluster never
collide. ``modelplane.common.names.dns_label`` keeps every name a valid DNS label, shortening long
ones with a stable hash.
"""

from __future__ import annotations

import re

from modelplane.common.names import dns_label
from modelplane.contract.metadata import DEPLOYMENT_LABEL, REPLICA_LABEL

# LeaderWorkerSet derives StatefulSet and pod names (<lws>-<group>-<worker>) and a
# controller-revision-hash label (<statefulset>-<10 chars>) from its name; both must stay DNS
# labels, so workload names leave room for those suffixes.
WORKLOAD_NAME_MAX = 45

MANAGED_BY = {"app.kubernetes.io/managed-by": "modelplane"}

_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def label_value(value: str) -> str:
    """A label value for a name: itself when it is one, else a hashed DNS label."""
    return value if len(value) <= 63 and _LABEL_VALUE.match(value) else dns_label(value)


def dns1035(*parts: str) -> str:
    """A DNS-1035 label (starts with a letter), as Service names must be."""
    name = dns_label(*parts)
    return name if name[0].isalpha() else dns_label("m", *parts)


def workload(replica: str, engine: str) -> str:
    """The Deployment or LeaderWorkerSet of one engine of one replica."""
    return dns_label(replica, engine, max_len=WORKLOAD_NAME_MAX)


def claim_template(replica: str, engine: str, role: str) -> str:
    return dns_label(replica, engine, role.lower())


def service(replica: str) -> str:
    return dns1035(replica)


def route(replica: str) -> str:
    return dns_label(replica)


def inference_pool(replica: str) -> str:
    return dns_label(replica)


def endpoint_picker(replica: str) -> str:
    """The Service of the endpoint picker the InferencePool expects (not composed; see docs)."""
    return dns1035(replica, "epp")


def object_name(replica: str, *what: str) -> str:
    """A provider-kubernetes Object on the control plane (in the replica's namespace)."""
    return dns_label(replica, *what)


def replica_labels(deployment: str, replica: str) -> dict[str, str]:
    """Labels on every remote object of a replica (values kept valid for long names)."""
    return {DEPLOYMENT_LABEL: label_value(deployment), REPLICA_LABEL: label_value(replica),
            **MANAGED_BY}
