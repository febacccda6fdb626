"""Engine workloads: a Deployment per Standalone engine, a LeaderWorkerSet per multi-node one."""

from __future__ import annotations

from typing import Any

from modelplane.steps.modelreplica.spec import Engine

LWS_API_VERSION = "leaderworkerset.x-k8s.io/v1"


def deployment(name: str, namespace: str, labels: dict[str, str], engine: Engine,
               selector: dict[str, str], template: dict[str, Any]) -> dict[str, Any]:
    """``copies`` pods of the engine's Standalone member."""
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {
            "replicas": engine.copies,
            "selector": {"matchLabels": selector},
            "template": template,
        },
    }


def leader_worker_set(name: str, namespace: str, labels: dict[str, str], engine: Engine,
                      leader: dict[str, Any], worker: dict[str, Any]) -> dict[str, Any]:
    """``copies`` groups of one leader pod plus ``worker.nodes`` worker pods.

    LeaderWorkerSet injects LWS_LEADER_ADDRESS, LWS_GROUP_SIZE and LWS_WORKER_INDEX into every
    container of the group, which is what the engine's own flags use to find the leader and its
    rank. A group is recreated as a whole when any of its pods restarts: a multi-node engine
    cannot survive losing a member.
    """
    member = engine.member("Worker")
    nodes = member.nodes if member is not None else 0
    return {
        "apiVersion": LWS_API_VERSION,
        "kind": "LeaderWorkerSet",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {
            "replicas": engine.copies,
            "startupPolicy": "LeaderCreated",
            "leaderWorkerTemplate": {
                "size": 1 + nodes,
                "restartPolicy": "RecreateGroupOnPodRestart",
                "leaderTemplate": leader,
                "workerTemplate": worker,
            },
        },
    }
