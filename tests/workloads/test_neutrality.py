"""Engine neutrality: the user's pod spec passes through; Modelplane only adds what it owns."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from modelplane.steps.modelreplica.compose import compose

from tests.conformance import problems
from tests.workloads.fixtures import (
    cluster,
    manifests,
    modelcache,
    replica,
    request,
    standalone,
)

USER_CONTAINER: dict[str, Any] = {
    "name": "server",
    "image": "lmsysorg/sglang:v0.4.6",
    "command": ["python3", "-m", "sglang.launch_server"],
    "args": ["--model-path", "Qwen/Qwen2.5-7B-Instruct", "--port", "30000", "--tp", "1"],
    "env": [
        {"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": "hf", "key": "token"}}},
        {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        {"name": "LOG_LEVEL", "value": "debug"},
    ],
    "ports": [{"name": "api", "containerPort": 30000, "protocol": "TCP"}],
    "resources": {"requests": {"cpu": "4", "memory": "32Gi"}, "limits": {"memory": "32Gi"}},
    "volumeMounts": [{"name": "scratch", "mountPath": "/scratch"}],
    "readinessProbe": {"httpGet": {"path": "/health_generate", "port": 30000}},
    "livenessProbe": {"tcpSocket": {"port": 30000}, "initialDelaySeconds": 600},
}
USER_SIDECAR: dict[str, Any] = {"name": "metrics", "image": "example.com/exporter:1"}
USER_POD: dict[str, Any] = {
    "containers": [USER_CONTAINER, USER_SIDECAR],
    "volumes": [{"name": "scratch", "emptyDir": {}}],
    "terminationGracePeriodSeconds": 120,
    "runtimeClassName": "nvidia",
    "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
}
# What Modelplane may add to the engine container; nothing else may differ.
OWNED_CONTAINER_FIELDS = {"resources", "volumeMounts", "ports", "readinessProbe", "args"}


def _pod(xr: dict[str, Any], caches: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    out = manifests(compose(request(xr, clusters=[cluster()], caches=caches)).desired)
    pod: dict[str, Any] = out["workload-sglang"]["spec"]["template"]
    return pod


def _xr(pod: dict[str, Any], **spec: Any) -> dict[str, Any]:
    member = standalone()
    member["template"] = {"metadata": {"labels": {"team": "nlp"},
                                       "annotations": {"example.com/note": "keep"}},
                          "spec": copy.deepcopy(pod)}
    return replica(engines=[{"name": "sglang", "members": [member]}], **spec)


@pytest.mark.parametrize("field", sorted(USER_CONTAINER))
def test_user_container_field_passes_through_verbatim(field: str) -> None:
    got = _pod(_xr(USER_POD))["spec"]["containers"][0]
    if field in ("resources", "volumeMounts"):
        # Additive only: the user's entries stay, first and unchanged.
        if field == "resources":
            assert {k: v for k, v in got[field].items() if k != "claims"} == USER_CONTAINER[field]
        else:
            assert got[field][: len(USER_CONTAINER[field])] == USER_CONTAINER[field]
    else:
        assert got[field] == USER_CONTAINER[field]


# Placement and identity fields (nodeSelector, tolerations, serviceAccountName, ...) are not
# the user's to set: the pod policy refuses them (tests/security/test_podpolicy.py).
@pytest.mark.parametrize("field", ["terminationGracePeriodSeconds", "runtimeClassName",
                                   "securityContext"])
def test_user_pod_fields_pass_through_verbatim(field: str) -> None:
    assert _pod(_xr(USER_POD))["spec"][field] == USER_POD[field]


def test_user_volumes_and_metadata_are_kept() -> None:
    pod = _pod(_xr(USER_POD))
    assert pod["spec"]["volumes"][0] == USER_POD["volumes"][0]
    assert pod["metadata"]["labels"]["team"] == "nlp"
    assert pod["metadata"]["annotations"] == {"example.com/note": "keep"}


def test_user_port_and_probe_are_not_replaced() -> None:
    engine = _pod(_xr(USER_POD))["spec"]["containers"][0]
    assert engine["ports"] == USER_CONTAINER["ports"]
    assert engine["readinessProbe"] == USER_CONTAINER["readinessProbe"]


def test_port_and_health_probe_are_added_only_when_the_user_set_none() -> None:
    engine = _pod(_xr({"containers": [{"name": "e", "image": "example.com/engine:1"}]}))[
        "spec"]["containers"][0]
    assert engine["ports"] == [{"name": "http", "containerPort": 8000, "protocol": "TCP"}]
    assert engine["readinessProbe"]["httpGet"] == {"path": "/health", "port": 8000}


def test_service_targets_the_users_port() -> None:
    out = manifests(compose(request(_xr(USER_POD))).desired)
    assert out["service"]["spec"]["ports"][0]["targetPort"] == 30000


def test_shm_is_added_unless_the_user_mounts_dev_shm() -> None:
    pod = _pod(_xr(USER_POD))["spec"]
    assert {"name": "modelplane-shm", "emptyDir": {"medium": "Memory"}} in pod["volumes"]
    own = copy.deepcopy(USER_POD)
    own["containers"] = [{**USER_CONTAINER, "volumeMounts": [
        {"name": "shm", "mountPath": "/dev/shm"}]}]
    own["volumes"] = [{"name": "shm", "emptyDir": {"medium": "Memory", "sizeLimit": "8Gi"}}]
    pod = _pod(_xr(own))["spec"]
    assert pod["volumes"] == own["volumes"]
    assert pod["containers"][0]["volumeMounts"] == own["containers"][0]["volumeMounts"]


def test_cache_is_mounted_read_only_at_models() -> None:
    pod = _pod(_xr(USER_POD, modelCacheRef={"name": "qwen-weights"}),
               caches=[modelcache()])["spec"]
    assert {"name": "modelplane-model-cache", "persistentVolumeClaim": {
        "claimName": "modelcache-qwen-weights", "readOnly": True}} in pod["volumes"]
    for c in pod["containers"]:
        assert {"name": "modelplane-model-cache", "mountPath": "/models",
                "readOnly": True} in c["volumeMounts"]


VLLM = "vllm/vllm-openai:v0.7.3"


@pytest.mark.parametrize(("container", "added"), [
    ({"name": "e", "image": VLLM},
     ["--model=/models/Qwen/Qwen2.5-0.5B-Instruct",
      "--served-model-name=Qwen/Qwen2.5-0.5B-Instruct"]),
    ({"name": "e", "image": VLLM, "args": ["--served-model-name=qwen", "--max-model-len=4096"]},
     ["--model=/models/Qwen/Qwen2.5-0.5B-Instruct"]),
    ({"name": "e", "image": VLLM, "args": ["--model=Qwen/Qwen2.5-0.5B-Instruct"]}, []),
    ({"name": "e", "image": VLLM, "args": ["--model", "/data/mine"]}, []),
    ({"name": "e", "image": VLLM, "command": ["vllm", "serve", "Qwen/Qwen2.5-0.5B-Instruct"]}, []),
    ({"name": "e", "image": VLLM, "command": ["sh", "-c", "vllm serve x --port 8000"]}, []),
    ({"name": "e", "image": "lmsysorg/sglang:v0.4.6"}, []),
])
def test_vllm_gets_the_cached_model_only_when_the_user_chose_none(
        container: dict[str, Any], added: list[str]) -> None:
    xr = _xr({"containers": [container]}, modelCacheRef={"name": "qwen-weights"})
    engine = _pod(xr, caches=[modelcache()])["spec"]["containers"][0]
    assert engine.get("args", []) == container.get("args", []) + added
    assert engine.get("command") == container.get("command")


def test_neutral_pod_conforms() -> None:
    out = compose(request(_xr(USER_POD, modelCacheRef={"name": "qwen-weights"}),
                          caches=[modelcache()])).desired
    for name, d in sorted(out.items()):
        assert problems(d.resource) == [], name
