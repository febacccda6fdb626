"""Prometheus metrics and JSON logs for the function server (`modelplane serve`).

Crossplane's function runtime Deployment declares a container port named ``metrics`` (8080);
``modelplane serve --metrics-address`` serves ``/metrics`` there with prometheus-client. The
metrics live in their own registry, so tests and the local control plane never share state
with a process-wide default.

Steps run in worker processes (modelplane.server), so that is where the metrics are recorded.
They are aggregated with prometheus-client's multiprocess mode: `modelplane serve` points
PROMETHEUS_MULTIPROC_DIR at a directory it creates (and removes on exit) before anything imports
prometheus-client, every process then keeps its values in memory-mapped files there, and
/metrics in the main process sums them (``MultiProcessCollector``). Chosen over shipping metric
deltas back with each response because it keeps the worker protocol bytes-in, bytes-out, counts
a request whose answer is dropped (past its deadline) too, and is the library's own mechanism
for exactly this. Without the variable (tests, `modelplane render`) values stay in-process.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    multiprocess,
    start_http_server,
)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

REGISTRY = CollectorRegistry(auto_describe=True)

STEP_REQUESTS = Counter(
    "modelplane_step_requests_total",
    "RunFunction calls per pipeline step and XR kind, by outcome (ok, fatal, error).",
    ["step", "kind", "outcome"], registry=REGISTRY)
STEP_SECONDS = Histogram(
    "modelplane_step_duration_seconds", "Time to run one pipeline step.", ["step"],
    buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10), registry=REGISTRY)
PLACEMENTS = Counter(
    "modelplane_placement_decisions_total",
    "ModelDeployment reconciles by the ReplicasScheduled reason they ended with "
    "(AllScheduled, Unschedulable, InvalidSelector, ModelCacheMissing, WaitingForInputs, ...).",
    ["reason"], registry=REGISTRY)
UNSCHEDULABLE = Gauge(
    "modelplane_deployment_unschedulable_replicas",
    "Replicas a ModelDeployment asks for that are not placed on any cluster (last reconcile).",
    ["namespace", "name"], registry=REGISTRY,
    # Across worker processes the last value written wins (a deployment's reconciles may land
    # on any worker), and it outlives the worker that wrote it.
    multiprocess_mode="mostrecent")


def observe(step: str, kind: str, namespace: str | None, name: str, outcome: str,
            seconds: float, result: Any | None = None) -> None:
    """Record one step run; ``result`` is the StepResult when the step returned one."""
    STEP_REQUESTS.labels(step, kind, outcome).inc()
    STEP_SECONDS.labels(step).observe(seconds)
    if result is None or step != "compose-deployment":
        return
    scheduled = next((c for c in result.conditions if c.type == "ReplicasScheduled"), None)
    if scheduled is None:
        return
    PLACEMENTS.labels(scheduled.reason).inc()
    if scheduled.reason not in ("AllScheduled", "Unschedulable"):
        return  # blocked or waiting: placement did not run, so nothing was found unplaceable
    status = result.status
    desired, placed = status.get("desiredReplicas"), status.get("scheduledReplicas")
    if isinstance(desired, int) and isinstance(placed, int):
        UNSCHEDULABLE.labels(namespace or "", name).set(max(desired - placed, 0))


def serve_metrics(address: str) -> Any:
    """Serve /metrics on ``host:port`` in a background thread; returns the HTTP server.

    In multiprocess mode what is served is every process's values, summed (the module doc).
    """
    host, _, port = address.rpartition(":")
    registry = REGISTRY
    if os.environ.get(MULTIPROC_ENV):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    got = start_http_server(int(port), addr=host or "0.0.0.0", registry=registry)
    return got[0] if isinstance(got, tuple) else got


def worker_exited(pid: int) -> None:
    """A worker process is gone: drop its live-only gauge files (what it counted stays)."""
    if os.environ.get(MULTIPROC_ENV):
        multiprocess.mark_process_dead(pid)


class JSONFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message (and the exception, if any)."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {"time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
                               "level": record.levelname, "logger": record.name,
                               "message": record.getMessage()}
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, sort_keys=True)
