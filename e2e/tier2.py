"""Tier 2 end-to-end test: the real scheduler allocating our DRA CEL on fake GPU nodes.

Run by ``make e2e`` after tier 1 when the tier-2 toolchain is built (e2e/tier2.sh decides and
says so loudly when it skips); ``python e2e/tier2.py --help``. docs/e2e.md has the topology.

On top of tier 1's control plane (e2e/harness.py, reused phase by phase) this runs, for real:
kube-controller-manager (Deployments, ReplicaSets, garbage collection, the resourceclaim
controller), kube-scheduler (its DynamicResources plugin evaluates our DeviceClass and claim
CEL against ResourceSlices), kwok (fake Nodes and Pods: no kubelet), and provider-kubernetes
(applies our Objects' manifests in the workload cluster). SIMULATED, by e2e/fakecloud.py: the
cloud APIs, the Helm charts' contents and their gateway controllers.

Phases after tier 1's pki/control-plane: controllers, registry, crossplane, function, crds,
configuration, providers, then the scenarios (each a bounded wait with a clear message):

  converge          examples/quickstart applied; every XR Ready
  devices           each replica's pods Running on a GPU node of the pool placement chose,
                    with their ResourceClaims allocated (status.allocation names the devices)
  overcommit-scale  scaled (scale subresource) to one more replica than there are GPUs:
                    placement places what fits and says ReplicasScheduled=False; the scheduler
                    agrees (one more pod with the same claim stays Unschedulable); back to 1
  canary            a second ModelDeployment behind the ModelService at 9:1, then 5:5: the
                    weights reach the gateway's HTTPRoute
  usage             deleting the InferenceCluster that hosts replicas is refused (webhook)
  delete            deleting the ModelDeployments removes replicas, Objects, Deployments,
                    pods, claims and templates, then the cluster's ClusterUsage
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # e2e/harness.py, beside this file
from harness import Failure, Harness, condition, log

REPO = harness.REPO
WORKLOAD_TOKEN = "modelplane-e2e-workload-identity-token"
CONTROL_PLANE_NODE = "modelplane-e2e-control-plane"
ML_NS = "ml-team"


class Tier2(Harness):
    def __init__(self, bindir: Path, run_dir: Path, timeout: int) -> None:
        super().__init__(bindir, run_dir, timeout)
        self.play_kubelet = False  # kwok runs the Function's pod; the Deployment goes Available
        # GKE Workload Identity: the fake metadata endpoint's token is a Google identity that the
        # workload API server knows (static token file, group system:masters).
        self.apiserver_extra = [f"--token-auth-file={run_dir / 'tokens.csv'}"]
        self.metadata_address = "127.0.0.1:8988"
        # Crossplane's webhooks on, so Usages are enforced. The API server reaches a webhook
        # Service at its ClusterIP (no kube-proxy here): that address is put on our loopback.
        versions = dict(line.split("#")[0].strip().split("=", 1)
                        for line in (REPO / "e2e" / "versions.env").read_text().splitlines()
                        if "=" in line.split("#")[0])
        cache = Path(os.environ.get("MODELPLANE_E2E_CACHE", "/var/cache/modelplane-e2e"))
        self.webhook_configs = (cache / "gomod" / "github.com" / "crossplane" / "crossplane"
                                / f"v2@v{versions['CROSSPLANE_VERSION']}" / "cluster"
                                / "webhookconfigurations")
        self.webhook_ip = "10.96.0.44"
        pk = bindir / "provider-kubernetes-package" / "crds"
        # provider-kubernetes' own CRDs (the version that runs), not the conformance snapshot.
        for f in sorted(pk.glob("*.yaml")):
            crd = yaml.safe_load(f.read_text())
            self.crd_overrides[(crd["spec"]["group"], crd["spec"]["names"]["kind"])] = f

    # -- phases ----------------------------------------------------------------------------

    def pki(self) -> None:
        super().pki()
        (self.d / "tokens.csv").write_text(
            f'{WORKLOAD_TOKEN},e2e-workload-identity,e2e-workload-identity,"system:masters"\n')
        pk = self.d / "tls" / "provider-kubernetes"
        pk.mkdir(parents=True)
        # Its conversion webhook server must start (it serves only the legacy cluster-scoped
        # Object, which nothing here requests): a self-signed pair is enough.
        self.sh(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                 "-subj", "/CN=provider-kubernetes", "-keyout", str(pk / "tls.key"),
                 "-out", str(pk / "tls.crt")], quiet=True)

    def controllers(self) -> None:
        d = self.d
        # The Service the Crossplane Helm chart creates for its webhooks, at a fixed ClusterIP
        # that is an address of our loopback: the API server dials it, Crossplane listens.
        self.sh(["ip", "addr", "add", f"{self.webhook_ip}/32", "dev", "lo"])
        self.apply([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": harness.NS}},
                    {"apiVersion": "v1", "kind": "Service", "metadata": {
                        "name": "crossplane-webhooks", "namespace": harness.NS},
                     "spec": {"clusterIP": self.webhook_ip, "ports": [{
                         "name": "webhooks", "port": self.webhook_port,
                         "targetPort": self.webhook_port}]}}])
        self.start("kube-controller-manager", [
            "kube-controller-manager", f"--kubeconfig={d / 'admin.kubeconfig'}",
            "--bind-address=127.0.0.1", "--secure-port=10257", "--leader-elect=false",
            "--service-account-private-key-file=sa.key", "--root-ca-file=ca.crt",
            "--cluster-signing-cert-file=ca.crt", "--cluster-signing-key-file=ca.key",
            "--use-service-account-credentials=false", "--controllers=*",
            "--profiling=false"])
        self.start("kube-scheduler", [
            "kube-scheduler", f"--kubeconfig={d / 'admin.kubeconfig'}",
            "--bind-address=127.0.0.1", "--secure-port=10259", "--leader-elect=false",
            "--profiling=false"])
        stages = self.bin / "kwok-stages"
        (d / "kwok-stages.yaml").write_text("\n---\n".join(
            f.read_text() for f in sorted(stages.glob("*.yaml"))))
        self.start("kwok", [
            "kwok", f"--kubeconfig={d / 'admin.kubeconfig'}",
            "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
            f"--config={d / 'kwok-stages.yaml'}", "--server-address=127.0.0.1:10247",
            "--node-ip=127.0.0.1"])
        # The control plane's own node: where the package runtime's pods (our Function's
        # Deployment) land. The GPU nodes come from the fake cloud's node pools.
        self.apply([{"apiVersion": "v1", "kind": "Node", "metadata": {
            "name": CONTROL_PLANE_NODE, "annotations": {"kwok.x-k8s.io/node": "fake"},
            "labels": {"kubernetes.io/hostname": CONTROL_PLANE_NODE, "type": "kwok",
                       "node-role.kubernetes.io/control-plane": ""}}}])
        cap = {"cpu": "16", "memory": "64Gi", "pods": "110"}
        self.kubectl("patch", "node", CONTROL_PLANE_NODE, "--subresource=status",
                     "--type=merge", "-p", json.dumps({"status": {"capacity": cap,
                                                                  "allocatable": cap}}))
        self.kubectl("wait", f"node/{CONTROL_PLANE_NODE}", "--for=condition=Ready",
                     f"--timeout={self.timeout}s")

    def providers(self) -> None:
        d = self.d
        # Every CRD of the provider's package (what installing it would apply): the crds phase
        # applied only the kinds we compose, and the provider also writes ProviderConfigUsages.
        # Not the legacy cluster-scoped Object: its conversion webhook needs the Service the
        # package manager would fill in, and nothing here requests that kind.
        crds = [f for f in sorted((self.bin / "provider-kubernetes-package" / "crds")
                                  .glob("*.yaml"))
                if (yaml.safe_load(f.read_text())["spec"].get("conversion") or {})
                .get("strategy") != "Webhook"]
        self.kubectl("apply", "--server-side", "--force-conflicts",
                     *[a for f in crds for a in ("-f", str(f))], quiet=True, timeout=300)
        self.kubectl("wait", "--for=condition=Established", *[
            f"crd/{yaml.safe_load(f.read_text())['metadata']['name']}" for f in crds],
            f"--timeout={self.timeout}s", quiet=True)
        wl = d / "workload.kubeconfig"
        kc = ["kubectl", "config", "--kubeconfig", str(wl)]
        self.sh([*kc, "set-cluster", "workload", f"--server=https://127.0.0.1:{self.api_port}",
                 "--certificate-authority=ca.crt", "--embed-certs"], quiet=True)
        self.sh([*kc, "set-credentials", "workload", f"--token={WORKLOAD_TOKEN}"], quiet=True)
        self.sh([*kc, "set-context", "workload", "--cluster=workload", "--user=workload"],
                quiet=True)
        self.sh([*kc, "use-context", "workload"], quiet=True)
        self.start("fakecloud", [
            sys.executable, str(Path(__file__).resolve().parent / "fakecloud.py"),
            f"--kubeconfig={d / 'admin.kubeconfig'}", f"--workload-kubeconfig={wl}",
            f"--token={WORKLOAD_TOKEN}", f"--metadata-address={self.metadata_address}"])
        env = dict(self.env, GCE_METADATA_HOST=self.metadata_address,
                   WEBHOOK_TLS_CERT_DIR=str(d / "tls" / "provider-kubernetes"))
        self.start("provider-kubernetes", [
            "provider-kubernetes", "--debug", "--poll=10s", "--sync=1m",
            "--enable-watches", "--webhook-port=9445",
            "--metrics-bind-address=127.0.0.1:8090", "--health-probe-bind-addr=127.0.0.1:8091"],
            env=env)
        self.wait_until("provider-kubernetes /readyz", lambda: self.sh(
            ["curl", "-sf", "http://127.0.0.1:8091/readyz"], check=False,
            quiet=True).returncode == 0, timeout=120)

    # -- scenarios ---------------------------------------------------------------------------

    def converge(self) -> None:
        qs = REPO / "examples" / "quickstart"
        for ns in sorted(harness.example_namespaces(qs)):
            if self.kubectl("get", "namespace", ns, check=False, quiet=True).returncode:
                self.kubectl("create", "namespace", ns)
        self.kubectl("apply", "-f", str(qs))
        xr_kinds = self.xr_kinds()

        def all_ready() -> bool:
            xrs = self.list_xrs(xr_kinds)
            return bool(xrs) and all(condition(x, "Ready") and condition(x, "Synced")
                                     for x in xrs)
        try:
            self.wait_until("every XR of examples/quickstart Ready", all_ready, interval=5,
                            timeout=max(self.timeout, 600))
        finally:
            self.print_xrs(xr_kinds)
        log("the quickstart fleet converged: every XR Synced and Ready")

    def devices(self) -> None:
        replicas = self.get_json("-n", ML_NS, "modelreplicas")["items"]
        if not replicas:
            raise Failure("no ModelReplica in ml-team")
        nodes = {n["metadata"]["name"]: n for n in self.get_json("nodes")["items"]}
        for r in replicas:
            rname = r["metadata"]["name"]
            pools = {m.get("pool") for e in r.get("spec", {}).get("engines") or []
                     for m in e.get("members") or []}

            def running(rname: str = rname) -> list[dict[str, Any]]:
                pods = self.get_json("-n", ML_NS, "pods", "-l",
                                     f"modelplane.ai/replica={rname}")["items"]
                return [p for p in pods if p.get("status", {}).get("phase") == "Running"]

            pods = self.wait_until(f"a Running pod of replica {rname}", running)
            for p in pods:
                node = p["spec"].get("nodeName", "")
                labels = nodes.get(node, {}).get("metadata", {}).get("labels", {})
                if labels.get("modelplane.ai/pool") not in pools:
                    raise Failure(f"pod {p['metadata']['name']} of {rname} runs on {node} "
                                  f"(pool {labels.get('modelplane.ai/pool')}), placement "
                                  f"chose {sorted(map(str, pools))}")
                for st in p.get("status", {}).get("resourceClaimStatuses") or []:
                    claim = self.get_json("-n", ML_NS, "resourceclaim",
                                          st["resourceClaimName"])
                    alloc = (claim.get("status") or {}).get("allocation") or {}
                    results = (alloc.get("devices") or {}).get("results") or []
                    if not results:
                        raise Failure(f"claim {st['resourceClaimName']} of pod "
                                      f"{p['metadata']['name']} has no allocation")
                    log(f"  pod {p['metadata']['name']} on {node}: claim "
                        f"{st['resourceClaimName']} allocated "
                        + ", ".join(f"{x['request']}={x['driver']}/{x['pool']}/{x['device']}"
                                    for x in results))
                if not p.get("status", {}).get("resourceClaimStatuses"):
                    raise Failure(f"pod {p['metadata']['name']} of {rname} has no "
                                  f"ResourceClaim: {p['spec'].get('resourceClaims')}")
        log("every replica's pods run on GPU nodes with devices the scheduler allocated")

    def gpu_capacity(self) -> int:
        slices = self.get_json("resourceslices")["items"]
        return sum(len(sl["spec"].get("devices") or []) for sl in slices
                   if sl["spec"].get("driver") == "gpu.nvidia.com")

    def replicas_of(self, md: str) -> list[dict[str, Any]]:
        return [r for r in self.get_json("-n", ML_NS, "modelreplicas")["items"]
                if r["spec"].get("deployment") == md]

    def wait_replicas(self, md: str, want: int) -> None:
        """``want`` ModelReplicas of ``md`` and exactly their pods Running (bounded)."""
        def settled() -> bool:
            names = {r["metadata"]["name"] for r in self.replicas_of(md)}
            pods = self.get_json("-n", ML_NS, "pods", "-l",
                                 f"modelplane.ai/deployment={md}")["items"]
            running = {p["metadata"]["labels"].get("modelplane.ai/replica") for p in pods
                       if p.get("status", {}).get("phase") == "Running"
                       and not p["metadata"].get("deletionTimestamp")}
            return len(names) == want and running == names and len(pods) == want
        self.wait_until(f"{want} ModelReplica(s) of {md}, each with its pod Running", settled,
                        interval=3, timeout=max(self.timeout, 600))

    def overcommit_and_scale(self) -> None:
        """Scale past the fleet's GPUs: placement places what fits and refuses the rest, the
        scheduler agrees (a pod asking for one more such device stays Pending); then down."""
        cap = self.gpu_capacity()
        want = cap + 1
        log(f"{cap} gpu.nvidia.com devices published; scaling qwen-demo to {want}")
        self.kubectl("-n", ML_NS, "scale", "modeldeployment/qwen-demo", f"--replicas={want}")

        def refused() -> str | None:
            md = self.get_json("-n", ML_NS, "modeldeployment", "qwen-demo")
            c = next((c for c in md.get("status", {}).get("conditions") or []
                      if c["type"] == "ReplicasScheduled"), {})
            if md.get("status", {}).get("desiredReplicas") == want and c.get("status") == "False":
                return str(c.get("message", ""))
            return None
        msg = self.wait_until("qwen-demo ReplicasScheduled=False (placement refuses the "
                              "replica beyond capacity)", refused, interval=3)
        log(f"placement refused: {msg}")
        self.devices_after_scale(cap)
        # The scheduler agrees: one more pod with the same claim (same CEL) cannot be placed.
        rct = self.get_json("-n", ML_NS, "resourceclaimtemplates")["items"][0]["metadata"]["name"]
        probe = {"apiVersion": "v1", "kind": "Pod", "metadata": {
            "name": "overcommit-probe", "namespace": ML_NS},
            "spec": {"containers": [{"name": "probe", "image": "busybox",
                                     "resources": {"claims": [{"name": "gpu"}]}}],
                     "resourceClaims": [{"name": "gpu", "resourceClaimTemplateName": rct}],
                     "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists",
                                      "effect": "NoSchedule"}]}}
        self.apply([probe])

        def unschedulable() -> str | None:
            p = self.get_json("-n", ML_NS, "pod", "overcommit-probe")
            c = next((c for c in p.get("status", {}).get("conditions") or []
                      if c["type"] == "PodScheduled"), {})
            if p["spec"].get("nodeName"):
                raise Failure(f"the scheduler placed the overcommitting probe on "
                              f"{p['spec']['nodeName']}: our capacity view is wrong")
            return str(c.get("message")) if c.get("reason") == "Unschedulable" else None
        msg = self.wait_until("the overcommitting probe pod Unschedulable", unschedulable,
                              interval=2)
        log(f"the scheduler agrees: overcommit-probe stays Pending ({msg})")
        self.kubectl("-n", ML_NS, "delete", "pod", "overcommit-probe", "--wait=false")
        self.kubectl("-n", ML_NS, "scale", "modeldeployment/qwen-demo", "--replicas=1")
        self.wait_replicas("qwen-demo", 1)
        log("scaled down to 1: the other replicas, their pods and claims are gone")

    def devices_after_scale(self, cap: int) -> None:
        self.wait_replicas("qwen-demo", cap)
        claims = self.get_json("-n", ML_NS, "resourceclaims")["items"]
        devices = [(x["pool"], x["device"]) for c in claims
                   for x in ((c.get("status") or {}).get("allocation") or {}).get(
                       "devices", {}).get("results") or []]
        if len(devices) != cap or len(set(devices)) != cap:
            raise Failure(f"{cap} replicas should hold {cap} distinct devices: {devices}")
        log(f"scaled up to {cap}: each replica holds its own device: {sorted(devices)}")

    def canary(self) -> None:
        """A second ModelDeployment behind the same ModelService, 9:1, then 5:5."""
        qs = REPO / "examples" / "quickstart" / "model.yaml"
        md, ms = (d for d in yaml.safe_load_all(qs.read_text()) if d)
        can = json.loads(json.dumps(md))
        can["metadata"]["name"] = "qwen-canary"

        def service(stable: int, canary: int) -> dict[str, Any]:
            out = json.loads(json.dumps(ms))
            out["spec"]["endpoints"] = [
                {"selector": {"matchLabels": {"modelplane.ai/deployment": "qwen-demo"}},
                 "weight": stable},
                {"selector": {"matchLabels": {"modelplane.ai/deployment": "qwen-canary"}},
                 "weight": canary}]
            return out

        def weights() -> dict[str, int]:
            route = self.get_json("-n", ML_NS, "httproute", f"msvc-{ms['metadata']['name']}")
            out: dict[str, int] = {}
            for rule in route["spec"].get("rules") or []:
                for b in rule.get("backendRefs") or []:
                    key = "canary" if "qwen-canary" in b["name"] else "stable"
                    out[key] = out.get(key, 0) + int(b.get("weight", 1))
            return out

        self.apply([can, service(9, 1)])
        self.wait_replicas("qwen-canary", 1)
        self.wait_until("the ModelService route at 9:1",
                        lambda: weights() == {"stable": 9, "canary": 1}, interval=3)
        log("route msvc-qwen weights stable:canary = 9:1")
        self.apply([service(5, 5)])
        self.wait_until("the ModelService route at 5:5",
                        lambda: weights() == {"stable": 5, "canary": 5}, interval=3)
        log("canary weight change reached the route: 5:5")
        self.kubectl("-n", ML_NS, "delete", "modeldeployment", "qwen-canary", "--wait=false")
        self.apply([ms])

    def usage_refusal(self) -> None:
        """Deleting an InferenceCluster that hosts replicas is refused (ClusterUsage webhook)."""
        res = self.kubectl("delete", "inferencecluster", "starter", "--wait=false",
                           check=False, quiet=True)
        out = res.stdout + res.stderr
        if res.returncode == 0:
            raise Failure(f"deleting InferenceCluster starter was accepted: {out}")
        if "denied" not in out:
            raise Failure(f"deleting InferenceCluster starter failed, not by the webhook: {out}")
        ic = self.get_json("inferencecluster", "starter")
        if ic["metadata"].get("deletionTimestamp"):
            raise Failure("InferenceCluster starter is being deleted despite the refusal")
        log(f"deleting InferenceCluster starter refused: {out.strip()}")

    def delete_cleans_up(self) -> None:
        """Deleting the ModelDeployment removes its replicas and everything in the cluster."""
        for md in ("qwen-canary", "qwen-demo"):
            self.kubectl("-n", ML_NS, "delete", "modeldeployment", md, "--ignore-not-found",
                         "--wait=false")

        def gone() -> bool:
            left = [self.get_json("-n", ML_NS, kind)["items"] for kind in (
                "modelreplicas", "objects.kubernetes.m.crossplane.io", "deployments", "pods",
                "resourceclaims", "resourceclaimtemplates", "modeldeployments")]
            return not any(left)
        try:
            self.wait_until("every replica, Object, Deployment, pod, claim and claim template "
                            "of the deleted ModelDeployments gone", gone, interval=3,
                            timeout=max(self.timeout, 600))
        except Failure:
            self.kubectl("-n", ML_NS, "get", "modelreplicas,objects.kubernetes.m.crossplane.io,"
                         "deployments,pods,resourceclaims,resourceclaimtemplates", check=False)
            raise
        log("deleting the ModelDeployments cleaned up their replicas and workloads")
        # With no replica hosted, the InferenceCluster's ClusterUsage goes and deleting it works.
        self.wait_until("ClusterUsage starter-hosts-replicas gone", lambda: self.kubectl(
            "get", "clusterusage", "starter-hosts-replicas", check=False,
            quiet=True).returncode != 0, interval=3)
        log("the InferenceCluster's ClusterUsage is gone with its last replica")


def phases(h: Tier2) -> None:
    qs = [REPO / "examples" / "quickstart"]
    for name, step in (("pki", h.pki), ("control-plane", h.control_plane),
                       ("controllers", h.controllers), ("registry", h.registry),
                       ("crossplane", h.crossplane), ("function", h.function),
                       ("crds", lambda: h.crds(harness.composed_kinds(h.render_fleet(qs)))),
                       ("configuration", h.configuration), ("providers", h.providers),
                       ("converge", h.converge), ("devices", h.devices),
                       ("overcommit-scale", h.overcommit_and_scale), ("canary", h.canary),
                       ("usage", h.usage_refusal), ("delete", h.delete_cleans_up)):
        with h.phase(name):
            step()


def main() -> int:
    return harness.run(Tier2, phases, script=__file__, prefix="modelplane-e2e-tier2-",
                       title="tier 2", loud=("crossplane", "fakecloud", "provider-kubernetes"))


if __name__ == "__main__":
    sys.exit(main())
