"""Warm-up requests the server runs once per worker process before it serves.

The first placing reconcile after a start would otherwise pay for importing the step modules'
lazily loaded parts, building the CEL parser and compiling a device selector, on top of the
reconcile itself (several times a warm one). A tiny fleet exercises the same code paths: a
class, a cluster with its capacity summary, and a deployment with a CEL selector to place.
"""

from __future__ import annotations

from typing import Any

from modelplane.contract import capacity
from modelplane.contract.api import (
    API_VERSION,
    INFERENCE_CLASS,
    INFERENCE_CLUSTER,
    MODEL_DEPLOYMENT,
)
from modelplane.contract.inferenceclass import resolve_devices
from modelplane.placement import capacity as summary

_DEVICE = {"name": "gpu", "driver": "gpu.nvidia.com", "claim": "DRA", "count": 1,
           "capacity": {"memory": {"value": "24Gi"}}}
_SELECTOR = 'device.capacity["gpu.nvidia.com"].memory.compareTo(quantity("20Gi")) >= 0'


def requests() -> list[tuple[str, dict[str, Any], dict[str, Any], dict[str, list[Any]]]]:
    """(step, composite, context, required resources) to run once, in order."""
    spec: dict[str, Any] = {"devices": [_DEVICE]}
    klass = {"apiVersion": API_VERSION, "kind": INFERENCE_CLASS,
             "metadata": {"name": "warm-up"}, "spec": spec}
    pool = {"name": "p", "className": "warm-up", "nodeCeiling": 1, "ready": True,
            "devices": resolve_devices(spec), "allocated": []}
    text = summary.summary("warm-up", {}, [], True, None, [pool])
    config_map = {"apiVersion": "v1", "kind": "ConfigMap",
                  "metadata": {"name": capacity.object_name("warm-up"),
                               "namespace": capacity.NAMESPACE,
                               "labels": {capacity.LABEL: capacity.LABEL_VALUE},
                               "ownerReferences": [{"apiVersion": API_VERSION,
                                                    "kind": INFERENCE_CLUSTER,
                                                    "name": "warm-up", "uid": "warm-up",
                                                    "controller": True}]},
                  "data": {capacity.DATA_KEY: text}}
    md = {"apiVersion": API_VERSION, "kind": MODEL_DEPLOYMENT,
          "metadata": {"name": "warm-up", "namespace": "warm-up"},
          "spec": {"replicas": 1, "engines": [{"name": "e", "members": [{
              "role": "Standalone", "template": {"spec": {"containers": []}},
              "nodeSelector": {"devices": [{"name": "gpu", "count": 1,
                                            "selectors": [{"cel": _SELECTOR}]}]}}]}]}}
    context = {"modelplane.ai/now": "2026-01-01T00:00:00Z"}
    return [("place", md, context, {"classes": [klass], "capacity": [config_map]}),
            ("compose-deployment", md, context, {})]
