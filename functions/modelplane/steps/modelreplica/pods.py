"""Pod templates: the user's PodSpec verbatim, plus only what Modelplane owns.

What is added (and documented in docs/workloads.md):
- labels: deployment, replica, engine, role, and ``modelplane.ai/serving`` on serving pods;
- the pool pin ``nodeSelector: {modelplane.ai/pool: <pool>}`` and the GPU taint toleration, plus
  the replica's tolerations;
- the DRA claim (``spec.resourceClaims`` + every container's ``resources.claims``);
- a memory-backed ``/dev/shm`` and, with a ModelCache, its PVC read-only at ``/models``, on every
  container that does not mount those paths itself;
- on the engine container (the first) of a serving member: port 8000 and an HTTP readiness probe
  on ``/health`` when the user set none, and for vLLM images the cached model's path when the user
  chose no model.
Nothing the user wrote is changed or removed.
"""

from __future__ import annotations

import copy
from typing import Any

from modelplane.contract import modelcache
from modelplane.contract.metadata import (
    ENGINE_LABEL,
    INFERENCE_POOL_LABEL,
    POOL_LABEL,
    REPLICA_LABEL,
    ROLE_LABEL,
    SERVING_LABEL,
)
from modelplane.steps.modelreplica import naming
from modelplane.steps.modelreplica.spec import Engine, Member, Replica

DEFAULT_PORT = 8000
HEALTH_PATH = "/health"
SHM_VOLUME = "modelplane-shm"
SHM_PATH = "/dev/shm"
CACHE_VOLUME = "modelplane-model-cache"
CACHE_PATH = modelcache.MOUNT_PATH  # the ModelCache contract (docs/caching.md)
POD_CLAIM = "modelplane-devices"
GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
_TOLERATION_FIELDS = ("key", "operator", "value", "effect")


def serving_port(container: dict[str, Any]) -> int | None:
    """The container's HTTP port: its first TCP port, or None when it declares none."""
    for p in container.get("ports") or []:
        if isinstance(p, dict) and p.get("protocol", "TCP") == "TCP" and p.get("containerPort"):
            return int(p["containerPort"])
    return None


def member_port(member: Member) -> int:
    """The port a serving member answers on after Modelplane's additions."""
    return serving_port(member.template["spec"]["containers"][0]) or DEFAULT_PORT


def _tokens(container: dict[str, Any]) -> list[str]:
    return [str(t) for t in (container.get("command") or []) + (container.get("args") or [])]


def chose_model(container: dict[str, Any]) -> bool:
    """Whether the user already told the engine which model to load (or runs a shell script).

    ``--model``/``--model=...`` anywhere, a positional model after ``serve`` (``vllm serve X``),
    or a shell script (a token with whitespace, which Modelplane cannot safely extend) all count.
    """
    tokens = _tokens(container)
    for i, t in enumerate(tokens):
        if t == "--model" or t.startswith("--model=") or any(c.isspace() for c in t):
            return True
        if t == "serve" and i + 1 < len(tokens) and not tokens[i + 1].startswith("-"):
            return True
    return False


def is_vllm(container: dict[str, Any]) -> bool:
    return "vllm" in str(container.get("image", "")).lower()


def wants_cached_model(replica: Replica, member: Member) -> bool:
    """Whether the engine container gets ``--model=/models/<repo>`` from the ModelCache."""
    engine = member.template["spec"]["containers"][0]
    return bool(replica.cache) and member.serves and is_vllm(engine) and not chose_model(engine)


def model_flags(container: dict[str, Any], repo: str) -> list[str]:
    """The vLLM flags that point at the staged weights and keep the public model name."""
    flags = [f"--model={modelcache.model_path(repo)}"]
    if not any(t == "--served-model-name" or t.startswith("--served-model-name=")
               for t in _tokens(container)):
        flags.append(f"--served-model-name={repo}")
    return flags


def pod_labels(replica: Replica, engine: Engine, member: Member,
               inference_pool: str | None) -> dict[str, str]:
    """Modelplane's pod labels (the user's may not use the modelplane.ai/ prefix)."""
    labels = {
        **naming.replica_labels(replica.deployment, replica.name),
        ENGINE_LABEL: engine.name,
        ROLE_LABEL: member.role.lower(),
    }
    if member.serves:
        labels[SERVING_LABEL] = "true"
        if inference_pool is not None and engine.phase:
            # What an llm-d style endpoint picker filters on to split prefill from decode.
            labels["llm-d.ai/role"] = engine.phase.lower()
            labels[INFERENCE_POOL_LABEL] = inference_pool
    return labels


def selector_labels(replica: Replica, engine: Engine) -> dict[str, str]:
    """The immutable workload selector: one engine of one replica."""
    return {REPLICA_LABEL: naming.label_value(replica.name),
            ENGINE_LABEL: engine.name}


def _tolerations(user: list[Any], replica: Replica,
                 tolerable: frozenset[str]) -> list[dict[str, Any]]:
    """The GPU taint's toleration, and the replica's tolerations for taints its cluster marks
    tolerable: only those, by key, so a keyless ``{operator: Exists}`` never lets pods onto
    nodes a cordon or a node condition (``node.kubernetes.io/...``) keeps them off."""
    out: list[dict[str, Any]] = [t for t in user if isinstance(t, dict)]
    extra = [GPU_TOLERATION] + [
        {k: t[k] for k in _TOLERATION_FIELDS if t.get(k) not in (None, "")}
        for t in replica.tolerations if t.get("key") in tolerable
    ]
    for t in extra:
        if t not in out:
            out.append(dict(t))
    return out


def _mounts(container: dict[str, Any]) -> list[dict[str, Any]]:
    mounts = container.get("volumeMounts")
    return mounts if isinstance(mounts, list) else []


def _mounts_path(container: dict[str, Any], path: str) -> bool:
    return any(isinstance(m, dict) and str(m.get("mountPath", "")).rstrip("/") == path
               for m in _mounts(container))


def pod_template(replica: Replica, engine: Engine, member: Member, *,
                 claim_template: str | None, inference_pool: str | None,
                 cached_repo: str | None,
                 service_account: str | None = None,
                 tolerable: frozenset[str] = frozenset()) -> dict[str, Any]:
    """The member's pod template: the user's, with Modelplane's additions only.

    The user's template has passed the pod policy (``modelplane.contract.podpolicy``), so it
    sets no placement fields and no service account: those below are Modelplane's alone.
    """
    template = copy.deepcopy(member.template)
    user_meta: dict[str, Any] = (template["metadata"] if isinstance(template.get("metadata"), dict)
                                 else {})
    labels = {**(user_meta.get("labels") or {}),
              **pod_labels(replica, engine, member, inference_pool)}
    meta: dict[str, Any] = {"labels": dict(sorted(labels.items()))}
    if user_meta.get("annotations"):
        meta["annotations"] = dict(user_meta["annotations"])
    spec: dict[str, Any] = template["spec"]

    spec["nodeSelector"] = {**(spec.get("nodeSelector") or {}), POOL_LABEL: member.pool}
    spec["tolerations"] = _tolerations(spec.get("tolerations") or [], replica, tolerable)
    if service_account:
        spec["serviceAccountName"] = service_account

    containers: list[dict[str, Any]] = spec["containers"]
    volumes: list[dict[str, Any]] = list(spec.get("volumes") or [])
    if claim_template is not None:
        spec["resourceClaims"] = [*(spec.get("resourceClaims") or []),
                                  {"name": POD_CLAIM, "resourceClaimTemplateName": claim_template}]
    mounts: list[tuple[str, str, bool, dict[str, Any]]] = [
        (SHM_VOLUME, SHM_PATH, False, {"emptyDir": {"medium": "Memory"}})]
    if replica.cache:
        mounts.append((CACHE_VOLUME, CACHE_PATH, True, {"persistentVolumeClaim": {
            "claimName": modelcache.pvc_name(replica.cache), "readOnly": True}}))
    for vname, path, read_only, source in mounts:
        wanting = [c for c in containers if not _mounts_path(c, path)]
        if not wanting:
            continue
        volumes.append({"name": vname, **source})
        for c in wanting:
            mount = {"name": vname, "mountPath": path, **({"readOnly": True} if read_only else {})}
            c["volumeMounts"] = [*_mounts(c), mount]
    if volumes:
        spec["volumes"] = volumes

    for c in containers:
        if claim_template is not None:
            resources = c.setdefault("resources", {})
            resources["claims"] = [*(resources.get("claims") or []), {"name": POD_CLAIM}]

    engine_container = containers[0]
    if member.serves:
        port = serving_port(engine_container)
        if port is None:
            port = DEFAULT_PORT
            engine_container["ports"] = [{"name": "http", "containerPort": port,
                                          "protocol": "TCP"}]
        if "readinessProbe" not in engine_container:
            engine_container["readinessProbe"] = {
                "httpGet": {"path": HEALTH_PATH, "port": port}, "periodSeconds": 10}
        if cached_repo is not None and wants_cached_model(replica, member):
            engine_container["args"] = [*(engine_container.get("args") or []),
                                        *model_flags(engine_container, cached_repo)]
    return {"metadata": meta, "spec": spec}
