"""The serving stack on an inference cluster, for every source alike.

- provider-kubernetes and provider-helm ClusterProviderConfigs whose credentials are the
  cluster's kubeconfig Secret (named after the InferenceCluster; the scheduler's contract);
- provider-helm Releases of the charts pinned in :mod:`modelplane.stack` (NVIDIA DRA driver,
  which also installs the ``gpu.nvidia.com`` DeviceClass; LeaderWorkerSet; Envoy Gateway; and
  on a cluster with an EFA pool, AWS's EFA DRA driver ``aws-dranet``);
- provider-kubernetes Objects: the GatewayClass and the ``modelplane`` Gateway replicas are
  exposed through (its observed ``status.addresses`` becomes the cluster's gateway address),
  plus any source-specific objects (e.g. EKS's EFS StorageClass);
- Usages that order deletion: the stack outlives nothing it depends on being deleted first.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from modelplane.common.names import dns_label
from modelplane.contract.metadata import CLUSTER_LABEL
from modelplane.contract.remote import (
    KUBERNETES_PROVIDER_API,
    PROVIDER_CONFIG_KIND,
    ProviderConfigRef,
)
from modelplane.step import Resource
from modelplane.steps.inferencecluster import charts
from modelplane.steps.inferencecluster.common import NAMESPACE, Ctx, Infra, object_

HELM_PC = "helm.m.crossplane.io/v1beta1"
USAGE = "protection.crossplane.io/v1beta1"

# Readiness policy per stack object: objects without status are ready once created.
_READINESS = {"Gateway": "AllTrue"}


def provider_config_name(ctx: Ctx) -> str:
    """The ClusterProviderConfigs reaching this cluster: under the reserved prefix
    ``modelplane-cluster-``, so a cluster named ``default`` never takes over (and on deletion
    deletes) the ``default`` ProviderConfigs a platform team owns."""
    return dns_label("modelplane-cluster", ctx.name)


def provider_config_refs(ctx: Ctx) -> dict[str, dict[str, str]]:
    """What the cluster publishes as status.providerConfigRef."""
    return {"kubernetes": {"kind": PROVIDER_CONFIG_KIND, "name": provider_config_name(ctx)},
            "helm": {"kind": PROVIDER_CONFIG_KIND, "name": provider_config_name(ctx)}}


def _provider_config(ctx: Ctx, api_version: str, infra: Infra) -> Resource:
    assert infra.kubeconfig is not None
    spec: dict[str, Any] = {"credentials": {"source": "Secret",
                                            "secretRef": dict(infra.kubeconfig)}}
    if infra.identity:
        spec["identity"] = dict(infra.identity)
    return {"apiVersion": api_version, "kind": PROVIDER_CONFIG_KIND,
            "metadata": {"name": provider_config_name(ctx), "labels": {CLUSTER_LABEL: ctx.name}},
            "spec": spec}


def _values(chart: charts.Chart, infra: Infra) -> dict[str, Any]:
    if chart.component == charts.DRA_DRIVER.component:
        return {
            **infra.dra_values,
            # The GPU kubelet plugin publishes GPUs as DRA devices (no device plugin).
            "resources": {"gpus": {"enabled": True}},
            "gpuResourcesEnabledOverride": True,
            "kubeletPlugin": {"tolerations": [{
                "key": charts.GPU_TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"}]},
        }
    if chart.component == charts.EFA_DRIVER.component:
        # Its DaemonSet must run on the GPU nodes, which carry the GPU taint.
        return {"tolerations": [{
            "key": charts.GPU_TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"}]}
    return {}


def gateway_manifests() -> dict[str, Resource]:
    """The GatewayClass and Gateway every cluster exposes its replicas through."""
    return {
        "gateway-class": {
            "apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass",
            "metadata": {"name": charts.GATEWAY_CLASS_NAME},
            "spec": {"controllerName": charts.GATEWAY_CONTROLLER_NAME},
        },
        "gateway": {
            "apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
            "metadata": {"name": charts.GATEWAY_NAME,
                         "namespace": charts.CLUSTER_GATEWAY_NAMESPACE},
            "spec": {"gatewayClassName": charts.GATEWAY_CLASS_NAME, "listeners": [{
                "name": charts.GATEWAY_LISTENER, "protocol": "HTTP",
                "port": charts.GATEWAY_PORT,
                "allowedRoutes": {"namespaces": {"from": "All"}}}]},
        },
    }


def usage(ctx: Ctx, name: str, of: Resource, by: Resource) -> Resource:
    """A Usage: ``of`` cannot be deleted while ``by`` exists (both in :data:`NAMESPACE`)."""
    def target(o: Resource) -> dict[str, Any]:
        return {"apiVersion": o["apiVersion"], "kind": o["kind"],
                "resourceRef": {"name": o["metadata"]["name"]}}
    return {"apiVersion": USAGE, "kind": "Usage",
            "metadata": {"name": name, "namespace": NAMESPACE,
                         "labels": {CLUSTER_LABEL: ctx.name}},
            # replayDeletion: a delete of `of` blocked by this Usage is retried once it is gone.
            "spec": {"of": target(of), "by": target(by), "replayDeletion": True}}


def compose(ctx: Ctx, infra: Infra, infra_resources: Mapping[str, Resource]
            ) -> dict[str, Resource]:
    """Every stack resource by composition-resource-name (infra must have a kubeconfig)."""
    out: dict[str, Resource] = {
        "provider-config-kubernetes": _provider_config(ctx, KUBERNETES_PROVIDER_API, infra),
        "provider-config-helm": _provider_config(ctx, HELM_PC, infra),
    }
    pc = ProviderConfigRef(PROVIDER_CONFIG_KIND, provider_config_name(ctx))
    helm_pc = {"kind": PROVIDER_CONFIG_KIND, "name": provider_config_name(ctx)}
    for chart in charts.charts(ctx.spec.get("stack"), efa=infra.efa):
        out[f"release-{chart.component}"] = {
            "apiVersion": "helm.m.crossplane.io/v1beta1", "kind": "Release",
            "metadata": {"name": ctx.res_name(chart.release), "namespace": NAMESPACE,
                         "labels": {CLUSTER_LABEL: ctx.name}},
            "spec": {"providerConfigRef": helm_pc, "forProvider": {
                "chart": {"name": chart.name, "repository": chart.repository,
                          "version": chart.version},
                "namespace": chart.namespace,
                "values": _values(chart, infra),
                "wait": True,
                "waitTimeout": "10m",
            }},
        }
    manifests = {**gateway_manifests(), **infra.cluster_objects}
    for rname, manifest in sorted(manifests.items()):
        out[rname] = object_(ctx, ctx.res_name(rname), manifest, pc,
                             _READINESS.get(str(manifest["kind"]), "SuccessfulCreate"))

    # Deletion order. The gateway objects need the gateway controller's CRDs and webhooks,
    # so they go before its Release; everything on the cluster goes before the cloud
    # cluster (and its kubeconfig source) that reaches it.
    usages: dict[str, Resource] = {}
    gateway_release = out[f"release-{charts.GATEWAY.component}"]
    for rname in ("gateway-class", "gateway"):
        usages[f"usage-{rname}-needs-gateway-release"] = usage(
            ctx, ctx.res_name(rname, "needs-gw-release"), gateway_release, out[rname])
    users = sorted(n for n, r in out.items() if r["kind"] in ("Release", "Object"))
    for dep in infra.stack_depends_on:
        if dep not in infra_resources:
            continue
        for rname in users:
            usages[f"usage-{rname}-needs-{dep}"] = usage(
                ctx, dns_label(out[rname]["metadata"]["name"], "needs", dep),
                infra_resources[dep], out[rname])
    out.update(usages)
    return out
