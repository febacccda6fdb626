"""Response-size benchmark: the largest RunFunctionResponse of a ModelDeployment's pipeline.

Crossplane's function client keeps gRPC's default 4 MiB receive limit, so a response over it
fails the reconcile. For a placed deployment of N ready replicas (steady: nothing to place),
runs the real `place` then `compose-deployment` steps over gRPC, answering their required
resources from a synthetic fleet, and prints each response's size. N goes up to 10,000 (the
size a deployment would reach without the XRD's cap); the XRD's maximum is marked. Prints a
table; never asserts.

Usage: python bench/response_bench.py [--quick]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "functions"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")

import crossplane.function.proto.v1.run_function_pb2 as fnv1
import yaml
from modelplane import server as fn_server
from modelplane.render.engine import MAX_RESPONSE_BYTES, LocalFunctionServer
from modelplane.render.store import Store
from placement_bench import NOW, classes, cluster, deployment, replica

REPO = Path(__file__).resolve().parents[1]
GPUS_PER_CLUSTER = 40  # what one synthetic cluster's pools hold for the bench's shapes


def xrd_max_replicas() -> int:
    xrd = yaml.safe_load((REPO / "apis/modeldeployments/definition.yaml").read_text())
    schema = xrd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return int(schema["properties"]["spec"]["properties"]["replicas"]["maximum"])


def run_step(client: Any, step: str, md: dict[str, Any], observed: dict[str, dict[str, Any]],
             context: dict[str, Any], store: Store) -> fnv1.RunFunctionResponse:
    """One pipeline step with Crossplane's requirements loop (answers from ``store``)."""
    required: dict[str, list[dict[str, Any]]] | None = None
    rsp = fnv1.RunFunctionResponse()
    for _ in range(6):
        req = fn_server.build_request(step, md, observed, context, required, tag="bench")
        rsp = client.run(req)
        asked: dict[str, list[dict[str, Any]]] = {}
        for name, sel in rsp.requirements.resources.items():
            if sel.WhichOneof("match") == "match_name":
                asked[name] = store.select(sel.api_version, sel.kind, name=sel.match_name,
                                           namespace=sel.namespace or "")
            else:
                asked[name] = store.select(sel.api_version, sel.kind,
                                           labels=dict(sel.match_labels.labels),
                                           namespace=sel.namespace if sel.HasField(
                                               "namespace") else None)
        if required is not None and set(asked) == set(required):
            return rsp
        required = asked
    return rsp


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="only up to 2,500 replicas")
    args = ap.parse_args()
    cap = xrd_max_replicas()
    sizes = sorted({100, 1000, 2500, cap} | (set() if args.quick else {10000}))
    server = LocalFunctionServer()
    client = _unlimited(server.port)  # measures sizes past the limit instead of failing
    print(f"limit: {MAX_RESPONSE_BYTES / 2**20:.0f} MiB (Crossplane's receive limit); "
          f"XRD maximum spec.replicas: {cap}")
    header = (f"{'replicas':>8} | {'place MiB':>9} {'compose MiB':>11} {'largest':>8} "
              f"{'of limit':>8}")
    print(header)
    print("-" * len(header))
    try:
        for n in sizes:
            n_clusters = n // GPUS_PER_CLUSTER + 10
            store = Store()
            for obj in classes() + [cluster(i) for i in range(n_clusters)]:
                store.put(obj)
            own = {f"replica-bench-{k:05d}": replica(k, n_clusters, "ml", "bench", ordinal=k)
                   for k in range(n)}
            md = deployment(n)
            ctx: dict[str, Any] = {"modelplane.ai/now": NOW}
            placed = run_step(client, "place", md, own, ctx, store)
            ctx = fn_server.struct_to_dict(placed.context)
            composed = run_step(client, "compose-deployment", md, own, ctx, store)
            a, b = placed.ByteSize(), composed.ByteSize()
            mark = "  <- XRD maximum" if n == cap else ""
            print(f"{n:>8} | {a / 2**20:>9.2f} {b / 2**20:>11.2f} {max(a, b) / 2**20:>8.2f} "
                  f"{max(a, b) / MAX_RESPONSE_BYTES:>7.0%}{mark}", flush=True)
    finally:
        client.close()
        server.stop()
    return 0


def _unlimited(port: int) -> Any:
    import grpc
    from crossplane.function.proto.v1 import run_function_pb2_grpc as grpcv1

    channel = grpc.insecure_channel(f"127.0.0.1:{port}",
                                    options=[("grpc.max_receive_message_length", -1)])
    stub = grpcv1.FunctionRunnerServiceStub(channel)

    class Client:
        def run(self, req: fnv1.RunFunctionRequest) -> fnv1.RunFunctionResponse:
            out: fnv1.RunFunctionResponse = stub.RunFunction(req, timeout=600)
            return out

        def close(self) -> None:
            channel.close()

    return Client()



if __name__ == "__main__":
    raise SystemExit(main())
