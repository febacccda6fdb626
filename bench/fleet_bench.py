"""Fleet benchmark: whole reconciles priced as Crossplane pays them.

A real `modelplane serve` process (one worker process, so "warm" means that worker has seen the
fleet) on 127.0.0.1, called over gRPC exactly as Crossplane 2.3 drives a Composition's
pipeline: for each step, call, satisfy the returned requirements from the generated fleet,
call again, until the requirements stop changing; the next step gets the previous one's
desired state and context. Every call is timed and counted.

Fleets: F clusters x 4 pools (four GPU shapes), E existing replicas belonging to E/5
deployments of 5 replicas each (spread over distinct clusters), every cluster publishing its
compact ledger as compose-cluster would. Measured per (F, E):

- placing R in {1, 10} replicas of a new deployment (both pipeline steps): warm (median of
  runs on a server that has served this fleet) and cold (the first reconcile of a fresh
  server process, timed from when it accepts connections);
- the fallback (R=10): one candidate cluster has not published its ledger yet;
- the steady reconcile of a placed 5-replica deployment;
- the InferenceCluster reconcile (compose-cluster) of a cluster hosting E/F replicas, and of
  one hosting 10x as many, so its fixed cost and its cost per hosted replica can be read off;
- request bytes (largest request of the reconcile, and per cluster), response bytes, and the
  server's resident memory (main process + worker) after the cell.

Prints a table; never asserts (performance is measured, never asserted in tests).

Usage: python bench/fleet_bench.py [--quick] [--fleets 1000x5000,5000x20000] [--runs N]
"""

from __future__ import annotations

import argparse
import importlib
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "functions"))
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")

import crossplane.function.proto.v1.run_function_pb2 as fnv1
import grpc
from crossplane.function import resource as sdk_resource
from crossplane.function.proto.v1 import run_function_pb2_grpc as grpcv1
from modelplane.contract.metadata import SPREAD_ANNOTATION
from modelplane.placement import core
from modelplane.placement.compact_ledger import allocation_summary
from modelplane.placement.inputs import request_from


def _optional(module: str) -> Any:
    """A module only newer trees have (the bench also prices the tree before them)."""
    try:
        return importlib.import_module(module)
    except ImportError:
        return None


capacity_contract = _optional("modelplane.contract.capacity")
capacity_codec = _optional("modelplane.placement.capacity")
API = "modelplane.ai/v1alpha1"
NOW = "2026-01-01T12:00:00Z"
BIN = Path(sys.executable).parent
SELECTOR = 'device.capacity["gpu.nvidia.com"].memory.compareTo(quantity("20Gi")) >= 0'
# class name, GPUs per node, memory, cost per node-hour, max nodes, GKE machine, accelerator
SHAPES = [("l4-1x", 1, "24Gi", "0.70", 64, "g2-standard-8", "nvidia-l4"),
          ("l40s-2x", 2, "48Gi", "2.10", 32, "g2-standard-24", "nvidia-l4"),
          ("a100-4x", 4, "80Gi", "8.20", 32, "a2-ultragpu-4g", "nvidia-a100-80gb"),
          ("h100-8x", 8, "80Gi", "24.00", 16, "a3-highgpu-8g", "nvidia-h100-80gb")]
REGIONS = ["us-east", "us-west", "eu-west", "ap-south"]
PER_DEPLOYMENT = 5
CHANNEL_OPTIONS = [("grpc.max_send_message_length", 256 * 2**20),
                   ("grpc.max_receive_message_length", 256 * 2**20)]
DEFAULT_FLEETS = [(f, e) for f in (100, 1000, 5000) for e in (0, 5000, 20000)]
QUICK_FLEETS = [(100, 0), (100, 5000), (1000, 5000)]


# -- the fleet -----------------------------------------------------------------------------------

def device(name: str, gpus: int, memory: str) -> dict[str, Any]:
    arch = {"h": "Hopper", "a": "Ampere"}.get(name[0], "Ada")
    return {"name": "gpu", "driver": "gpu.nvidia.com", "claim": "DRA",
            "deviceClassName": "gpu.nvidia.com", "count": gpus,
            "attributes": {"architecture": {"string": arch}, "productName": {"string": name}},
            "capacity": {"memory": {"value": memory}}}


def server_meta(name: str, i: int, namespace: str | None = None) -> dict[str, Any]:
    """What the API server adds to every object it returns (managedFields left out)."""
    meta: dict[str, Any] = {"name": name, "uid": f"00000000-0000-4000-8000-{i:012d}",
                            "resourceVersion": str(100000 + i), "generation": 3,
                            "creationTimestamp": "2026-01-01T00:00:00Z"}
    if namespace is not None:
        meta["namespace"] = namespace
    return meta


def classes() -> list[dict[str, Any]]:
    return [{"apiVersion": API, "kind": "InferenceClass",
             "metadata": server_meta(n, k),
             "spec": {"devices": [device(n, g, m)], "costPerNodeHour": c,
                      "provisioning": {"provider": "GKE", "gke": {
                          "machineType": mt, "accelerator": {"type": acc, "count": g}}}},
             "status": {"devices": [device(n, g, m)]}}
            for k, (n, g, m, c, _, mt, acc) in enumerate(SHAPES)]


def condition(type_: str, reason: str, message: str) -> dict[str, Any]:
    return {"type": type_, "status": "True", "reason": reason, "message": message,
            "lastTransitionTime": "2026-01-01T00:00:00Z", "observedGeneration": 3}


def cluster_spec() -> dict[str, Any]:
    return {"cluster": {"source": "GKE", "gke": {"project": "bench", "region": "us-east1"}},
            "nodePools": [{"name": f"pool-{n}", "className": n, "minNodeCount": 0,
                           "maxNodeCount": k} for n, _, _, _, k, _, _ in SHAPES]}


def cluster(i: int, hosted: list[dict[str, Any]], publish: bool = True) -> dict[str, Any]:
    """An InferenceCluster as the API server returns it once compose-cluster has run."""
    name = f"cluster-{i:04d}"
    summary = allocation_summary(hosted)
    pools = []
    for n, g, m, c, k, _, _ in SHAPES:
        p: dict[str, Any] = {"name": f"pool-{n}", "className": n, "nodeCeiling": k,
                             "minNodeCount": 0, "costPerNodeHour": c, "ready": True,
                             "devices": [device(n, g, m)]}
        if publish:
            p["allocated"] = summary.get(f"pool-{n}", [])
        pools.append(p)
    meta = server_meta(name, i)
    meta["labels"] = {"modelplane.ai/region": REGIONS[i % 4]}
    return {"apiVersion": API, "kind": "InferenceCluster", "metadata": meta,
            "spec": cluster_spec(),
            "status": {"pools": pools, "storageClassName": "modelplane-rwx",
                       "gateway": {"address": f"10.{i // 250}.{i % 250}.1"},
                       "providerConfigRef": {"kubernetes": f"{name}-kubernetes",
                                             "helm": f"{name}-helm"},
                       "conditions": [
                           condition("ClusterReady", "Available", "3 resource(s) ready"),
                           condition("NodePoolsReady", "Available", "4 resource(s) ready"),
                           condition("NodePoolsDrained", "NothingToDrain", "no pool removed "
                                     "from spec.nodePools hosts a ModelReplica"),
                           condition("PoolCapacity", "WithinCeiling", "every pool's "
                                     "nodeCeiling holds the replicas placed on it"),
                           condition("StackReady", "Available",
                                     f"serving stack installed; gateway at 10.{i}.0.1"),
                           condition("ClassesResolved", "Resolved",
                                     "4 pool(s) resolved to their InferenceClasses"),
                           condition("DeletionProtected", "HostsReplicas",
                                     f"{len(hosted)} ModelReplica(s) run here; deleting this "
                                     "cluster is blocked until they are moved or deleted"),
                           condition("Synced", "ReconcileSuccess", ""),
                           condition("Ready", "Available", "")]}}


def capacity_summary(ic: dict[str, Any]) -> dict[str, Any]:
    """The ConfigMap compose-cluster composes for ``ic``, as the API server returns it."""
    name = ic["metadata"]["name"]
    text = capacity_codec.summary(name, ic["metadata"].get("labels") or {}, [], True, None,
                   ic["status"]["pools"])
    meta = server_meta(capacity_contract.object_name(name), 2 * 10**6 + int(name[-4:]),
                       capacity_contract.NAMESPACE)
    meta["labels"] = {capacity_contract.LABEL: capacity_contract.LABEL_VALUE,
                      "modelplane.ai/cluster": name, "crossplane.io/composite": name}
    meta["annotations"] = {"crossplane.io/composition-resource-name": "capacity-summary"}
    meta["ownerReferences"] = [{"apiVersion": API, "kind": "InferenceCluster", "name": name,
                                "uid": ic["metadata"]["uid"], "controller": True,
                                "blockOwnerDeletion": True}]
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta,
            "data": {capacity_contract.DATA_KEY: text}}


def template() -> dict[str, Any]:
    return {"spec": {"containers": [{
        "name": "engine", "image": "vllm/vllm-openai:v0.7.3",
        "args": ["--model=Qwen/Qwen2.5-7B-Instruct", "--max-model-len=8192"],
        "ports": [{"containerPort": 8000, "name": "http"}]}]}}


def replica(k: int, deployment: str, namespace: str, cluster_name: str, pool: str,
            ordinal: int) -> dict[str, Any]:
    """A ModelReplica as compose-deployment composes it, with Crossplane's metadata."""
    name = f"{deployment}-{ordinal}-{k:05d}"
    meta = server_meta(name, 10**6 + k, namespace)
    meta["labels"] = {"modelplane.ai/deployment": deployment, "modelplane.ai/cluster":
                      cluster_name, "crossplane.io/composite": deployment}
    meta["annotations"] = {"modelplane.ai/ordinal": str(ordinal)}
    meta["ownerReferences"] = [{"apiVersion": API, "kind": "ModelDeployment",
                                "name": deployment, "uid": f"uid-{deployment}",
                                "controller": True, "blockOwnerDeletion": True}]
    return {"apiVersion": API, "kind": "ModelReplica", "metadata": meta,
            "spec": {"deployment": deployment, "cluster": cluster_name,
                     "serving": {"mode": "Unified"},
                     "engines": [{"name": "engine", "copies": 1, "members": [{
                         "role": "Standalone", "pool": pool, "template": template(),
                         "devices": [{"name": "gpu", "deviceClassName": "gpu.nvidia.com",
                                      "count": 1, "selectors": [{"cel": SELECTOR}]}]}]}]},
            "status": {"address": f"http://10.0.{k // 250}.{k % 250}/x", "conditions": [
                condition("Ready", "Available", "")]}}


def deployment(name: str, namespace: str, replicas: int) -> dict[str, Any]:
    return {"apiVersion": API, "kind": "ModelDeployment",
            "metadata": server_meta(name, 7, namespace),
            "spec": {"replicas": replicas, "serving": {"mode": "Unified"},
                     "placement": {"spreadTopologyKey": "modelplane.ai/region",
                                   "failoverWindow": "5m"},
                     "engines": [{"name": "engine", "copies": 1, "members": [{
                         "role": "Standalone", "template": template(),
                         "nodeSelector": {"devices": [{"name": "gpu", "count": 1,
                                                       "selectors": [{"cel": SELECTOR}]}]}}]}]}}


def struct_bytes(obj: dict[str, Any]) -> bytes:
    return bytes(sdk_resource.dict_to_struct(obj).SerializeToString())


class Fleet:
    """A generated fleet, kept as serialized protobuf so large requests are cheap to build."""

    def __init__(self, n_clusters: int, existing: int) -> None:
        self.n_clusters, self.existing = n_clusters, existing
        self.classes = classes()
        self.replicas: list[dict[str, Any]] = []
        hosted: list[list[dict[str, Any]]] = [[] for _ in range(n_clusters)]
        for k in range(existing):
            d = k // PER_DEPLOYMENT
            slot = k % PER_DEPLOYMENT
            c = (d * 7 + slot * (n_clusters // PER_DEPLOYMENT or 1)) % n_clusters
            shape = SHAPES[d % 4][0]
            r = replica(k, f"dep-{d:05d}", f"team-{d % 20:02d}", f"cluster-{c:04d}",
                        f"pool-{shape}", slot)
            self.replicas.append(r)
            hosted[c].append(r)
        self.hosted = hosted
        self._blobs: dict[tuple[str, int], bytes] = {}
        self._resources: dict[bytes, bytes] = {}
        self.unpublished: int | None = None  # a cluster without its ledger (the fallback)
        self.override: tuple[int, list[bytes]] | None = None  # (cluster, its replicas)

    def blob(self, kind: str, i: int) -> bytes:
        key = (kind, i)
        if key not in self._blobs:
            if kind == "cluster":
                obj = cluster(i, self.hosted[i])
            elif kind == "cluster-unpublished":
                obj = cluster(i, self.hosted[i], publish=False)
            elif kind == "summary":
                obj = capacity_summary(cluster(i, self.hosted[i]))
            elif kind == "summary-unpublished":
                obj = capacity_summary(cluster(i, self.hosted[i], publish=False))
            elif kind == "class":
                obj = self.classes[i]
            else:
                obj = self.replicas[i]
            self._blobs[key] = struct_bytes(obj)
        return self._blobs[key]

    def _cluster_blob(self, i: int, what: str = "cluster") -> bytes:
        return self.blob(f"{what}-unpublished" if i == self.unpublished else what, i)

    def select(self, sel: fnv1.ResourceSelector) -> list[bytes]:
        which = sel.WhichOneof("match")
        name = sel.match_name if which == "match_name" else None
        labels = dict(sel.match_labels.labels) if which == "match_labels" else {}
        if sel.kind == "InferenceClass":
            return [self.blob("class", k) for k, c in enumerate(self.classes)
                    if name in (None, c["metadata"]["name"])]
        if sel.kind == "InferenceCluster":
            if name is not None:
                i = int(name.rsplit("-", 1)[1]) if name.startswith("cluster-") else -1
                return [self._cluster_blob(i)] if 0 <= i < self.n_clusters else []
            return [self._cluster_blob(i) for i in range(self.n_clusters)]
        if (sel.kind == "ConfigMap" and capacity_contract is not None
                and labels.get(capacity_contract.LABEL)):
            return [self._cluster_blob(i, "summary") for i in range(self.n_clusters)]
        if sel.kind == "ModelReplica":
            on = labels.get("modelplane.ai/cluster")
            if on is not None:
                i = int(on.rsplit("-", 1)[1])
                if self.override is not None and self.override[0] == i:
                    return self.override[1]
                return [self.blob("replica", k) for k, r in enumerate(self.replicas)
                        if r["spec"]["cluster"] == on]
            return [self.blob("replica", k) for k in range(len(self.replicas))]
        return []

    def resources(self, sel: fnv1.ResourceSelector) -> bytes:
        """The serialized Resources message answering ``sel`` (cached)."""
        key = sel.SerializeToString(deterministic=True) + str(self.unpublished).encode()
        if key not in self._resources:
            rs = fnv1.Resources()
            for b in self.select(sel):
                rs.items.add().resource.MergeFromString(b)
            self._resources[key] = rs.SerializeToString()
        return self._resources[key]


# -- the server and Crossplane's loop ------------------------------------------------------------

def _rss_kib(pid: int) -> int:
    with suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def _children(pid: int) -> list[int]:
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with suppress(OSError):
            out += [int(x) for x in (task / "children").read_text().split()]
    return out


class Server:
    """A `modelplane serve --insecure --workers 1` process."""

    def __init__(self) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        self.addr = f"127.0.0.1:{port}"
        self.proc = subprocess.Popen(
            [str(BIN / "modelplane"), "serve", "--insecure", "--address", self.addr,
             "--workers", "1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            env={**os.environ, "MODELPLANE_METRICS_ADDRESS": ""})
        self.channel = grpc.insecure_channel(self.addr, options=CHANNEL_OPTIONS)
        grpc.channel_ready_future(self.channel).result(timeout=120)
        self.stub = grpcv1.FunctionRunnerServiceStub(self.channel)

    def cpu_ms(self) -> float:
        """CPU time the server (every thread of it and of its workers) has used so far."""
        total = 0
        for pid in [self.proc.pid, *_children(self.proc.pid)]:
            for task in Path(f"/proc/{pid}/task").glob("*"):
                with suppress(OSError, ValueError, IndexError):
                    total += int((task / "schedstat").read_text().split()[0])
        return total / 1e6

    def rss_mib(self) -> float:
        pids = [self.proc.pid, *_children(self.proc.pid)]
        return sum(_rss_kib(p) for p in pids) / 1024

    def close(self) -> None:
        self.channel.close()
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


@contextmanager
def serving() -> Iterator[Server]:
    s = Server()
    try:
        yield s
    finally:
        s.close()


class Reconcile:
    """What one reconcile cost: time over every call, server CPU, bytes, calls."""

    def __init__(self) -> None:
        self.ms = 0.0
        self.cpu = 0.0
        self.calls = 0
        self.max_request = 0
        self.response = 0
        self.asked: set[str] = set()


def run_step(stub: Any, fleet: Fleet, req: fnv1.RunFunctionRequest, out: Reconcile
             ) -> fnv1.RunFunctionResponse:
    """One pipeline step through Crossplane's requirements loop (until stable, at most 5)."""
    previous: dict[str, bytes] = {}
    rsp = fnv1.RunFunctionResponse()
    for _ in range(6):
        out.max_request = max(out.max_request, req.ByteSize())
        t = time.perf_counter()
        rsp = stub.RunFunction(req, timeout=600)
        out.ms += (time.perf_counter() - t) * 1000
        out.calls += 1
        out.response = max(out.response, rsp.ByteSize())
        fatal = [r.message for r in rsp.results if r.severity == fnv1.SEVERITY_FATAL]
        if fatal:
            raise SystemExit(f"function failed: {fatal[0]}")
        new = {n: s.SerializeToString(deterministic=True)
               for n, s in rsp.requirements.resources.items()}
        if new == previous:
            return rsp
        previous = new
        req.ClearField("required_resources")
        for n, sel in rsp.requirements.resources.items():
            out.asked.add(n.split(".")[0])
            req.required_resources[n].MergeFromString(fleet.resources(sel))
    raise SystemExit("requirements did not stabilise")


def pipeline(srv: Server, fleet: Fleet, xr: dict[str, Any], steps: list[str],
             observed: dict[str, dict[str, Any]] | None = None) -> Reconcile:
    out = Reconcile()
    stub = srv.stub
    cpu = srv.cpu_ms()
    desired = fnv1.State()
    desired.composite.resource.CopyFrom(sdk_resource.dict_to_struct(
        {"apiVersion": xr["apiVersion"], "kind": xr["kind"]}))
    context = sdk_resource.dict_to_struct({"modelplane.ai/now": NOW})
    for name in steps:
        req = fnv1.RunFunctionRequest(meta=fnv1.RequestMeta(tag="bench", capabilities=[
            fnv1.CAPABILITY_CAPABILITIES, fnv1.CAPABILITY_REQUIRED_RESOURCES,
            fnv1.CAPABILITY_CONDITIONS]))
        req.input.CopyFrom(sdk_resource.dict_to_struct(
            {"apiVersion": "fn.modelplane.ai/v1alpha1", "kind": "Input", "step": name}))
        req.observed.composite.resource.CopyFrom(sdk_resource.dict_to_struct(xr))
        for n, o in (observed or {}).items():
            req.observed.resources[n].resource.CopyFrom(sdk_resource.dict_to_struct(o))
        req.desired.CopyFrom(desired)
        req.context.CopyFrom(context)
        rsp = run_step(stub, fleet, req, out)
        desired.CopyFrom(rsp.desired)
        context.CopyFrom(rsp.context)
    out.cpu = srv.cpu_ms() - cpu
    return out


PLACE = ["place", "compose-deployment"]


def placing(srv: Server, fleet: Fleet, new: int) -> Reconcile:
    return pipeline(srv, fleet, deployment("bench", "ml", new), PLACE)


def steady_observed(fleet: Fleet) -> dict[str, dict[str, Any]]:
    """A placed 5-replica deployment: its replicas (spread record stamped) and endpoints."""
    n = min(PER_DEPLOYMENT, fleet.n_clusters)
    md = deployment("steady", "ml", n)
    record = core.spread_record(request_from(md, None), min(len(REGIONS), n))
    observed: dict[str, dict[str, Any]] = {}
    for slot in range(n):
        r = replica(slot, "steady", "ml", f"cluster-{slot:04d}", "pool-l4-1x", slot)
        r["metadata"]["annotations"][SPREAD_ANNOTATION] = record
        name = r["metadata"]["name"]
        observed[f"replica-{name}"] = r
        observed[f"endpoint-{name}"] = {
            "apiVersion": API, "kind": "ModelEndpoint",
            "metadata": {"name": name, "namespace": "ml"}, "status": {"ready": True}}
    return observed


def cluster_reconcile(srv: Server, fleet: Fleet, i: int, hosted: list[dict[str, Any]]
                      ) -> Reconcile:
    """compose-cluster for cluster i hosting ``hosted``, its composed resources observed Ready."""
    fleet.override = (i, [struct_bytes(r) for r in hosted])
    fleet._resources.clear()
    try:
        xr = cluster(i, hosted)
        # What a reconciled cluster observes: everything it composes, each Ready.
        first = Reconcile()
        req = fnv1.RunFunctionRequest()
        req.input.CopyFrom(sdk_resource.dict_to_struct(
            {"apiVersion": "fn.modelplane.ai/v1alpha1", "kind": "Input",
             "step": "compose-cluster"}))
        req.observed.composite.resource.CopyFrom(sdk_resource.dict_to_struct(xr))
        rsp = run_step(srv.stub, fleet, req, first)
        observed = {}
        for n, r in rsp.desired.resources.items():
            obj = dict(sdk_resource.struct_to_dict(r.resource))
            obj["status"] = {"conditions": [condition("Ready", "Available", ""),
                                            condition("Synced", "ReconcileSuccess", "")]}
            observed[n] = obj
        return pipeline(srv, fleet, xr, ["compose-cluster"], observed)
    finally:
        fleet.override = None
        fleet._resources.clear()


def median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


# -- the table -----------------------------------------------------------------------------------

IC_HOSTED = 40  # replicas on the cluster of the second InferenceCluster measurement


def bench_fleet(n_clusters: int, existing: int, runs: int, fallback: bool) -> list[str]:
    t0 = time.perf_counter()
    fleet = Fleet(n_clusters, existing)
    lines: list[str] = []
    for new in (1, 10):
        with serving() as srv:
            cold = placing(srv, fleet, new)  # the first reconcile of a fresh process
            warm = [placing(srv, fleet, new) for _ in range(runs)]
            fb: list[Reconcile] = []
            if fallback and new == 10 and existing:
                fleet.unpublished = 0
                placing(srv, fleet, new)
                fb = [placing(srv, fleet, new) for _ in range(max(1, runs // 2))]
                fleet.unpublished = None
            rss = srv.rss_mib()
            steady: list[Reconcile] = []
            ic0: list[Reconcile] = []
            ic40: list[Reconcile] = []
            if new == 10:
                obs = steady_observed(fleet)
                md = deployment("steady", "ml", len(obs) // 2)
                pipeline(srv, fleet, md, PLACE, obs)
                steady = [pipeline(srv, fleet, md, PLACE, obs) for _ in range(runs)]
                hosted = [replica(10**5 + k, f"ic-{k:05d}", "team-ic", "cluster-0000",
                                  f"pool-{SHAPES[k % 4][0]}", 0) for k in range(IC_HOSTED)]
                cluster_reconcile(srv, fleet, 0, [])
                ic0 = [cluster_reconcile(srv, fleet, 0, []) for _ in range(runs)]
                ic40 = [cluster_reconcile(srv, fleet, 0, hosted) for _ in range(runs)]
                rss = max(rss, srv.rss_mib())
        w, wc = median([x.ms for x in warm]), median([x.cpu for x in warm])
        line = (f"{n_clusters:>5} {existing:>5} {new:>2} | {w:>7.1f} {wc:>7.1f} "
                f"{cold.ms:>7.1f} {cold.cpu:>7.1f} {cold.cpu / wc:>4.1f} {warm[0].calls:>2} "
                f"{warm[0].max_request / 2**20:>6.2f} "
                f"{warm[0].max_request / n_clusters / 1024:>6.2f} "
                f"{warm[0].response / 1024:>6.1f} | ")
        if fb:
            line += (f"{median([f.cpu for f in fb]):>7.1f} "
                     f"{max(f.max_request for f in fb) / 2**20:>6.2f} | ")
        else:
            line += f"{'':>7} {'':>6} | "
        if steady and ic0 and ic40:
            fixed = median([x.cpu for x in ic0])
            slope = (median([x.cpu for x in ic40]) - fixed) / IC_HOSTED
            line += (f"{median([x.cpu for x in steady]):>6.1f} "
                     f"{steady[0].max_request / 1024:>5.0f} | {fixed:>6.1f} {slope:>6.3f} | ")
        else:
            line += f"{'':>6} {'':>5} | {'':>6} {'':>6} | "
        line += f"{rss:>5.0f}"
        print(line, flush=True)
        lines.append(line)
    print(f"{'':>6} (fleet {n_clusters}x{existing}: {time.perf_counter() - t0:.0f} s)",
          file=sys.stderr, flush=True)
    return lines


def parse_fleets(text: str) -> list[tuple[int, int]]:
    out = []
    for part in text.split(","):
        f, e = part.lower().split("x")
        out.append((int(f), int(e)))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3, help="warm runs per cell (median)")
    ap.add_argument("--quick", action="store_true",
                    help=f"only {', '.join(f'{f}x{e}' for f, e in QUICK_FLEETS)}")
    ap.add_argument("--fleets", type=parse_fleets, default=None,
                    help="comma-separated CLUSTERSxREPLICAS, e.g. 1000x5000,5000x20000")
    ap.add_argument("--no-fallback", action="store_true", help="skip the fallback column")
    args = ap.parse_args()
    fleets = args.fleets or (QUICK_FLEETS if args.quick else DEFAULT_FLEETS)
    print(f"whole reconciles over gRPC against `modelplane serve --workers 1` "
          f"({os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}); ms; warm = median of "
          f"{args.runs}; cpu = the server's CPU time (main process and worker, every thread)")
    header = (f"{'F':>5} {'E':>5} {'R':>2} | {'warm':>7} {'cpu':>7} {'cold':>7} {'cpu':>7} "
              f"{'c/w':>4} {'n':>2} {'reqMiB':>6} {'KiB/cl':>6} {'rspKiB':>6} | "
              f"{'fb cpu':>7} {'fbMiB':>6} | {'steady':>6} {'KiB':>5} | {'IC cpu':>6} "
              f"{'/rep':>6} | {'RSS':>5}")
    print(header)
    print("-" * len(header))
    for f, e in fleets:
        bench_fleet(f, e, args.runs, fallback=not args.no_fallback)
    print("warm/cold: the placing reconcile (both steps, n gRPC calls in all: every call of "
          "the requirements loop), wall and server CPU; c/w: cold/warm CPU; reqMiB: its "
          "largest request, KiB/cl: that per cluster; fb: the same with one candidate "
          "cluster's ledger unpublished; steady: CPU of the steady reconcile of a placed "
          "5-replica deployment and its largest request; IC: CPU of compose-cluster hosting "
          "no replica, /rep: CPU per hosted replica (from one hosting "
          f"{IC_HOSTED}); RSS: MiB resident, server + worker, after the cell")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
