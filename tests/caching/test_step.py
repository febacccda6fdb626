"""The compose-cache step over plain StepRequests: one staged copy of the weights per cluster."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from modelplane.contract import modelcache as volume
from modelplane.step import as_desired

from tests.caching.helpers import (
    NS,
    TOKEN_VALUE,
    cache,
    cluster,
    converge,
    manifest,
    observe,
    of_cluster,
    reader,
    run,
    secret,
)
from tests.conformance import problems
from tests.results import condition

GPU = {"matchLabels": {"modelplane.ai/region": "us"}}
US = {"modelplane.ai/region": "us"}
EU = {"modelplane.ai/region": "eu"}


def _fleet() -> list[dict[str, Any]]:
    return [cluster("us-1", labels=US), cluster("us-2", labels=US), cluster("eu-1", labels=EU)]


def _statuses(res: Any) -> dict[str, str]:
    return {c["name"]: c["phase"] for c in res.status["clusters"]}


def test_a_pvc_and_a_hydrate_job_per_matching_cluster() -> None:
    res = run(cache(selector=GPU), _fleet())
    for name in ("us-1", "us-2"):
        kinds = of_cluster(res, name)
        assert set(kinds) == {"Namespace", "PersistentVolumeClaim", "Job"}
    assert of_cluster(res, "eu-1") == {}
    assert _statuses(res) == {"us-1": "Pending", "us-2": "Pending"}
    assert res.status["summary"] == "0/2 Ready"


def test_each_object_targets_its_clusters_provider_config_in_the_cache_namespace() -> None:
    res = run(cache(selector=GPU), _fleet())
    for d in res.desired.values():
        obj = d.resource
        assert obj["apiVersion"] == "kubernetes.m.crossplane.io/v1alpha1"
        assert obj["metadata"]["namespace"] == NS
        cl = obj["metadata"]["labels"]["modelplane.ai/cluster"]
        assert obj["spec"]["providerConfigRef"] == {"kind": "ClusterProviderConfig",
                                                    "name": f"{cl}-kubernetes"}


def test_the_pvc_follows_the_shared_contract() -> None:
    res = run(cache("qwen", selector=GPU), _fleet())
    pvc = manifest(res, of_cluster(res, "us-1")["PersistentVolumeClaim"])
    assert pvc["metadata"] == {"name": "modelcache-qwen", "namespace": NS,
                               "labels": pvc["metadata"]["labels"]}
    assert pvc["spec"]["accessModes"] == ["ReadWriteMany"]
    assert pvc["spec"]["resources"] == {"requests": {"storage": "20Gi"}}
    assert volume.pvc_name("qwen") == "modelcache-qwen"
    job = manifest(res, of_cluster(res, "us-1")["Job"])
    pod = job["spec"]["template"]["spec"]
    assert pod["volumes"] == [{"name": "models",
                               "persistentVolumeClaim": {"claimName": "modelcache-qwen"}}]
    env = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}
    assert env["MODEL_DIR"] == "/models/Qwen/Qwen2.5-0.5B-Instruct"
    assert pod["containers"][0]["volumeMounts"] == [{"name": "models", "mountPath": "/models"}]


def test_pvc_names_stay_valid_for_long_cache_names() -> None:
    name = "a." + "very-long-cache-name." * 10 + "z"
    assert len(volume.pvc_name(name)) <= 63
    res = run(cache(name), [cluster("c1")])
    for d in res.desired.values():
        assert not problems(d.resource)


@pytest.mark.parametrize(("spec_class", "cluster_class", "want", "expected"), [
    ("fast-rwx", "standard-rwx", "fast-rwx", ("True", "Resolved")),
    (None, "standard-rwx", "standard-rwx", ("True", "Resolved")),
    (None, None, None, ("False", "ClusterDefault")),
])
def test_storage_class_precedence_spec_then_cluster_then_omitted(
        spec_class: str | None, cluster_class: str | None, want: str | None,
        expected: tuple[str, str]) -> None:
    res = run(cache(storage_class=spec_class), [cluster("c1", storage_class=cluster_class)])
    pvc = manifest(res, "pvc-c1")
    assert pvc["spec"].get("storageClassName") == want
    assert condition(res, "StorageClass")[:2] == expected


def test_storage_class_of_an_existing_volume_is_not_changed() -> None:
    xr = cache()
    res, observed = converge(xr, [cluster("c1", storage_class="old-rwx")])
    res = run(xr, [cluster("c1", storage_class="new-rwx")], observed=observed)
    assert manifest(res, "pvc-c1")["spec"]["storageClassName"] == "old-rwx"
    assert condition(res, "StorageClass")[:2] == ("False", "Immutable")


def test_the_token_is_never_inlined_in_the_desired_state() -> None:
    res = run(cache(token=True), [cluster("c1"), cluster("c2")], secrets=[secret()])
    encoded = base64.b64encode(TOKEN_VALUE.encode()).decode()
    text = json.dumps({"desired": {n: d.resource for n, d in res.desired.items()},
                       "status": res.status,
                       "conditions": [c.__dict__ for c in res.conditions],
                       "results": [r.__dict__ for r in res.results]}, sort_keys=True)
    assert TOKEN_VALUE not in text
    assert encoded not in text


def test_the_token_is_patched_in_by_reference_and_read_from_the_remote_secret() -> None:
    res = run(cache(token=True), [cluster("c1")], secrets=[secret()])
    token = res.desired["token-c1"].resource
    assert "data" not in token["spec"]["forProvider"]["manifest"]
    patch = [r for r in token["spec"]["references"] if "patchesFrom" in r]
    assert patch == [{"patchesFrom": {"apiVersion": "v1", "kind": "Secret", "name": "hf-token",
                                      "namespace": NS, "fieldPath": "data.token"},
                      "toFieldPath": "data.token"}]
    job = manifest(res, of_cluster(res, "c1")["Job"])
    env = job["spec"]["template"]["spec"]["containers"][0]["env"]
    hf_token = next(e for e in env if e["name"] == "HF_TOKEN")
    assert hf_token["valueFrom"] == {"secretKeyRef": {
        "name": token["spec"]["forProvider"]["manifest"]["metadata"]["name"], "key": "token"}}


def test_a_dotted_secret_key_uses_the_bracket_field_path() -> None:
    xr = cache(token=True)
    xr["spec"]["huggingFace"]["authSecret"]["key"] = "hf.token"
    res = run(xr, [cluster("c1")], secrets=[secret(key="hf.token")])
    patch = next(r for r in res.desired["token-c1"].resource["spec"]["references"]
                 if "patchesFrom" in r)
    assert patch["patchesFrom"]["fieldPath"] == "data[hf.token]"


def test_token_rotation_does_not_change_the_job_or_anything_else() -> None:
    xr = cache(token=True)
    before, observed = converge(xr, [cluster("c1")], secrets=[secret("hf_firstTokenValue1")])
    after = run(xr, [cluster("c1")], secrets=[secret("hf_rotatedTokenValue2")],
                observed=observed)
    assert {n: d.resource for n, d in after.desired.items()} == {
        n: d.resource for n, d in before.desired.items()}


def test_the_token_secret_is_required_by_name_in_the_cache_namespace() -> None:
    res = run(cache(token=True), [cluster("c1")], secrets=[secret()])
    sel = res.requirements["token-secret"]
    assert (sel.api_version, sel.kind, sel.match_name, sel.namespace) == (
        "v1", "Secret", "hf-token", NS)
    clusters = res.requirements["clusters"]
    assert (clusters.kind, clusters.match_labels, clusters.namespace) == (
        "InferenceCluster", (), None)


def test_removing_the_token_secret_after_ready_keeps_the_copy_and_reports_it() -> None:
    xr = cache(token=True)
    ready, observed = converge(xr, [cluster("c1")], secrets=[secret()])
    assert _statuses(ready) == {"c1": "Ready"}
    res = run(xr, [cluster("c1")], secrets=[], observed=observed)
    assert set(res.desired) == set(ready.desired)
    for rname in ("pvc-c1", "token-c1"):
        assert res.desired[rname].resource == ready.desired[rname].resource
    assert _statuses(res) == {"c1": "Ready"}
    status, reason, message = condition(res, "Token")
    assert (status, reason) == ("False", "SecretNotFound")
    assert "hf-token" in message and "authSecret.name" in message


@pytest.mark.parametrize("found", [
    [],
    [secret(key="other")],
    [{**secret(), "metadata": {**secret()["metadata"],
                               "deletionTimestamp": "2026-01-01T00:00:00Z"}}],
])
def test_no_new_download_starts_without_a_usable_token(found: list[dict[str, Any]]) -> None:
    res = run(cache(token=True), [cluster("c1")], secrets=found)
    assert set(of_cluster(res, "c1")) == {"Namespace", "PersistentVolumeClaim"}
    assert condition(res, "Token")[0] == "False"
    assert "token" in res.status["clusters"][0]["message"]


def test_a_failed_hydration_reports_why() -> None:
    xr = cache()
    first = run(xr, [cluster("c1"), cluster("c2")])
    job = of_cluster(first, "c1")["Job"]
    observed = observe(first.desired, unhealthy={job})
    res = run(xr, [cluster("c1"), cluster("c2")], observed=observed)
    entry = next(c for c in res.status["clusters"] if c["name"] == "c1")
    assert entry["phase"] == "Failed"
    assert "BackoffLimitExceeded" in entry["message"]
    assert "simulated hydration failure" in entry["message"]
    status, reason, message = condition(res, "Hydrated")
    assert (status, reason) == ("False", "HydrationFailed")
    assert "c1" in message and "BackoffLimitExceeded" in message
    assert res.status["summary"] == "1/2 Ready"


def test_ready_when_the_volume_is_bound_and_the_job_complete() -> None:
    res, _ = converge(cache(selector=GPU), _fleet())
    assert _statuses(res) == {"us-1": "Ready", "us-2": "Ready"}
    assert res.status["summary"] == "2/2 Ready"
    assert condition(res, "Hydrated")[:2] == ("True", "AllClustersReady")
    assert all(d.ready == "True" for d in res.desired.values())
    assert res.composite_ready == "Unspecified"


@pytest.mark.parametrize("clusters", [[], [cluster("c1", ready=False)], [cluster("c1")]])
def test_the_cache_is_not_ready_until_every_selected_cluster_holds_the_weights(
        clusters: list[dict[str, Any]]) -> None:
    assert run(cache(), clusters).composite_ready == "False"


def test_a_finished_job_is_only_observed_so_its_ttl_does_not_rerun_it() -> None:
    res, _ = converge(cache(), [cluster("c1")])
    job = res.desired[of_cluster(res, "c1")["Job"]].resource
    assert job["spec"]["managementPolicies"] == ["Observe", "Delete"]
    assert job["spec"]["forProvider"]["manifest"]["spec"]["ttlSecondsAfterFinished"] > 0


def test_the_remote_namespace_is_never_deleted() -> None:
    res = run(cache(), [cluster("c1")])
    policies = res.desired["namespace-c1"].resource["spec"]["managementPolicies"]
    assert "Delete" not in policies and "*" not in policies
    assert res.desired["namespace-c1"].resource["metadata"]["name"] == (
        volume.namespace_object_name("ModelCache", "qwen", "c1"))


def test_a_new_revision_is_a_new_job_and_the_volume_stays() -> None:
    _, observed = converge(cache(revision="v1"), [cluster("c1")])
    res = run(cache(revision="v2"), [cluster("c1")], observed=observed)
    old = [n for n in observed if n.startswith("hydrate-")]
    new = [n for n in res.desired if n.startswith("hydrate-")]
    assert len(old) == len(new) == 1 and old != new
    assert res.desired["pvc-c1"].resource == as_desired(observed["pvc-c1"])
    assert _statuses(res) == {"c1": "Hydrating"}


def test_the_hydrate_script_never_contains_user_input() -> None:
    xr = cache(revision="main; rm -rf /")
    res = run(xr, [cluster("c1")])
    job = manifest(res, of_cluster(res, "c1")["Job"])
    container = job["spec"]["template"]["spec"]["containers"][0]
    script = container["command"][-1]
    assert "rm -rf" not in script and "Qwen" not in script
    assert {"name": "HF_REVISION", "value": "main; rm -rf /"} in container["env"]
    assert "hf download" in script and ".modelplane-hydrated" in script


@pytest.mark.parametrize("change", ["not-ready", "no-provider-config"])
def test_a_cluster_that_cannot_take_changes_keeps_its_copy(change: str) -> None:
    xr = cache()
    ready, observed = converge(xr, [cluster("c1"), cluster("c2")])
    broken = (cluster("c1", ready=False) if change == "not-ready"
              else cluster("c1", provider=False))
    res = run(xr, [broken, cluster("c2")], observed=observed)
    for rname in of_cluster(ready, "c1").values():
        assert res.desired[rname].resource == as_desired(observed[rname])
    entry = next(c for c in res.status["clusters"] if c["name"] == "c1")
    assert entry["phase"] == "Ready" and "kept" in entry["message"]


def test_a_not_ready_cluster_gets_nothing_new() -> None:
    res = run(cache(), [cluster("c1", ready=False)])
    assert res.desired == {}
    assert res.status["clusters"] == [{"name": "c1", "phase": "Pending", "message": (
        "InferenceCluster is not Ready; nothing is staged until it is; "
        "waiting for the volume and the hydrate Job")}]


def test_a_cluster_missing_from_the_list_keeps_its_copy() -> None:
    xr = cache()
    ready, observed = converge(xr, [cluster("c1"), cluster("c2")])
    res = run(xr, [cluster("c2")], observed=observed)
    assert set(res.desired) == set(ready.desired)
    entry = next(c for c in res.status["clusters"] if c["name"] == "c1")
    assert "not found" in entry["message"] and entry["phase"] == "Ready"


def test_a_cluster_the_selector_no_longer_matches_is_released() -> None:
    _, observed = converge(cache(), _fleet())
    res = run(cache(selector=GPU), _fleet(), observed=observed)
    assert of_cluster(res, "eu-1") == {}
    assert _statuses(res) == {"us-1": "Ready", "us-2": "Ready"}
    assert condition(res, "CopiesHeld")[:2] == ("False", "NoneHeld")


def test_a_copy_no_longer_selected_is_held_while_a_replica_there_mounts_it() -> None:
    ready, observed = converge(cache(), _fleet())
    readers = [reader("qwen-abc", "eu-1"), reader("other", "eu-1", cache="another-cache")]
    res = run(cache(selector=GPU), _fleet(), observed=observed, readers=readers)
    assert of_cluster(res, "eu-1") == of_cluster(ready, "eu-1")
    # Not in the footprint placement reads, so the reader moves to a selected cluster.
    assert _statuses(res) == {"us-1": "Ready", "us-2": "Ready"}
    held = condition(res, "CopiesHeld")
    assert held[:2] == ("True", "MountedByReplicas")
    assert "eu-1 (mounted by ModelReplica qwen-abc)" in held[2] and "other" not in held[2]
    # Readers not known yet (first call of the loop): held too.
    first = run(cache(selector=GPU), _fleet(), observed=observed, readers_known=False)
    assert of_cluster(first, "eu-1") == of_cluster(ready, "eu-1")
    # The reader moved: the copy goes.
    moved = run(cache(selector=GPU), _fleet(), observed=observed,
                readers=[reader("qwen-def", "us-1")])
    assert of_cluster(moved, "eu-1") == {}


def test_unresolved_clusters_keep_everything() -> None:
    xr = cache()
    _, observed = converge(xr, [cluster("c1")])
    res = run(xr, None, observed=observed)
    assert {n: d.resource for n, d in res.desired.items()} == {
        n: as_desired(o) for n, o in observed.items()}
    assert condition(res, "Hydrated")[:2] == ("Unknown", "Resolving")


def test_invalid_spec_is_a_condition_and_keeps_everything() -> None:
    xr = cache()
    _, observed = converge(xr, [cluster("c1")])
    bad = cache()
    del bad["spec"]["huggingFace"]["sizeGiB"]
    res = run(bad, [cluster("c1")], observed=observed)
    assert set(res.desired) == set(observed)
    status, reason, message = condition(res, "Hydrated")
    assert (status, reason) == ("False", "InvalidSpec") and "spec.huggingFace.sizeGiB" in message


def test_no_matching_clusters_is_reported() -> None:
    res = run(cache(selector={"matchLabels": {"nope": "x"}}), _fleet())
    assert res.desired == {}
    assert condition(res, "Hydrated")[:2] == ("False", "NoMatchingClusters")
    assert res.status["summary"] == "0/0 Ready"


def test_output_is_deterministic() -> None:
    a = run(cache(token=True), list(reversed(_fleet())), secrets=[secret()])
    b = run(cache(token=True), _fleet(), secrets=[secret()])
    assert json.dumps({n: d.resource for n, d in a.desired.items()}, sort_keys=True) == \
        json.dumps({n: d.resource for n, d in b.desired.items()}, sort_keys=True)
    assert a.status == b.status


@pytest.mark.parametrize("scenario", ["plain", "token", "no-class", "finished"])
def test_every_composed_object_conforms(scenario: str) -> None:
    clusters = [cluster("c1", storage_class=None if scenario == "no-class" else "rwx")]
    kw: dict[str, Any] = {"secrets": [secret()]} if scenario == "token" else {}
    xr = cache(token=scenario == "token")
    if scenario == "finished":
        res, _ = converge(xr, clusters, **kw)
    else:
        res = run(xr, clusters, **kw)
    assert res.desired
    for rname, d in sorted(res.desired.items()):
        assert problems(d.resource, rname) == []


def test_each_condition_type_is_reported_once() -> None:
    xr = cache(token=True)
    _, observed = converge(xr, [cluster("c1", storage_class="a"), cluster("c2", storage_class="a")],
                           secrets=[secret()])
    res = run(xr, [cluster("c1", storage_class="b"), cluster("c2", storage_class=None),
                   cluster("c3", storage_class=None)], secrets=[], observed=observed)
    types = [c.type for c in res.conditions]
    assert sorted(types) == sorted(set(types))
    assert condition(res, "StorageClass")[:2] == ("False", "Immutable")
