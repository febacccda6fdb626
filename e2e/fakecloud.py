"""The e2e fake cloud: a SIMULATED stand-in for the cloud providers, Helm charts and in-cluster
controllers tier 2 does not run. It is ours, it is small, and every report names it.

What is faked (everything else in tier 2 is the real component):

- **cloud managed resources** (every ``*.upbound.io`` kind: GKE Cluster/NodePool, EKS
  Cluster/NodeGroup, AKS KubernetesCluster/…NodePool, networks, IAM): the managed-resource
  finalizer on create, ``crossplane.io/external-name``, ``status.atProvider`` (forProvider plus
  the computed fields our function reads), ``Synced=True`` and ``Ready=True``; clusters write
  their connection Secret (a kubeconfig for the workload API server); node pools create kwok
  Nodes (labels and taints from the pool's spec) and, for GPU pools, the ResourceSlices the
  NVIDIA DRA driver would publish (``gpu.nvidia.com`` devices with the attributes and
  capacities the pool's InferenceClass declares). On delete: nodes and slices go, then the
  finalizer.
- **GKE Workload Identity**: a GCE metadata endpoint handing provider-kubernetes a token the
  workload API server accepts (its static token file maps it to a Google identity).
- **Helm releases** (provider-helm is not run; no chart repository is reachable): marked
  deployed, and what the charts would install that our workloads need: the release namespace
  and, for the NVIDIA DRA driver chart, the ``gpu.nvidia.com`` DeviceClass.
- **the gateway controllers those charts would run**: GatewayClasses of their controllers
  Accepted, Gateways Programmed with an address, HTTPRoutes Accepted by their parents.

Run by e2e/tier2.py as one process (stopped by PID); ``python e2e/fakecloud.py --help``.
"""

from __future__ import annotations

import argparse
import base64
import copy
import hashlib
import http.server
import json
import sys
import threading
import time
from typing import Any

import yaml
from kubernetes import client, config
from kubernetes.client.rest import ApiException

Obj = dict[str, Any]

FINALIZER = "finalizer.managedresource.crossplane.io"
DRIVER = "gpu.nvidia.com"
FAKE_NODE = {"kwok.x-k8s.io/node": "fake"}  # what kwok manages
POOL_OF = "e2e.modelplane.ai/fake-cloud-pool"  # which managed node pool a Node belongs to
CLUSTER_KINDS = {"Cluster", "KubernetesCluster"}
POOL_KINDS = {"NodePool", "NodeGroup", "KubernetesClusterNodePool"}
#: Gateway controllers of the charts our stacks install (whose status we play).
GATEWAY_CONTROLLERS = ("traefik.io/gateway-controller",
                       "gateway.envoyproxy.io/gatewayclass-controller")


def log(msg: str) -> None:
    print(f"[fakecloud {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def cond(type_: str, reason: str, gen: int) -> Obj:
    return {"type": type_, "status": "True", "reason": reason, "lastTransitionTime": now(),
            "observedGeneration": gen}


def fake_ip(seed: str, first: int) -> str:
    h = hashlib.sha256(seed.encode()).digest()
    return f"{first}.{h[0]}.{h[1]}.{max(1, h[2] % 254)}"


class FakeCloud:
    def __init__(self, kubeconfig: str, workload_kubeconfig: str, token: str) -> None:
        self.api = config.new_client_from_config(kubeconfig)
        self.co = client.CustomObjectsApi(self.api)
        self.core = client.CoreV1Api(self.api)
        self.ext = client.ApiextensionsV1Api(self.api)
        # The workload cluster(s): tier 2 runs them in the control plane's API server, but every
        # write below goes through this second client, so a separate server would just work.
        self.wl_api = config.new_client_from_config(workload_kubeconfig)
        self.wl_co = client.CustomObjectsApi(self.wl_api)
        self.wl_core = client.CoreV1Api(self.wl_api)
        with open(workload_kubeconfig) as f:
            self.workload = yaml.safe_load(f)
        self.token = token
        self.kinds: list[tuple[str, str, str, str, bool]] = []
        self.kinds_at = -1e9

    # -- discovery -----------------------------------------------------------------------------

    def managed_kinds(self) -> list[tuple[str, str, str, str, bool]]:
        """(group, version, plural, kind, namespaced) of every cloud MR CRD and Helm Release,
        re-listed every 20 s (CRDs are large: not on every round)."""
        if time.monotonic() - self.kinds_at < 20:
            return self.kinds
        out = []
        resp = self.ext.list_custom_resource_definition(_preload_content=False)
        for crd in json.loads(resp.data)["items"]:
            g, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
            if not (g.endswith(".upbound.io")
                    or (g == "helm.m.crossplane.io" and kind == "Release")):
                continue
            if kind in ("ProviderConfig", "ClusterProviderConfig", "ProviderConfigUsage",
                        "ClusterProviderConfigUsage", "StoreConfig"):
                continue
            v = next(v["name"] for v in crd["spec"]["versions"] if v.get("storage"))
            out.append((g, v, crd["spec"]["names"]["plural"], kind,
                        crd["spec"]["scope"] == "Namespaced"))
        self.kinds, self.kinds_at = out, time.monotonic()
        return out

    # -- the loop ------------------------------------------------------------------------------

    def run(self, interval: float) -> None:
        while True:
            try:
                self.once()
            except ApiException as e:
                log(f"API error (retrying): {e.status} {e.reason}: {str(e.body)[:300]}")
            except Exception as e:  # a fake must not die on one odd object; it says so
                log(f"error (retrying): {type(e).__name__}: {e}")
            time.sleep(interval)

    def once(self) -> None:
        for g, v, plural, kind, _ns in self.managed_kinds():
            for o in self.co.list_cluster_custom_object(g, v, plural)["items"]:
                self.reconcile(g, v, plural, kind, o)
        self.gateways()

    def reconcile(self, g: str, v: str, plural: str, kind: str, o: Obj) -> None:
        m = o["metadata"]
        ns, name = m.get("namespace"), m["name"]
        if m.get("deletionTimestamp"):
            if FINALIZER in (m.get("finalizers") or []):
                self.on_delete(kind, o)
                fins = [f for f in m["finalizers"] if f != FINALIZER]
                self.patch(g, v, plural, ns, name, {"metadata": {"finalizers": fins}})
                log(f"deleted {kind} {ns}/{name} (finalizer removed)")
            return
        if FINALIZER not in (m.get("finalizers") or []):
            ann = {} if (m.get("annotations") or {}).get("crossplane.io/external-name") else {
                "crossplane.io/external-name": name}
            self.patch(g, v, plural, ns, name, {"metadata": {
                "finalizers": [*(m.get("finalizers") or []), FINALIZER], "annotations": ann}},
                merge_lists=True)
            return  # next round sees it with the finalizer
        gen = m.get("generation", 1)
        conds = {c["type"]: c for c in (o.get("status") or {}).get("conditions") or []}
        done = conds.get("Ready", {}).get("observedGeneration") == gen
        if done and conds.get("Ready", {}).get("status") == "True":
            return
        self.side_effects(g, kind, o)
        status = {"atProvider": self.at_provider(g, kind, o),
                  "conditions": [cond("Synced", "ReconcileSuccess", gen),
                                 cond("Ready", "Available", gen)]}
        self.co.patch_namespaced_custom_object_status(
            g, v, ns, plural, name, {"status": status}) if ns else \
            self.co.patch_cluster_custom_object_status(g, v, plural, name, {"status": status})
        log(f"{kind} {ns}/{name} Ready (simulated)")

    def patch(self, g: str, v: str, plural: str, ns: str | None, name: str, body: Obj,
              merge_lists: bool = False) -> None:
        del merge_lists  # finalizers are written whole (merge patch replaces the list)
        if ns:
            self.co.patch_namespaced_custom_object(g, v, ns, plural, name, body)
        else:
            self.co.patch_cluster_custom_object(g, v, plural, name, body)

    # -- per kind --------------------------------------------------------------------------------

    def at_provider(self, g: str, kind: str, o: Obj) -> Obj:
        fp = copy.deepcopy((o.get("spec") or {}).get("forProvider") or {})
        seed = f"{o['metadata'].get('namespace')}/{o['metadata']['name']}"
        ext = (o["metadata"].get("annotations") or {}).get("crossplane.io/external-name",
                                                             o["metadata"]["name"])
        if kind == "Release":
            return {"state": "deployed", "revision": 1}
        del fp  # only the computed fields (as render's simulated providers write them): a
        # copy of forProvider would have to match every atProvider schema
        at: Obj = {"id": ext}
        if kind == "Cluster" and g.startswith("container.gcp"):
            at.update(endpoint=self.server_host(), status="RUNNING")
        elif kind == "Cluster" and g.startswith("eks.aws"):
            at.update(endpoint=self.server(), status="ACTIVE",
                      arn=f"arn:aws:eks:us-east-1:123456789012:cluster/{ext}")
        elif kind == "KubernetesCluster":
            at["fqdn"] = self.server_host()
        elif kind == "LaunchTemplate":
            at.update(id=f"lt-{hashlib.sha256(seed.encode()).hexdigest()[:17]}", latestVersion=1)
        return at

    def side_effects(self, g: str, kind: str, o: Obj) -> None:
        if kind in CLUSTER_KINDS:
            self.connection_secret(g, o)
        elif kind in POOL_KINDS:
            self.nodes(o)
        elif kind == "Release":
            self.release(o)

    def on_delete(self, kind: str, o: Obj) -> None:
        if kind in POOL_KINDS:
            sel = f"{POOL_OF}={pool_id(o)}"
            for n in self.wl_core.list_node(label_selector=sel).items:
                self.delete_slices(n.metadata.name)
                self.wl_core.delete_node(n.metadata.name)

    # -- clusters --------------------------------------------------------------------------------

    def server(self) -> str:
        return str(self.workload["clusters"][0]["cluster"]["server"])

    def server_host(self) -> str:
        return self.server().removeprefix("https://")

    def connection_secret(self, g: str, o: Obj) -> None:
        ref = (o.get("spec") or {}).get("writeConnectionSecretToRef")
        if not ref:
            return
        ns = ref.get("namespace") or o["metadata"].get("namespace")
        name = o["metadata"]["name"]
        ca = self.workload["clusters"][0]["cluster"]["certificate-authority-data"]
        # GKE's kubeconfig carries no credentials (providers bring a Google identity, here the
        # fake metadata endpoint's token); the others carry the cluster's own credentials.
        user: Obj = {} if g.startswith("container.gcp") else {"token": self.token}
        kubeconfig = {"apiVersion": "v1", "kind": "Config",
                      "clusters": [{"name": name, "cluster": {"server": self.server(),
                                                              "certificate-authority-data": ca}}],
                      "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
                      "current-context": name, "users": [{"name": name, "user": user}]}
        data = {"kubeconfig": yaml.safe_dump(kubeconfig), "endpoint": self.server(),
                "clusterCA": base64.b64decode(ca).decode()}
        body = {"apiVersion": "v1", "kind": "Secret", "type": "connection.crossplane.io/v1alpha1",
                "metadata": {"name": ref["name"], "namespace": ns, "ownerReferences": [{
                    "apiVersion": o["apiVersion"], "kind": o["kind"], "name": name,
                    "uid": o["metadata"]["uid"], "controller": True}]},
                "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}}
        try:
            self.core.create_namespaced_secret(ns, body)
        except ApiException as e:
            if e.status != 409:
                raise
            self.core.replace_namespaced_secret(ref["name"], ns, body)
        log(f"connection secret {ns}/{ref['name']} (kubeconfig for {self.server()})")

    # -- node pools ------------------------------------------------------------------------------

    def nodes(self, o: Obj) -> None:
        shape = pool_shape(o)
        pool = pool_id(o)
        devices = self.pool_devices(o, shape["gpus"])
        want = {f"{pool}-{i}" for i in range(shape["count"])}
        have = {n.metadata.name for n in
                self.wl_core.list_node(label_selector=f"{POOL_OF}={pool}").items}
        for name in sorted(have - want):
            self.delete_slices(name)
            self.wl_core.delete_node(name)
        for name in sorted(want - have):
            labels = {**shape["labels"], POOL_OF: pool, "kubernetes.io/hostname": name,
                      "type": "kwok"}
            node = {"apiVersion": "v1", "kind": "Node",
                    "metadata": {"name": name, "labels": labels, "annotations": dict(FAKE_NODE)},
                    "spec": {"taints": shape["taints"]}}
            self.wl_core.create_node(node)
            cap = {"cpu": "8", "memory": "32Gi", "pods": "110"}
            self.wl_core.patch_node_status(name, {"status": {"capacity": cap,
                                                             "allocatable": cap}})
            if devices:
                self.slice(name, devices)
            log(f"node {name} ({len(devices)} {DRIVER} devices; labels {shape['labels']})")

    def pool_devices(self, o: Obj, gpus: int) -> list[Obj]:
        """The devices the NVIDIA DRA driver would publish: the pool's InferenceClass's."""
        if gpus <= 0:
            return []
        cls = self.pool_class(o)
        spec = next((d for d in (cls or {}).get("spec", {}).get("devices") or []
                     if d.get("driver", DRIVER) == DRIVER), {})
        out = []
        for i in range(gpus):
            attrs = {k: copy.deepcopy(v) for k, v in (spec.get("attributes") or {}).items()}
            attrs.update(index={"int": i}, uuid={"string": f"GPU-{pool_id(o)}-{i}"},
                         driverVersion={"version": "580.95.5"})
            out.append({"name": f"gpu-{i}", "attributes": attrs,
                        "capacity": copy.deepcopy(spec.get("capacity") or {})})
        return out

    def pool_class(self, o: Obj) -> Obj | None:
        labels = o["metadata"].get("labels") or {}
        cluster, pool = labels.get("modelplane.ai/cluster"), pool_label(o)
        if not cluster or not pool:
            return None
        try:
            ic = self.co.get_cluster_custom_object("modelplane.ai", "v1alpha1",
                                                   "inferenceclusters", cluster)
        except ApiException:
            return None
        cname = next((p.get("className") for p in ic["spec"].get("nodePools") or []
                      if p.get("name") == pool), None)
        if not cname:
            return None
        out: Obj = self.co.get_cluster_custom_object("modelplane.ai", "v1alpha1",
                                                     "inferenceclasses", cname)
        return out

    def slice(self, node: str, devices: list[Obj]) -> None:
        body = {"apiVersion": "resource.k8s.io/v1", "kind": "ResourceSlice",
                "metadata": {"name": f"{node}-{DRIVER}"},
                "spec": {"driver": DRIVER, "nodeName": node,
                         "pool": {"name": node, "generation": 1, "resourceSliceCount": 1},
                         "devices": devices}}
        self.wl_co.create_cluster_custom_object("resource.k8s.io", "v1", "resourceslices", body)

    def delete_slices(self, node: str) -> None:
        try:
            self.wl_co.delete_cluster_custom_object("resource.k8s.io", "v1", "resourceslices",
                                                    f"{node}-{DRIVER}")
        except ApiException as e:
            if e.status != 404:
                raise

    # -- charts ----------------------------------------------------------------------------------

    def release(self, o: Obj) -> None:
        fp = (o.get("spec") or {}).get("forProvider") or {}
        ns = fp.get("namespace")
        if ns:
            self.ensure(self.wl_core.create_namespace,
                        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
        chart = (fp.get("chart") or {}).get("name")
        if chart == "nvidia-dra-driver-gpu":
            self.ensure(lambda b: self.wl_co.create_cluster_custom_object(
                "resource.k8s.io", "v1", "deviceclasses", b), {
                "apiVersion": "resource.k8s.io/v1", "kind": "DeviceClass",
                "metadata": {"name": DRIVER},
                "spec": {"selectors": [{"cel": {"expression": f"device.driver == '{DRIVER}'"}}]}})

    @staticmethod
    def ensure(create: Any, body: Obj) -> None:
        try:
            create(body)
        except ApiException as e:
            if e.status != 409:
                raise

    # -- gateway controllers ---------------------------------------------------------------------

    def gateways(self) -> None:
        gw = ("gateway.networking.k8s.io", "v1")
        try:
            classes = self.wl_co.list_cluster_custom_object(*gw, "gatewayclasses")["items"]
        except ApiException as e:
            if e.status == 404:
                return  # no Gateway API CRDs (yet)
            raise
        ours: dict[str, str] = {}  # class -> its controller
        for c in classes:
            if c["spec"].get("controllerName") not in GATEWAY_CONTROLLERS:
                continue
            ours[c["metadata"]["name"]] = c["spec"]["controllerName"]
            if not accepted(c):
                self.wl_co.patch_cluster_custom_object_status(*gw, "gatewayclasses",
                    c["metadata"]["name"], {"status": {"conditions": [
                        std_cond("Accepted", c["metadata"].get("generation", 1))]}})
        parents: dict[tuple[str, str], str] = {}  # gateway -> the controller programming it
        for g in self.wl_co.list_cluster_custom_object(*gw, "gateways")["items"]:
            if g["spec"].get("gatewayClassName") not in ours:
                continue
            m = g["metadata"]
            parents[(m["namespace"], m["name"])] = ours[g["spec"]["gatewayClassName"]]
            if accepted(g, "Programmed"):
                continue
            gen = m.get("generation", 1)
            self.wl_co.patch_namespaced_custom_object_status(*gw, m["namespace"], "gateways",
                m["name"], {"status": {
                    "addresses": [{"type": "IPAddress",
                                   "value": fake_ip(f"{m['namespace']}/{m['name']}", 10)}],
                    "conditions": [std_cond("Accepted", gen), std_cond("Programmed", gen)]}})
            log(f"Gateway {m['namespace']}/{m['name']} Programmed (simulated controller)")
        for r in self.wl_co.list_cluster_custom_object(*gw, "httproutes")["items"]:
            m = r["metadata"]
            refs = [p for p in r["spec"].get("parentRefs") or []
                    if (p.get("namespace", m["namespace"]), p.get("name")) in parents]
            gen = m.get("generation", 1)
            status = [{"parentRef": p, "controllerName": parents[
                           (p.get("namespace", m["namespace"]), p["name"])],
                       "conditions": [std_cond("Accepted", gen), std_cond("ResolvedRefs", gen)]}
                      for p in refs]
            if not refs or [s.get("parentRef") for s in (r.get("status") or {}).get(
                    "parents") or [] if all(c.get("observedGeneration") == gen
                                           for c in s.get("conditions") or [])] == refs:
                continue
            self.wl_co.patch_namespaced_custom_object_status(
                *gw, m["namespace"], "httproutes", m["name"], {"status": {"parents": status}})
            log(f"HTTPRoute {m['namespace']}/{m['name']} Accepted (generation {gen})")


# -- helpers ----------------------------------------------------------------------------------

def std_cond(type_: str, gen: int) -> Obj:
    return {"type": type_, "status": "True", "reason": type_, "message": "simulated",
            "lastTransitionTime": now(), "observedGeneration": gen}


def accepted(o: Obj, type_: str = "Accepted") -> bool:
    gen = o["metadata"].get("generation", 1)
    return any(c.get("type") == type_ and c.get("status") == "True"
               and c.get("observedGeneration") == gen
               for c in (o.get("status") or {}).get("conditions") or [])


def pool_id(o: Obj) -> str:
    return str(o["metadata"]["name"])


def pool_label(o: Obj) -> str | None:
    fp = (o.get("spec") or {}).get("forProvider") or {}
    labels = (fp.get("nodeConfig") or {}).get("labels") or fp.get("labels") or \
        fp.get("nodeLabels") or {}
    return labels.get("modelplane.ai/pool")


def pool_shape(o: Obj) -> Obj:
    """Node count, labels, taints and GPUs per node from a GKE/EKS/AKS node pool's spec."""
    fp = (o.get("spec") or {}).get("forProvider") or {}
    nc = fp.get("nodeConfig") or {}
    auto = fp.get("autoscaling") or {}
    scaling = fp.get("scalingConfig") or [{}]
    scaling = scaling[0] if isinstance(scaling, list) and scaling else {}
    # No autoscaler is simulated: a pool runs at its ceiling, so the capacity placement plans
    # with (the pools' maximum node counts) is what the scheduler sees.
    count = (auto.get("totalMaxNodeCount") or auto.get("maxNodeCount") or scaling.get("maxSize")
             or fp.get("maxCount") or fp.get("nodeCount") or fp.get("initialNodeCount") or 1)
    labels = dict(nc.get("labels") or fp.get("labels") or fp.get("nodeLabels") or {})
    name = str(o["metadata"]["name"])
    labels["cloud.google.com/gke-nodepool"] = name  # harmless on other clouds' fakes
    machine = nc.get("machineType") or (fp.get("instanceTypes") or [None])[0] or fp.get("vmSize")
    if machine:
        labels["node.kubernetes.io/instance-type"] = str(machine)
    gpus = sum(int(a.get("count", 0)) for a in nc.get("guestAccelerator") or [])
    for a in nc.get("guestAccelerator") or []:
        labels["cloud.google.com/gke-accelerator"] = str(a.get("type"))
    if not gpus and labels.get("nvidia.com/gpu.present") == "true":
        gpus = 1
    effects = {"NO_SCHEDULE": "NoSchedule", "PREFER_NO_SCHEDULE": "PreferNoSchedule",
               "NO_EXECUTE": "NoExecute"}
    taints = [{"key": t["key"], "value": t.get("value", ""),
               "effect": effects.get(t.get("effect", ""), t.get("effect", "NoSchedule"))}
              for t in nc.get("taint") or fp.get("taint") or []]
    return {"count": int(count), "labels": {k: str(v) for k, v in labels.items()},
            "taints": taints, "gpus": gpus}


class Metadata(http.server.BaseHTTPRequestHandler):
    """The GCE metadata server's token endpoint (GKE Workload Identity), and nothing else."""

    token = ""

    def do_GET(self) -> None:
        if self.path.startswith("/computeMetadata/v1/instance/service-accounts/") and \
                self.path.split("?")[0].endswith("/token"):
            body = json.dumps({"access_token": self.token, "expires_in": 3600,
                               "token_type": "Bearer"}).encode()
        elif self.path.startswith("/computeMetadata/v1/project/project-id"):
            body = b"my-gcp-project"
        else:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Metadata-Flavor", "Google")
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    served = 0

    def log_message(self, format: str, *args: Any) -> None:
        # provider-kubernetes asks for a token on every reconcile: log the first few only, so
        # the log's tail (shown on failure) keeps what matters.
        Metadata.served += 1
        if Metadata.served <= 3:
            log("metadata " + format % args + (" (further requests not logged)"
                                               if Metadata.served == 3 else ""))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kubeconfig", required=True, help="the control plane")
    ap.add_argument("--workload-kubeconfig", required=True, help="the workload API server")
    ap.add_argument("--token", required=True, help="the workload cluster's bearer token")
    ap.add_argument("--metadata-address", default="127.0.0.1:8988",
                    help="where the fake GCE metadata endpoint listens")
    ap.add_argument("--interval", type=float, default=2.0)
    args = ap.parse_args()
    host, port = args.metadata_address.rsplit(":", 1)
    Metadata.token = args.token
    srv = http.server.ThreadingHTTPServer((host, int(port)), Metadata)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    log(f"GCE metadata endpoint on {args.metadata_address}; SIMULATED cloud running")
    FakeCloud(args.kubeconfig, args.workload_kubeconfig, args.token).run(args.interval)
    return 0


if __name__ == "__main__":
    sys.exit(main())
