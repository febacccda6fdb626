"""Placement benchmark: full RunFunction over gRPC and the placement core alone.

Synthetic fleets of {10, 100, 1000} clusters x 4 pools of different GPU shapes, with {0, 1000,
5000} existing replicas of other deployments, placing {1, 10} replicas; plus the steady
reconcile (nothing to place) of a 10-replica deployment. Prints a table of medians; never
asserts timings (performance is measured here, never asserted in tests).

Usage: python bench/placement_bench.py [--runs N] [--quick]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "functions"))
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")  # no connection-teardown chatter in the table

import crossplane.function.proto.v1.run_function_pb2 as fnv1
from modelplane import cel
from modelplane import server as fn_server
from modelplane.contract.metadata import SPREAD_ANNOTATION
from modelplane.placement import core
from modelplane.placement.compact_ledger import allocation_summary, summary_usages
from modelplane.placement.inputs import (
    clusters_from,
    replicas_from,
    request_from,
    usage_from,
)
from modelplane.placement.model import Fleet
from modelplane.render.engine import LocalFunctionServer

API = "modelplane.ai/v1alpha1"
NOW = "2026-01-01T12:00:00Z"
SELECTOR = 'device.capacity["gpu.nvidia.com"].memory.compareTo(quantity("40Gi")) >= 0'
# name, GPUs per node, memory, cost per node-hour, nodes per pool
SHAPES = [("l4-1x", 1, "24Gi", "0.70", 8), ("l40s-2x", 2, "48Gi", "2.10", 4),
          ("a100-4x", 4, "80Gi", "8.20", 4), ("h100-8x", 8, "80Gi", "24.00", 2)]
REGIONS = ["us-east", "us-west", "eu-west", "ap-south"]


def device(name: str, gpus: int, memory: str) -> dict[str, Any]:
    arch = "Hopper" if name.startswith("h100") else "Ampere" if name.startswith("a100") \
        else "Ada"
    return {"name": "gpu", "driver": "gpu.nvidia.com", "claim": "DRA",
            "deviceClassName": "gpu.nvidia.com", "count": gpus,
            "attributes": {"architecture": {"string": arch}, "productName": {"string": name}},
            "capacity": {"memory": {"value": memory}}}


def classes() -> list[dict[str, Any]]:
    return [{"apiVersion": API, "kind": "InferenceClass", "metadata": {"name": n},
             "spec": {"devices": [device(n, g, m)], "costPerNodeHour": c},
             "status": {"devices": [device(n, g, m)]}} for n, g, m, c, _ in SHAPES]


def cluster(i: int) -> dict[str, Any]:
    name = f"cluster-{i:04d}"
    pools = [{"name": f"pool-{n}", "className": n, "nodeCeiling": k, "minNodeCount": 0,
              "costPerNodeHour": c, "ready": True, "devices": [device(n, g, m)]}
             for n, g, m, c, k in SHAPES]
    return {"apiVersion": API, "kind": "InferenceCluster",
            "metadata": {"name": name, "labels": {"modelplane.ai/region": REGIONS[i % 4]}},
            "spec": {"cluster": {"source": "GKE", "gke": {"project": "p", "region": "r"}},
                     "nodePools": [{"name": p["name"], "className": p["className"],
                                    "minNodeCount": 0, "maxNodeCount": p["nodeCeiling"]}
                                   for p in pools]},
            "status": {"pools": pools, "conditions": [
                {"type": "Ready", "status": "True", "reason": "Available",
                 "lastTransitionTime": "2026-01-01T00:00:00Z"}]}}


def template() -> dict[str, Any]:
    return {"spec": {"containers": [{
        "name": "engine", "image": "vllm/vllm-openai:v0.7.3",
        "args": ["--model=Qwen/Qwen2.5-7B-Instruct", "--max-model-len=8192"],
        "env": [{"name": f"ENV_{k}", "value": "x" * 16} for k in range(8)],
        "ports": [{"containerPort": 8000, "name": "http"}]}]}}


def replica(k: int, n_clusters: int, namespace: str = "others", deployment: str = "other",
            cluster_name: str | None = None, pool: str | None = None,
            ordinal: int | None = None) -> dict[str, Any]:
    shape = SHAPES[k % 4] if deployment == "other" else SHAPES[1 + k % 3]
    name = f"{deployment}-{k:05d}"
    meta: dict[str, Any] = {"name": name, "namespace": namespace,
                            "labels": {"modelplane.ai/deployment": deployment,
                                       "modelplane.ai/cluster": cluster_name or
                                       f"cluster-{k % n_clusters:04d}"}}
    if ordinal is not None:
        meta["annotations"] = {"modelplane.ai/ordinal": str(ordinal)}
    return {"apiVersion": API, "kind": "ModelReplica", "metadata": meta,
            "spec": {"deployment": deployment,
                     "cluster": cluster_name or f"cluster-{k % n_clusters:04d}",
                     "serving": {"mode": "Unified"},
                     "engines": [{"name": "engine", "copies": 1, "members": [{
                         "role": "Standalone", "pool": pool or f"pool-{shape[0]}",
                         "template": template(),
                         "devices": [{"name": "gpu", "deviceClassName": "gpu.nvidia.com",
                                      "count": 1, "selectors": [{"cel": SELECTOR}]}]}]}]},
            "status": {"address": f"http://10.0.{k // 250}.{k % 250}/x", "conditions": [
                {"type": "Ready", "status": "True", "reason": "Available",
                 "lastTransitionTime": "2026-01-01T00:00:00Z"}]}}


def deployment(replicas: int) -> dict[str, Any]:
    return {"apiVersion": API, "kind": "ModelDeployment",
            "metadata": {"name": "bench", "namespace": "ml"},
            "spec": {"replicas": replicas, "serving": {"mode": "Unified"},
                     "placement": {"spreadTopologyKey": "modelplane.ai/region",
                                   "failoverWindow": "5m"},
                     "engines": [{"name": "engine", "copies": 1, "members": [{
                         "role": "Standalone", "template": template(),
                         "nodeSelector": {"devices": [{"name": "gpu", "count": 1,
                                                       "selectors": [{"cel": SELECTOR}]}]}}]}]}}


def with_allocations(clusters: list[dict[str, Any]],
                     replicas: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Clusters publishing status.pools[].allocated (the compact ledger)."""
    by_cluster: dict[str, list[dict[str, Any]]] = {}
    for r in replicas:
        by_cluster.setdefault(r["spec"]["cluster"], []).append(r)
    out = []
    for c in clusters:
        summary = allocation_summary(by_cluster.get(c["metadata"]["name"], []))
        pools = [dict(p, allocated=summary.get(p["name"], [])) for p in c["status"]["pools"]]
        out.append(dict(c, status=dict(c["status"], pools=pools)))
    return out


def request(md: dict[str, Any], observed: dict[str, dict[str, Any]],
            required: dict[str, list[dict[str, Any]]]) -> fnv1.RunFunctionRequest:
    """The last call of the requirements loop, as Crossplane would send it."""
    return fn_server.build_request("place", md, observed, {"modelplane.ai/now": NOW}, required,
                                   tag="bench")


def median_ms(fn: Callable[[], Any], runs: int) -> float:
    fn()  # warm up (imports, compiled CEL)
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def cold_run(client: Any, req: fnv1.RunFunctionRequest) -> Any:
    fn_server.REQUIRED_CACHE.clear()
    return client.run(req)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="skip the 1000-cluster fleets")
    args = ap.parse_args()

    server = LocalFunctionServer()
    client = server.client()
    cls = classes()
    rows: list[str] = []
    header = (f"{'clusters':>8} {'existing':>8} {'place':>5} {'ledger':>7} | "
              f"{'RunFunction ms':>14} {'cold ms':>8} "
              f"{'core ms':>8} {'placed':>6} {'request MiB':>11} {'CEL evals':>9}")
    print(header)
    print("-" * len(header))
    sizes = [10, 100] if args.quick else [10, 100, 1000]
    try:
        for n_clusters in sizes:
            clusters = [cluster(i) for i in range(n_clusters)]
            for existing in (0, 1000, 5000):
                others = [replica(k, n_clusters) for k in range(existing)]
                modes = [("full", clusters, others)]
                if existing:
                    modes.append(("compact", with_allocations(clusters, others), []))
                for (mode, cl_objs, rep_objs), new in [(m, n) for m in modes for n in (1, 10)]:
                    md = deployment(new)
                    required = {"classes": cls, "clusters": cl_objs}
                    if mode == "full":
                        required["replicas"] = rep_objs
                    grpc_req = request(md, {}, required)
                    size = grpc_req.ByteSize() / 2**20
                    rsp = client.run(grpc_req)
                    fatal = [r.message for r in rsp.results if r.severity == fnv1.SEVERITY_FATAL]
                    if fatal:
                        raise SystemExit(f"function failed: {fatal[0]}")
                    full = median_ms(partial(client.run, grpc_req), args.runs)
                    # Cold: the server has never seen these fleet objects (no conversion cache
                    # hits), as on the first placement after a restart or a fleet-wide change.
                    cold = median_ms(partial(cold_run, client, grpc_req), args.runs)
                    usages = ([usage_from(o) for o in others] if mode == "full"
                              else summary_usages(cl_objs, "ml/bench") or [])
                    fleet = Fleet(clusters_from(cl_objs, cls), usages)
                    preq = request_from(md, None)
                    cel.reset_stats()
                    decision = core.place(preq, fleet, [])
                    evals = cel.stats()["evaluations"]
                    alone = median_ms(partial(core.place, preq, fleet, []), args.runs)
                    line = (f"{n_clusters:>8} {existing:>8} {new:>5} {mode:>7} | {full:>14.1f} "
                            f"{cold:>8.1f} "
                            f"{alone:>8.1f} {len(decision.replicas):>6} {size:>11.2f} "
                            f"{evals:>9}")
                    print(line, flush=True)
                    rows.append(line)

        # Steady: a placed 10-replica deployment in the largest fleet, nothing to change.
        n_clusters = sizes[-1]
        own = {f"replica-bench-{k:05d}": replica(k, n_clusters, "ml", "bench", ordinal=k)
               for k in range(10)}
        # As compose-deployment stamps them after a fleet read: 4 eligible regions, this spec.
        record = core.spread_record(request_from(deployment(10), None), len(REGIONS))
        for o in own.values():
            o["metadata"]["annotations"][SPREAD_ANNOTATION] = record
        own_clusters = sorted({o["spec"]["cluster"] for o in own.values()})
        steady_required: dict[str, list[dict[str, Any]]] = {"classes": cls}
        by_name = {f"cluster-{i:04d}": i for i in range(n_clusters)}
        for c in own_clusters:
            steady_required[f"cluster.{c}"] = [cluster(by_name[c])]
        md = deployment(10)
        steady_req = request(md, own, steady_required)
        rsp = client.run(steady_req)
        steady = median_ms(lambda: client.run(steady_req), args.runs)
        own_objs = list(own.values())
        own_cluster_objs = [o for c in own_clusters for o in steady_required[f"cluster.{c}"]]
        steady_core = median_ms(lambda: core.decide_steady(
            request_from(md, None), clusters_from(own_cluster_objs, cls),
            replicas_from(own_objs)), args.runs)
        asked = sorted(r for r in rsp.requirements.resources)
        print()
        print(f"steady reconcile ({n_clusters} clusters, 5000 existing replicas elsewhere, "
              f"10 own): RunFunction {steady:.1f} ms, core {steady_core:.1f} ms, request "
              f"{steady_req.ByteSize() / 2**10:.0f} KiB; requires: {', '.join(asked)}")
    finally:
        client.close()
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
