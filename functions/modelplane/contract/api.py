"""The API group, its versions and kind names."""

from __future__ import annotations

GROUP = "modelplane.ai"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
#: The apiVersion of every pipeline step's ``input`` (it names the step to run).
INPUT_API_VERSION = f"fn.{GROUP}/{VERSION}"

INFERENCE_CLASS = "InferenceClass"
INFERENCE_CLUSTER = "InferenceCluster"
INFERENCE_GATEWAY = "InferenceGateway"
MODEL_DEPLOYMENT = "ModelDeployment"
MODEL_REPLICA = "ModelReplica"
MODEL_SERVICE = "ModelService"
MODEL_ENDPOINT = "ModelEndpoint"
MODEL_CACHE = "ModelCache"
INFERENCE_TICKET = "InferenceTicket"


def is_ours(obj: object) -> bool:
    """Whether an object (a plain dict) is of the modelplane.ai group."""
    api_version = obj.get("apiVersion") if isinstance(obj, dict) else None
    return isinstance(api_version, str) and api_version.startswith(GROUP + "/")
