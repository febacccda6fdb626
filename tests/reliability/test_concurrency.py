"""Placement under concurrency: deployments competing for one scarce pool, reconciled in
interleaved orders, never end overcommitted.

Five ModelDeployments of 2 replicas x 5 GPUs (50 GPUs wanted) compete for one pool of
4 nodes x 8 GPUs (32 GPUs; at most one 5-GPU pod fits a node, so 4 pods in all). Each round of
the local control plane reconciles every XR in a different seeded order (Crossplane
reconciles XRs concurrently and in no particular order); before every round the test measures
the worst overcommit on any node: devices the ModelReplicas on a pool ask for that cannot be
packed onto its nodes (first-fit decreasing at device granularity, as DESIGN §5 counts
capacity). The transient worst is recorded in docs/reliability.md; the converged fleet has none.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
from modelplane.render import Fleet, render_fleet
from modelplane.render.engine import Engine
from modelplane.render.store import Key, Store

REPO = Path(__file__).resolve().parents[2]
Obj = dict[str, Any]

DEPLOYMENT = """\
apiVersion: modelplane.ai/v1alpha1
kind: ModelDeployment
metadata: {{name: {name}, namespace: ml-team}}
spec:
  replicas: 2
  engines:
  - name: vllm
    members:
    - role: Standalone
      nodeSelector:
        devices:
        - {{name: gpu, count: 5}}
      template:
        spec:
          containers:
          - {{name: engine, image: "vllm/vllm-openai:v0.7.3"}}
"""
NAMES = [f"team-{c}" for c in "abcde"]


def pods_by_pool(store: Store) -> dict[tuple[str, str], list[int]]:
    """(cluster, pool) -> the device count of every pod the ModelReplicas pin there."""
    out: dict[tuple[str, str], list[int]] = {}
    for _, obj in store.items():
        if obj.get("kind") != "ModelReplica":
            continue
        spec = obj.get("spec") or {}
        for engine in spec.get("engines") or []:
            copies = int(engine.get("copies") or 1)
            for m in engine.get("members") or []:
                pods = int((m.get("worker") or {}).get("nodes") or 1) * copies
                size = sum(int(d.get("count") or 0) for d in m.get("devices") or [])
                out.setdefault((str(spec.get("cluster")), str(m.get("pool"))), []).extend(
                    [size] * pods)
    return out


def node_shape(store: Store) -> dict[tuple[str, str], tuple[int, int]]:
    """(cluster, pool) -> (nodes, devices per node) from the clusters' published status."""
    out: dict[tuple[str, str], tuple[int, int]] = {}
    for _, obj in store.items():
        if obj.get("kind") != "InferenceCluster":
            continue
        for p in (obj.get("status") or {}).get("pools") or []:
            per_node = sum(int(d.get("count") or 0) for d in p.get("devices") or [])
            out[(obj["metadata"]["name"], str(p.get("name")))] = (
                int(p.get("nodeCeiling") or 0), per_node)
    return out


def overcommit(store: Store) -> int:
    """Devices pinned beyond what the pools' nodes hold (0 when every pod fits a node)."""
    shapes = node_shape(store)
    worst = 0
    for pool, pods in sorted(pods_by_pool(store).items()):
        nodes, per_node = shapes.get(pool, (0, 0))
        free = [per_node] * nodes
        over = 0
        for size in sorted(pods, reverse=True):
            slot = next((i for i, f in enumerate(free) if f >= size), None)
            if slot is None:
                over += size
            else:
                free[slot] -= size
        worst = max(worst, over)
    return worst


def render_interleaved(tmp_path: Path, seed: int, monkeypatch: pytest.MonkeyPatch,
                       seen: list[int]) -> Fleet:
    (tmp_path / "models.yaml").write_text("---\n".join(DEPLOYMENT.format(name=n) for n in NAMES))
    original = Engine.xr_keys

    def shuffled(self: Engine) -> list[Key]:
        seen.append(overcommit(self.store))  # the state the previous round left
        keys = original(self)
        random.Random(seed * 1000 + self.round).shuffle(keys)
        return keys

    monkeypatch.setattr(Engine, "xr_keys", shuffled)
    fleet = render_fleet([REPO / "examples" / "multi-node" / "platform.yaml", tmp_path])
    seen.append(overcommit(fleet.store))
    return fleet


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_competing_deployments_converge_to_no_overcommit(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int) -> None:
    seen: list[int] = []
    fleet = render_interleaved(tmp_path, seed, monkeypatch, seen)
    assert seen[-1] == 0, f"converged overcommitted: {seen}"
    placed = pods_by_pool(fleet.store)
    assert sum(len(p) for p in placed.values()) == 4, "the pool's 4 nodes hold 4 pods"
    print(f"seed {seed}: overcommit per round {seen}; worst transient {max(seen)} device(s)")
