"""A tenant's pod template cannot escape onto shared GPU nodes (docs/security.md, Pod policy).

Each attack is refused three times over: at admission (the XRDs' CEL rules), by
compose-deployment (no ModelReplica is composed from it) and by compose-replica (no workload is
composed, with the hosting cluster's policy); what already runs is kept.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from modelplane.contract import podpolicy
from modelplane.contract.context import PLACEMENT
from modelplane.step import StepRequest, StepResult
from modelplane.steps.modeldeployment.compose import compose as compose_deployment
from modelplane.steps.modeldeployment.decision import (
    PlacedMember,
    PlacedReplica,
    PlacementRecord,
    encode,
)
from modelplane.steps.modelreplica.compose import compose as compose_replica
from modelplane.validate import admit, default_registry

from tests.placement.fleet import deployment
from tests.results import condition
from tests.workloads.fixtures import cluster, manifests, replica, request, standalone

ENGINE = {"name": "engine", "image": "vllm/vllm-openai:v0.7.3"}


def _c(**security: Any) -> dict[str, Any]:
    return {**ENGINE, "securityContext": security}


# (name, pod spec, the offending field path below template)
ATTACKS: list[tuple[str, dict[str, Any], str]] = [
    ("privileged", {"containers": [_c(privileged=True)]},
     "spec.containers[0].securityContext.privileged"),
    ("privileged init container", {"containers": [ENGINE], "initContainers": [
        {"name": "i", "image": "busybox", "securityContext": {"privileged": True}}]},
     "spec.initContainers[0].securityContext.privileged"),
    ("hostNetwork", {"hostNetwork": True, "containers": [ENGINE]}, "spec.hostNetwork"),
    ("hostPID", {"hostPID": True, "containers": [ENGINE]}, "spec.hostPID"),
    ("hostPath /", {"containers": [ENGINE], "volumes": [
        {"name": "root", "hostPath": {"path": "/"}}]}, "spec.volumes[0].hostPath"),
    ("hostPort", {"containers": [{**ENGINE, "ports": [{"containerPort": 8000,
                                                        "hostPort": 8000}]}]},
     "spec.containers[0].ports[0].hostPort"),
    ("nodeName", {"nodeName": "gpu-node-1", "containers": [ENGINE]}, "spec.nodeName"),
    ("nodeSelector", {"nodeSelector": {"pool": "other"}, "containers": [ENGINE]},
     "spec.nodeSelector"),
    ("empty nodeSelector", {"nodeSelector": {}, "containers": [ENGINE]}, "spec.nodeSelector"),
    ("node affinity", {"affinity": {"nodeAffinity": {}}, "containers": [ENGINE]},
     "spec.affinity"),
    ("tolerate everything", {"tolerations": [{"operator": "Exists"}], "containers": [ENGINE]},
     "spec.tolerations"),
    ("schedulerName", {"schedulerName": "mine", "containers": [ENGINE]}, "spec.schedulerName"),
    ("priorityClassName", {"priorityClassName": "system-node-critical",
                           "containers": [ENGINE]}, "spec.priorityClassName"),
    ("serviceAccountName", {"serviceAccountName": "admin", "containers": [ENGINE]},
     "spec.serviceAccountName"),
    ("deprecated serviceAccount", {"serviceAccount": "admin", "containers": [ENGINE]},
     "spec.serviceAccount"),
    ("procMount", {"containers": [_c(procMount="Unmasked")]},
     "spec.containers[0].securityContext.procMount"),
    ("seLinux type", {"containers": [_c(seLinuxOptions={"type": "spc_t"})]},
     "spec.containers[0].securityContext.seLinuxOptions.type"),
    ("seLinux user on the pod", {"securityContext": {"seLinuxOptions": {"user": "root"}},
                                 "containers": [ENGINE]},
     "spec.securityContext.seLinuxOptions.user"),
    ("unsafe sysctl", {"securityContext": {"sysctls": [{"name": "kernel.msgmax",
                                                        "value": "1"}]},
                       "containers": [ENGINE]}, "spec.securityContext.sysctls[0].name"),
    ("seccomp Unconfined", {"containers": [_c(seccompProfile={"type": "Unconfined"})]},
     "spec.containers[0].securityContext.seccompProfile.type"),
    ("pod seccomp Unconfined", {"securityContext": {"seccompProfile": {"type": "Unconfined"}},
                                "containers": [ENGINE]},
     "spec.securityContext.seccompProfile.type"),
    ("AppArmor Unconfined", {"containers": [_c(appArmorProfile={"type": "Unconfined"})]},
     "spec.containers[0].securityContext.appArmorProfile.type"),
    ("Windows hostProcess", {"securityContext": {"windowsOptions": {"hostProcess": True}},
                             "containers": [ENGINE]},
     "spec.securityContext.windowsOptions.hostProcess"),
]
# Refused by Modelplane's default at composition (a cluster may grant them to a namespace).
GRANTABLE: list[tuple[str, dict[str, Any], str]] = [
    ("added capability", {"containers": [_c(capabilities={"add": ["SYS_ADMIN"]})]},
     "spec.containers[0].securityContext.capabilities.add[0]"),
    ("baseline capability added", {"containers": [_c(capabilities={"add": ["CHOWN"]})]},
     "spec.containers[0].securityContext.capabilities.add[0]"),
    ("allowPrivilegeEscalation", {"containers": [_c(allowPrivilegeEscalation=True)]},
     "spec.containers[0].securityContext.allowPrivilegeEscalation"),
    ("hostIPC", {"hostIPC": True, "containers": [ENGINE]}, "spec.hostIPC"),
]
APPARMOR_ANNOTATION = {"container.apparmor.security.beta.kubernetes.io/engine": "unconfined"}
MEMBER = "spec.engines[0].members[0].template"


def _md(pod: dict[str, Any], annotations: dict[str, str] | None = None) -> dict[str, Any]:
    md = deployment("m", namespace="team")
    md["spec"]["engines"][0]["members"][0]["template"] = {"spec": copy.deepcopy(pod)}
    if annotations:
        md["spec"]["engines"][0]["members"][0]["template"]["metadata"] = {
            "annotations": annotations}
    return md


def _mr(pod: dict[str, Any]) -> dict[str, Any]:
    member = standalone()
    member["template"] = {"spec": copy.deepcopy(pod)}
    return replica(engines=[{"name": "qwen", "members": [member]}])


@pytest.mark.parametrize(("name", "pod", "field"), ATTACKS, ids=[a[0] for a in ATTACKS])
def test_admission_refuses_the_attack_naming_the_field(name: str, pod: dict[str, Any],
                                                       field: str) -> None:
    _, errors = admit(_md(pod), default_registry())
    assert any(e.path.startswith(f"{MEMBER}.{field}") for e in errors), errors


def test_admission_refuses_an_unconfined_apparmor_annotation() -> None:
    _, errors = admit(_md({"containers": [ENGINE]}, APPARMOR_ANNOTATION), default_registry())
    assert [e.path for e in errors] == [f"{MEMBER}.metadata.annotations"]


@pytest.mark.parametrize(("name", "pod", "field"), ATTACKS, ids=[a[0] for a in ATTACKS])
def test_a_modelreplica_is_refused_at_admission_too(name: str, pod: dict[str, Any],
                                                    field: str) -> None:
    _, errors = admit(_mr(pod), default_registry())
    assert any(f"members[0].template.{field}" in e.path for e in errors), errors


@pytest.mark.parametrize(("name", "pod", "field"), GRANTABLE, ids=[a[0] for a in GRANTABLE])
def test_grantable_fields_pass_admission_and_are_checked_per_cluster(
        name: str, pod: dict[str, Any], field: str) -> None:
    _, errors = admit(_md(pod), default_registry())
    assert errors == []


def _placed_deployment(md: dict[str, Any], observed: dict[str, Any] | None = None
                       ) -> StepResult:
    """compose-deployment after `place` put one replica on cluster a, pool p."""
    record = PlacementRecord(desired=1, scheduled=1, replicas=(PlacedReplica(
        name="m-0", ordinal=0, cluster="a", members=(PlacedMember("e", "Standalone", "p"),)),))
    return compose_deployment(StepRequest("compose-deployment", {}, md, observed=observed or {},
                                          context={PLACEMENT: encode(record)}))


@pytest.mark.parametrize(("name", "pod", "field"), ATTACKS, ids=[a[0] for a in ATTACKS])
def test_compose_deployment_composes_no_replica_from_a_refused_template(
        name: str, pod: dict[str, Any], field: str) -> None:
    res = _placed_deployment(_md(pod))
    assert res.desired == {}
    cond = condition(res, "ReplicasScheduled")
    assert (cond.status, cond.reason) == ("False", "PodPolicyViolation")
    assert f"{MEMBER}.{field}" in cond.message


def test_compose_deployment_keeps_running_replicas_when_the_template_turns_bad() -> None:
    running = {"replica-m-0": {"apiVersion": "modelplane.ai/v1alpha1", "kind": "ModelReplica",
                               "metadata": {"name": "m-0", "namespace": "team"},
                               "spec": {"cluster": "a"}}}
    res = _placed_deployment(_md({"hostNetwork": True, "containers": [ENGINE]}), running)
    assert set(res.desired) == {"replica-m-0"}
    assert res.desired["replica-m-0"].resource["spec"] == {"cluster": "a"}


def test_an_ordinary_template_composes_its_replica() -> None:
    res = _placed_deployment(_md({"containers": [ENGINE]}))
    assert "replica-m-0" in res.desired


@pytest.mark.parametrize(("name", "pod", "field"), ATTACKS + GRANTABLE,
                         ids=[a[0] for a in ATTACKS + GRANTABLE])
def test_compose_replica_composes_no_workload_from_a_refused_template(
        name: str, pod: dict[str, Any], field: str) -> None:
    res = compose_replica(request(_mr(pod)))
    assert res.desired == {}
    cond = condition(res, "Resolved")
    assert (cond.status, cond.reason) == ("False", "PodPolicyViolation")
    assert f"spec.engines[0].members[0].template.{field}" in cond.message


def test_compose_replica_keeps_running_workloads_when_the_template_turns_bad() -> None:
    good = compose_replica(request(_mr({"containers": [ENGINE]})))
    observed = {n: d.resource for n, d in good.desired.items()}
    bad = compose_replica(request(_mr({"hostPID": True, "containers": [ENGINE]}),
                                  observed=observed))
    assert set(bad.desired) == set(observed)
    assert manifests(bad.desired) == manifests(good.desired)


def _cluster(pod_security: dict[str, Any]) -> dict[str, Any]:
    c = cluster()
    c["spec"]["podSecurity"] = pod_security
    return c


@pytest.mark.parametrize(("name", "pod", "field"), GRANTABLE, ids=[a[0] for a in GRANTABLE])
def test_a_named_exception_admits_the_granted_field_for_that_namespace_only(
        name: str, pod: dict[str, Any], field: str) -> None:
    grant = {"namespace": "ml-team", "capabilities": ["SYS_ADMIN", "CHOWN"], "hostIPC": True,
             "allowPrivilegeEscalation": True}
    ok = compose_replica(request(_mr(pod), clusters=[_cluster({"exceptions": [grant]})]))
    assert "workload-qwen" in ok.desired
    other = compose_replica(request(_mr(pod), clusters=[_cluster(
        {"exceptions": [{**grant, "namespace": "someone-else"}]})]))
    assert other.desired == {}


def test_an_exception_never_lifts_the_floor() -> None:
    grant = {"namespace": "ml-team", "capabilities": ["SYS_ADMIN"], "hostIPC": True,
             "allowPrivilegeEscalation": True}
    res = compose_replica(request(_mr({"hostNetwork": True, "containers": [ENGINE]}),
                                  clusters=[_cluster({"exceptions": [grant]})]))
    assert res.desired == {}


def _ns_labels(res: Any) -> dict[str, str]:
    labels: dict[str, str] = res.desired["namespace"].resource["spec"]["forProvider"][
        "manifest"]["metadata"]["labels"]
    return labels


def test_workload_namespaces_enforce_baseline_by_default() -> None:
    labels = _ns_labels(compose_replica(request(_mr({"containers": [ENGINE]}))))
    assert labels["pod-security.kubernetes.io/enforce"] == "baseline"
    assert labels["pod-security.kubernetes.io/warn"] == "baseline"
    assert labels["pod-security.kubernetes.io/audit"] == "baseline"
    assert labels["pod-security.kubernetes.io/enforce-version"] == podpolicy.PSA_VERSION


RESTRICTED_OK = {"securityContext": {"runAsNonRoot": True,
                                     "seccompProfile": {"type": "RuntimeDefault"}},
                 "containers": [_c(allowPrivilegeEscalation=False,
                                   capabilities={"drop": ["ALL"]})]}


def test_a_restricted_cluster_enforces_restricted_and_refuses_a_baseline_template() -> None:
    restricted = _cluster({"level": "restricted"})
    res = compose_replica(request(_mr({"containers": [ENGINE]}), clusters=[restricted]))
    assert res.desired == {}
    msg = condition(res, "Resolved").message
    assert "allowPrivilegeEscalation" in msg and "restricted" in msg
    ok = compose_replica(request(_mr(RESTRICTED_OK), clusters=[restricted]))
    assert _ns_labels(ok)["pod-security.kubernetes.io/enforce"] == "restricted"


@pytest.mark.parametrize("volume", [{"name": "n", "nfs": {"server": "x", "path": "/"}},
                                    {"name": "g", "gitRepo": {"repository": "x"}}])
def test_restricted_refuses_volume_types_outside_its_list(volume: dict[str, Any]) -> None:
    pod = {**RESTRICTED_OK, "volumes": [volume]}
    res = compose_replica(request(_mr(pod), clusters=[_cluster({"level": "restricted"})]))
    assert res.desired == {}


def test_a_namespace_granted_what_baseline_forbids_is_enforced_by_modelplane_only() -> None:
    c = _cluster({"exceptions": [{"namespace": "ml-team", "capabilities": ["IPC_LOCK"]}]})
    labels = _ns_labels(compose_replica(request(_mr({"containers": [ENGINE]}), clusters=[c])))
    assert labels["pod-security.kubernetes.io/enforce"] == "privileged"
    assert labels["pod-security.kubernetes.io/warn"] == "baseline"


def test_pods_run_as_the_platform_service_account() -> None:
    c = _cluster({"serviceAccountName": "inference"})
    res = compose_replica(request(_mr({"containers": [ENGINE]}), clusters=[c]))
    pod = manifests(res.desired)["workload-qwen"]["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "inference"


def test_the_replica_checks_the_same_template_schema_as_the_deployment() -> None:
    apis = Path(__file__).resolve().parents[2] / "apis"

    def spec_schema(plural: str) -> Any:
        xrd = yaml.safe_load((apis / plural / "definition.yaml").read_text())
        s = xrd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
        member = s["properties"]["engines"]["items"]["properties"]["members"]["items"]
        return member["properties"]["template"]

    assert spec_schema("modeldeployments") == spec_schema("modelreplicas")
