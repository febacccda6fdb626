"""ModelCache composition (step `compose-cache`): stage model weights once per cluster.

For every InferenceCluster the cache's ``spec.clusterSelector`` matches, the step composes
provider-kubernetes Objects (in the cache's namespace, pointed at the cluster's
``status.providerConfigRef.kubernetes``) for:

- the remote Namespace (same name as the cache's namespace; never deleted),
- an RWX PersistentVolumeClaim ``modelcache-<cache>`` holding ``/models/<repo>``,
- the Hugging Face token Secret, filled by provider-kubernetes from the control-plane Secret
  through ``spec.references[].patchesFrom`` (the value never appears in our desired state),
- a hydrate Job that downloads the repository at the revision into the volume.

The volume convention the pods that read the weights rely on (PVC name, layout, mount path) is
documented in docs/caching.md and defined in :mod:`modelplane.contract.modelcache`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from modelplane.common import conditions, selectors
from modelplane.common.names import dns_label, short_hash
from modelplane.contract import podpolicy
from modelplane.contract.api import API_VERSION, INFERENCE_CLUSTER, MODEL_CACHE, MODEL_REPLICA
from modelplane.contract.metadata import CACHE_LABEL, CLUSTER_LABEL
from modelplane.contract.modelcache import (
    DELETION_ATTEMPT_ANNOTATION,
    MOUNT_PATH,
    model_path,
    namespace_object_name,
    pvc_name,
)
from modelplane.contract.remote import (
    OBJECT_API_VERSION,
    OBJECT_KIND,
    SHARED_POLICIES,
    ProviderConfigRef,
    applied_manifest,
    cel_readiness,
    observed_manifest,
    remote_object,
)
from modelplane.step import (
    Desired,
    Resource,
    Selector,
    StepRequest,
    StepResult,
    mark_ready_from_observed,
    require,
    step,
)

HYDRATE_IMAGE = "python:3.12-slim"
# hf CLI (`hf download`) ships with huggingface_hub 0.34 and later.
HUB_REQUIREMENT = "huggingface_hub>=0.34,<2"
REMOTE_TOKEN_KEY = "token"
#: The key of spec.huggingFace.authSecret when it names none (the published v0.1 default).
DEFAULT_TOKEN_KEY = "HF_TOKEN"
# Long enough that the step sees the Job finish (and stops managing it) well before the TTL
# controller removes it; short enough that finished pods do not linger for weeks.
JOB_TTL_SECONDS = 86400
JOB_BACKOFF_LIMIT = 6

# A finished hydrate Job is only observed: when its TTL removes it, provider-kubernetes must not
# create it again (that would start another, if cheap, hydration run).
FINISHED_JOB_POLICIES = ["Observe", "Delete"]

PVC_READY_QUERY = "has(object.status.phase) && object.status.phase == 'Bound'"
JOB_READY_QUERY = ("has(object.status.conditions) && object.status.conditions.exists(c, "
                   "c.type == 'Complete' && c.status == 'True')")

# Composition resource names are "<prefix><cluster>"; cluster names are DNS subdomains, so the
# prefixes below parse back unambiguously (the hydrate prefix carries a fixed-length hash).
_NS, _PVC, _TOKEN, _HYDRATE = "namespace-", "pvc-", "token-", "hydrate-"
_HASH_LEN = 8

# Downloads into the volume. Inputs arrive as environment variables, never spliced into the
# script, so a revision like "main; rm -rf /" is just an odd revision name. `hf download` skips
# files already complete in --local-dir and resumes partial ones, so a retried pod continues
# where the last stopped; the marker makes a finished copy a no-op without installing anything.
HYDRATE_SCRIPT = """\
set -eu
marker="$MODEL_DIR/.modelplane-hydrated"
if [ -f "$marker" ] && [ "$(cat "$marker")" = "$HF_REVISION" ]; then
  echo "$HF_REPO@$HF_REVISION is already staged in $MODEL_DIR"
  exit 0
fi
pip install --quiet --no-cache-dir --disable-pip-version-check "$HUB_REQUIREMENT"
mkdir -p "$MODEL_DIR"
hf download "$HF_REPO" --revision "$HF_REVISION" --local-dir "$MODEL_DIR"
printf '%s' "$HF_REVISION" > "$marker.tmp"
mv "$marker.tmp" "$marker"
echo "staged $HF_REPO@$HF_REVISION in $MODEL_DIR"
"""


# -- per-cluster bookkeeping -----------------------------------------------------------------------

@dataclass
class _Copy:
    """One cluster's copy: its phase and why."""

    name: str
    phase: str = "Pending"
    message: str = ""
    resources: list[str] = field(default_factory=list)


def _cluster_of(resource_name: str) -> str | None:
    for prefix in (_NS, _PVC, _TOKEN):
        if resource_name.startswith(prefix):
            return resource_name[len(prefix):]
    if resource_name.startswith(_HYDRATE):
        rest = resource_name[len(_HYDRATE):]
        if len(rest) > _HASH_LEN + 1 and rest[_HASH_LEN] == "-":
            return rest[_HASH_LEN + 1:]
    return None


def _job_condition(job: dict[str, Any], type_: str) -> dict[str, Any] | None:
    return conditions.get(job, type_) if job else None


def _job_finished(job: dict[str, Any]) -> bool:
    c = _job_condition(job, "Complete")
    return bool(c and c.get("status") == "True")


def _job_failed(job: dict[str, Any]) -> dict[str, Any] | None:
    c = _job_condition(job, "Failed")
    return c if c and c.get("status") == "True" else None


# -- composed objects ------------------------------------------------------------------------------

def _labels(cache: str, cluster: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/managed-by": "modelplane",
        "app.kubernetes.io/name": "modelcache",
        CACHE_LABEL: dns_label(cache),
        CLUSTER_LABEL: dns_label(cluster),
    }


def _remote_labels(cache: str) -> dict[str, str]:
    return {"app.kubernetes.io/managed-by": "modelplane", "app.kubernetes.io/name": "modelcache",
            CACHE_LABEL: dns_label(cache)}


def _token_path(key: str) -> str:
    """A Crossplane field path to ``data.<key>``; keys with dots need the bracket form."""
    return f"data[{key}]" if "." in key else f"data.{key}"


def _job_manifest(cache: str, namespace: str, job_name: str, repo: str, revision: str,
                  token_secret: str | None) -> dict[str, Any]:
    env: list[dict[str, Any]] = [
        {"name": "HF_REPO", "value": repo},
        {"name": "HF_REVISION", "value": revision},
        {"name": "MODEL_DIR", "value": model_path(repo)},
        {"name": "HUB_REQUIREMENT", "value": HUB_REQUIREMENT},
        # Hub bookkeeping (locks, partial downloads) lives in the volume, so retries resume.
        {"name": "HF_HOME", "value": f"{MOUNT_PATH}/.hf-home"},
        {"name": "HF_HUB_DISABLE_TELEMETRY", "value": "1"},
    ]
    if token_secret:
        env.append({"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {
            "name": token_secret, "key": REMOTE_TOKEN_KEY}}})
    labels = _remote_labels(cache)
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": job_name, "namespace": namespace, "labels": labels},
        "spec": {
            "backoffLimit": JOB_BACKOFF_LIMIT,
            "ttlSecondsAfterFinished": JOB_TTL_SECONDS,
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{
                        "name": "hydrate",
                        "image": HYDRATE_IMAGE,
                        "command": ["/bin/sh", "-c", HYDRATE_SCRIPT],
                        "env": env,
                        "resources": {
                            "requests": {"cpu": "500m", "memory": "1Gi"},
                            "limits": {"memory": "2Gi"},
                        },
                        "volumeMounts": [{"name": "models", "mountPath": MOUNT_PATH}],
                    }],
                    "volumes": [{"name": "models",
                                 "persistentVolumeClaim": {"claimName": pvc_name(cache)}}],
                },
            },
        },
    }


# -- the step --------------------------------------------------------------------------------------

@dataclass
class _Inputs:
    repo: str
    revision: str
    size: str
    storage_class: str | None
    token_name: str | None
    token_key: str


def _inputs(req: StepRequest, res: StepResult) -> _Inputs | None:
    """The spec's inputs, or None after reporting which field is invalid."""
    spec = req.spec
    source = spec.get("source")
    hf = spec.get("huggingFace")
    size = hf.get("sizeGiB") if isinstance(hf, dict) else None
    problem = ""
    if source != "HuggingFace":
        problem = f"spec.source {source!r} is not HuggingFace"
    elif not isinstance(hf, dict):
        problem = f"spec.huggingFace is required when source is HuggingFace (got {hf!r})"
    elif not isinstance(hf.get("repo"), str) or not hf["repo"]:
        problem = f"spec.huggingFace.repo must be a repository name (got {hf.get('repo')!r})"
    elif not isinstance(size, int) or isinstance(size, bool) or size < 1:
        problem = f"spec.huggingFace.sizeGiB must be a positive number of GiB (got {size!r})"
    elif not req.namespace:
        problem = "metadata.namespace is empty; a ModelCache is namespaced"
    if problem:
        res.condition("Hydrated", "False", "InvalidSpec", problem)
        return None
    assert isinstance(hf, dict)
    ref = hf.get("authSecret") if isinstance(hf.get("authSecret"), dict) else None
    return _Inputs(
        repo=str(hf["repo"]),
        revision=str(hf.get("revision") or "main"),
        size=f"{size}Gi",
        storage_class=str(spec["storageClassName"]) if spec.get("storageClassName") else None,
        token_name=str(ref["name"]) if ref and ref.get("name") else None,
        token_key=str((ref or {}).get("key") or DEFAULT_TOKEN_KEY),
    )


def _token_state(inp: _Inputs, found: list[Resource] | None, namespace: str,
                 res: StepResult) -> bool:
    """Whether the token can be used for new copies; always reports the ``Token`` condition."""
    if inp.token_name is None:
        res.condition("Token", "True", "NotRequired",
                      "spec.huggingFace.authSecret is not set; the repository is "
                      "downloaded anonymously")
        return True
    field_ = f"spec.huggingFace.authSecret.name {inp.token_name!r}"
    if found is None:
        res.condition("Token", "Unknown", "Resolving",
                      f"waiting for Secret {namespace}/{inp.token_name} ({field_})")
        return False
    if not found:
        res.condition("Token", "False", "SecretNotFound",
                      f"{field_}: Secret {namespace}/{inp.token_name} does not exist; existing "
                      "copies are kept, no new copy starts until it does")
        return False
    secret = found[0]
    if (secret.get("metadata") or {}).get("deletionTimestamp"):
        res.condition("Token", "False", "SecretDeleting",
                      f"{field_}: Secret {namespace}/{inp.token_name} is being deleted; existing "
                      "copies are kept, no new copy starts")
        return False
    if inp.token_key not in (secret.get("data") or {}) and inp.token_key not in (
            secret.get("stringData") or {}):
        res.condition("Token", "False", "KeyNotFound",
                      f"spec.huggingFace.authSecret.key {inp.token_key!r} is not a key "
                      f"of Secret {namespace}/{inp.token_name}; existing copies are kept")
        return False
    res.condition("Token", "True", "Found",
                  f"the token is patched from Secret {namespace}/{inp.token_name} key "
                  f"{inp.token_key!r} into each cluster by reference")
    return True


@step("compose-cache", kinds=[MODEL_CACHE])
def compose(req: StepRequest) -> StepResult:
    res = StepResult()
    inp = _inputs(req, res)
    namespace = req.namespace or ""
    clusters = require(req, res, "clusters", Selector.labels(API_VERSION, INFERENCE_CLUSTER, {}))
    token_found: list[Resource] | None = []
    if inp is not None and inp.token_name is not None:
        token_found = require(req, res, "token-secret",
                              Selector("v1", "Secret", match_name=inp.token_name,
                                       namespace=namespace))
    # Which ModelReplicas of this namespace mount the cache (spec.modelCacheRef), per cluster:
    # a copy they read is never removed under them. Same requirement on every call.
    replicas = require(req, res, "readers", Selector.labels(API_VERSION, MODEL_REPLICA, {},
                                                            namespace=namespace))
    if inp is None:
        res.desired = req.keep_observed()
        mark_ready_from_observed(req, res.desired)
        res.composite_ready = "False"  # an invalid spec is not staged as asked
        return res
    token_ok = _token_state(inp, token_found, namespace, res)
    if clusters is None:
        res.desired = req.keep_observed()
        mark_ready_from_observed(req, res.desired)
        res.condition("Hydrated", "Unknown", "Resolving", "waiting for the InferenceClusters")
        res.composite_ready = "False"  # unknown is not ready
        return res

    selector = req.spec.get("clusterSelector")
    by_name = {str(c["metadata"]["name"]): c for c in clusters if c.get("metadata", {}).get("name")}
    matching = sorted(n for n, c in by_name.items()
                      if selectors.matches(selector, (c.get("metadata") or {}).get("labels")))

    observed_by_cluster: dict[str, list[str]] = {}
    for rname in req.observed:
        owner = _cluster_of(rname)
        if owner is not None:
            observed_by_cluster.setdefault(owner, []).append(rname)

    copies: dict[str, _Copy] = {}
    no_class: list[str] = []
    class_notes: list[str] = []
    for name in matching:
        copies[name] = _compose_cluster(req, res, inp, name, by_name[name], token_ok, no_class,
                                        class_notes)

    # Clusters we hold copies on that are no longer selected.
    readers = readers_by_cluster(req.name, replicas)
    held: dict[str, list[str] | None] = {}
    for name in sorted(set(observed_by_cluster) - set(matching)):
        if name in by_name:
            # Resolved and not matching: the declared state (selector or the cluster's labels)
            # says the copy should go -- once no replica there mounts it.
            hosts = readers.get(name, []) if readers is not None else None
            if hosts is None or hosts:
                held[name] = hosts
                res.desired.update(req.keep_observed(observed_by_cluster[name]))
            continue
        # Missing from the required list (deleted, or a transient gap): keep its copy as is.
        keep = req.keep_observed(observed_by_cluster[name])
        res.desired.update(keep)
        cp = _observe_copy(req, name, observed_by_cluster[name])
        cp.message = _join("InferenceCluster not found; its copy is kept", cp.message)
        res.event("Warning", f"InferenceCluster {name!r} holds a copy of this cache but was not "
                  "found among the InferenceClusters; its copy is kept", "ClusterNotFound")
        copies[name] = cp

    mark_ready_from_observed(req, res.desired)
    _report(res, inp, copies, no_class, class_notes)
    report_held(res, held)
    report_protected(res, readers, _deletion_attempted(req))
    return res


# -- copies held for their readers -----------------------------------------------------------------

def readers_by_cluster(cache: str, replicas: list[Resource] | None) -> dict[str, list[str]] | None:
    """Per cluster, the ModelReplicas (names) whose spec.modelCacheRef is this cache."""
    if replicas is None:
        return None
    out: dict[str, list[str]] = {}
    for r in replicas:
        raw = r.get("spec")
        spec: dict[str, Any] = raw if isinstance(raw, dict) else {}
        ref = spec.get("modelCacheRef")
        if isinstance(ref, dict) and ref.get("name") == cache and spec.get("cluster"):
            out.setdefault(str(spec["cluster"]), []).append(
                str((r.get("metadata") or {}).get("name")))
    return {c: sorted(names) for c, names in out.items()}


def report_held(res: StepResult, held: dict[str, list[str] | None]) -> None:
    """Condition CopiesHeld: copies no longer selected, kept while replicas there mount them.

    They are not in status.clusters (the footprint placement reads), so their readers move
    make-before-break to a selected cluster; then the copy is removed.
    """
    if not held:
        res.condition("CopiesHeld", "False", "NoneHeld",
                      "no copy outside spec.clusterSelector is mounted by a ModelReplica")
        return
    parts = []
    for cluster, names in sorted(held.items()):
        if names is None:
            parts.append(f"{cluster} (until the ModelReplicas reading it are known)")
        else:
            shown = conditions.some(names)
            parts.append(f"{cluster} (mounted by ModelReplica {shown})")
    res.condition("CopiesHeld", "True", "MountedByReplicas",
                  "no longer selected by spec.clusterSelector, kept until their readers have "
                  "moved: " + "; ".join(parts))
    res.event("Warning", "copies kept for the replicas that mount them: " + "; ".join(parts),
              "CopiesHeld")


def _deletion_attempted(req: StepRequest) -> bool:
    """Whether Crossplane's usage webhook refused a deletion of this cache (and recorded it)."""
    notes = (req.composite.get("metadata") or {}).get("annotations") or {}
    return DELETION_ATTEMPT_ANNOTATION in notes


def report_protected(res: StepResult, readers: dict[str, list[str]] | None,
                     attempted: bool) -> None:
    """Condition DeletionProtected: whether deleting the ModelCache is held, and by whom.

    Each ModelReplica that mounts the cache composes a Usage of it (by its workload's Object,
    :func:`modelplane.contract.modelcache.reader_usage`), so Crossplane's webhook refuses the
    deletion while they run; with ``replayDeletion`` the cache is deleted once the last goes.
    """
    if readers is None:
        res.condition("DeletionProtected", "Unknown", "Resolving",
                      "waiting for the ModelReplicas that may mount this cache")
        return
    hosts = [f"{name} on {cluster}" for cluster, names in sorted(readers.items())
             for name in names]
    if not hosts:
        res.condition("DeletionProtected", "False", "NoReplicas",
                      "no ModelReplica mounts this cache; deleting it removes every copy")
        return
    who = "ModelReplica " + conditions.some(hosts)
    if attempted:
        res.condition("DeletionProtected", "True", "DeletionHeld",
                      f"deletion requested and held: {who} mount(s) this cache (their Usages "
                      "refuse the deletion); it is deleted once they have moved or their "
                      "ModelDeployment is gone")
        res.event("Warning", f"deletion of this ModelCache is held while {who} mount(s) it",
                  "DeletionHeld")
        return
    res.condition("DeletionProtected", "True", "MountedByReplicas",
                  f"{who} mount(s) this cache; their Usages refuse deleting it until they "
                  "have moved or are gone")


def _compose_cluster(req: StepRequest, res: StepResult, inp: _Inputs, name: str,
                     cluster: Resource, token_ok: bool, no_class: list[str],
                     class_notes: list[str]) -> _Copy:
    """Compose one cluster's copy (or keep what exists when the cluster cannot take changes)."""
    namespace = req.namespace or ""
    cache = req.name
    owned = sorted(r for r in req.observed if _cluster_of(r) == name)
    status = cluster.get("status") or {}
    provider = ((status.get("providerConfigRef") or {}).get("kubernetes") or {})
    why_not = ""
    if not conditions.is_true(cluster, "Ready"):
        why_not = "InferenceCluster is not Ready"
    elif not provider.get("name") or not provider.get("kind"):
        why_not = "InferenceCluster has no status.providerConfigRef.kubernetes yet"
    if why_not:
        res.desired.update(req.keep_observed(owned))
        cp = _observe_copy(req, name, owned)
        suffix = "; its copy is kept" if owned else "; nothing is staged until it is"
        if owned:
            # A copy that exists but cannot be reconciled is worth an event, not just a line
            # in status.clusters: Hydrated may still say True from the observed objects.
            res.event("Warning", f"InferenceCluster {name!r}: {why_not}{suffix}",
                      "ClusterNotReady")
        cp.message = _join(why_not + suffix, cp.message)
        return cp

    labels = _labels(cache, name)
    provider_ref = ProviderConfigRef(str(provider["kind"]), str(provider["name"]))

    ns_obj = namespace_object_name(MODEL_CACHE, cache, name)
    res.desired[_NS + name] = Desired(remote_object(
        ns_obj, namespace, labels, provider_ref,
        podpolicy.namespace_manifest(namespace, podpolicy.policy_from(cluster)),
        management_policies=SHARED_POLICIES,
    ))

    # storageClassName is immutable on a PVC: once created, keep the class it was created with.
    observed_pvc = req.observed.get(_PVC + name)
    wanted = inp.storage_class or status.get("storageClassName") or None
    storage_class = wanted
    if observed_pvc is not None:
        prior_spec = applied_manifest(observed_pvc).get("spec") or {}
        storage_class = prior_spec.get("storageClassName")
        if wanted and storage_class != wanted:
            class_notes.append(f"cluster {name}: the volume was created with storageClassName "
                               f"{storage_class!r}; {wanted!r} would need a new volume")
    if not storage_class and observed_pvc is None:
        no_class.append(name)
    pvc_spec: dict[str, Any] = {
        "accessModes": ["ReadWriteMany"],
        "resources": {"requests": {"storage": inp.size}},
    }
    if storage_class:
        pvc_spec["storageClassName"] = storage_class
    pvc_obj = dns_label("modelcache", cache, name, "pvc")
    res.desired[_PVC + name] = Desired(remote_object(
        pvc_obj, namespace, labels, provider_ref,
        {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
         "metadata": {"name": pvc_name(cache), "namespace": namespace,
                      "labels": _remote_labels(cache)},
         "spec": pvc_spec},
        readiness=cel_readiness(PVC_READY_QUERY),
        references=[_depends_on(ns_obj, namespace)],
    ))

    token_obj = dns_label("modelcache", cache, name, "token")
    remote_token = dns_label("modelcache", cache, "hf-token")
    if inp.token_name is not None:
        if token_ok:
            res.desired[_TOKEN + name] = Desired(remote_object(
                token_obj, namespace, labels, provider_ref,
                {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                 "metadata": {"name": remote_token, "namespace": namespace,
                              "labels": _remote_labels(cache)}},
                references=[
                    _depends_on(ns_obj, namespace),
                    {"patchesFrom": {"apiVersion": "v1", "kind": "Secret",
                                     "name": inp.token_name, "namespace": namespace,
                                     "fieldPath": _token_path(inp.token_key)},
                     "toFieldPath": f"data.{REMOTE_TOKEN_KEY}"},
                ],
            ))
        else:
            res.desired.update(req.keep_observed([_TOKEN + name]))

    # The Job's name and spec depend only on what it downloads -- never on the token's value --
    # so rotating the Secret changes nothing here; a new revision is a new Job.
    digest = short_hash(inp.repo, inp.revision, "token" if inp.token_name else "",
                        length=_HASH_LEN)
    hydrate = f"{_HYDRATE}{digest}-{name}"
    observed_jobs = [r for r in owned if r.startswith(_HYDRATE)]
    if token_ok:
        manifest = _job_manifest(cache, namespace, dns_label("modelcache", cache, digest),
                                 inp.repo, inp.revision,
                                 remote_token if inp.token_name else None)
        deps = [_depends_on(pvc_obj, namespace)]
        if inp.token_name:
            deps.append(_depends_on(token_obj, namespace))
        finished = _job_finished(observed_manifest(req.observed.get(hydrate)))
        res.desired[hydrate] = Desired(remote_object(
            dns_label("modelcache", cache, name, "hydrate", digest), namespace, labels,
            provider_ref, manifest, readiness=cel_readiness(JOB_READY_QUERY),
            management_policies=FINISHED_JOB_POLICIES if finished else None,
            references=deps))
    else:
        # Without a usable token no new download starts; whatever runs or ran is kept.
        res.desired.update(req.keep_observed(observed_jobs))
    return _observe_copy(req, name, sorted(set(owned) | {r for r in res.desired
                                                         if _cluster_of(r) == name}),
                         current_job=hydrate if token_ok else None,
                         waiting_for_token=not token_ok)


def _depends_on(object_name: str, namespace: str) -> dict[str, Any]:
    return {"dependsOn": {"apiVersion": OBJECT_API_VERSION, "kind": OBJECT_KIND,
                          "name": object_name,
                          "namespace": namespace}}


def _observe_copy(req: StepRequest, name: str, resources: list[str],
                  current_job: str | None = None, waiting_for_token: bool = False) -> _Copy:
    """A cluster's phase from what provider-kubernetes observed of its PVC and Job."""
    cp = _Copy(name, resources=list(resources))
    pvc = observed_manifest(req.observed.get(_PVC + name))
    if current_job is not None:
        # The Job for the current revision (a previous revision's Job says nothing about it).
        job = observed_manifest(req.observed.get(current_job))
    else:
        jobs = sorted(r for r in resources if r.startswith(_HYDRATE) and r in req.observed)
        job = observed_manifest(req.observed.get(jobs[-1])) if jobs else {}
    bound = (pvc.get("status") or {}).get("phase") == "Bound"
    failed = _job_failed(job)
    if failed is not None:
        cp.phase = "Failed"
        cp.message = (f"hydration failed: {failed.get('reason') or 'Failed'}: "
                      f"{failed.get('message') or 'no message'}").rstrip(": ")
    elif bound and _job_finished(job):
        cp.phase = "Ready"
    elif job or bound:
        cp.phase = "Hydrating"
        cp.message = "downloading weights" if job else "volume bound; hydrate Job not started"
    else:
        cp.phase = "Pending"
        cp.message = "waiting for the volume and the hydrate Job"
    if waiting_for_token and cp.phase != "Ready" and not job:
        cp.message = _join("waiting for the token Secret", cp.message)
    return cp


def _join(*parts: str) -> str:
    return "; ".join(p for p in parts if p)


def _report(res: StepResult, inp: _Inputs, copies: dict[str, _Copy],
            no_class: list[str], class_notes: list[str]) -> None:
    entries = []
    for name in sorted(copies):
        cp = copies[name]
        entry = {"name": name, "phase": cp.phase}
        if cp.message:
            entry["message"] = cp.message
        entries.append(entry)
    ready = sum(1 for c in copies.values() if c.phase == "Ready")
    res.status["clusters"] = entries
    res.status["summary"] = f"{ready}/{len(copies)} Ready"

    if class_notes:
        res.condition("StorageClass", "False", "Immutable",
                      "; ".join(class_notes) + " (a PVC's storageClassName cannot change; the "
                      "existing volume is kept)")
    elif no_class:
        res.condition("StorageClass", "False", "ClusterDefault",
                      "spec.storageClassName is empty and InferenceCluster "
                      f"{', '.join(sorted(no_class))} has no status.storageClassName; the PVC "
                      "omits storageClassName, so the cluster's default StorageClass (which must "
                      "support ReadWriteMany) is used")
    else:
        res.condition("StorageClass", "True", "Resolved",
                      f"spec.storageClassName {inp.storage_class!r}" if inp.storage_class
                      else "each cluster's status.storageClassName")

    if not copies or ready < len(copies):
        # With nothing composed (or only some copies staged) Crossplane would still call the
        # cache Ready; a cache is Ready only when every selected cluster holds the weights.
        res.composite_ready = "False"

    failed = [c for c in copies.values() if c.phase == "Failed"]
    if not copies:
        res.condition("Hydrated", "False", "NoMatchingClusters",
                      "spec.clusterSelector matches no InferenceCluster")
    elif failed:
        res.condition("Hydrated", "False", "HydrationFailed",
                      "; ".join(f"{c.name}: {c.message}" for c in sorted(
                          failed, key=lambda c: c.name)))
    elif ready == len(copies):
        res.condition("Hydrated", "True", "AllClustersReady",
                      f"{inp.repo}@{inp.revision} is staged on {ready} cluster(s)")
    else:
        waiting = [f"{c.name} ({c.phase}{': ' + c.message if c.message else ''})"
                   for c in sorted(copies.values(), key=lambda c: c.name) if c.phase != "Ready"]
        res.condition("Hydrated", "False", "Hydrating",
                      f"{ready}/{len(copies)} Ready; waiting for " + ", ".join(waiting))
