"""The function server's Prometheus metrics: requests and latency per step, placement outcomes,
unschedulable replicas; served over HTTP; and JSON logs."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import crossplane.function.proto.v1.run_function_pb2 as fnv1
import grpc
import yaml
from crossplane.function import resource
from crossplane.function.proto.v1 import run_function_pb2_grpc as grpcv1
from modelplane import metrics, server

REPO = Path(__file__).resolve().parents[2]


def _value(name: str, labels: dict[str, str]) -> float:
    got = metrics.REGISTRY.get_sample_value(name, labels)
    return 0.0 if got is None else got


def _request(step: str, xr: dict[str, object]) -> fnv1.RunFunctionRequest:
    return fnv1.RunFunctionRequest(
        meta=fnv1.RequestMeta(tag="t"),
        observed=fnv1.State(composite=fnv1.Resource(resource=resource.dict_to_struct(xr))),
        input=resource.dict_to_struct({"apiVersion": "fn.modelplane.ai/v1alpha1",
                                       "kind": "Input", "step": step}))


def test_each_step_run_is_counted_and_timed_by_outcome() -> None:
    server.load_steps()
    xr = {"apiVersion": "modelplane.ai/v1alpha1", "kind": "InferenceClass",
          "metadata": {"name": "x"}, "spec": {}}
    ok = {"step": "compose-class", "kind": "InferenceClass", "outcome": "ok"}
    fatal = {"step": "no-such-step", "kind": "InferenceClass", "outcome": "fatal"}
    before_ok, before_fatal = _value("modelplane_step_requests_total", ok), _value(
        "modelplane_step_requests_total", fatal)
    before_n = _value("modelplane_step_duration_seconds_count", {"step": "compose-class"})
    server.run(_request("compose-class", xr))
    server.run(_request("no-such-step", xr))
    assert _value("modelplane_step_requests_total", ok) == before_ok + 1
    assert _value("modelplane_step_requests_total", fatal) == before_fatal + 1
    assert _value("modelplane_step_duration_seconds_count",
                  {"step": "compose-class"}) == before_n + 1


def test_a_deployment_waiting_for_its_inputs_is_a_placement_outcome() -> None:
    server.load_steps()
    md = next(d for d in yaml.safe_load_all((REPO / "examples" / "quickstart" / "model.yaml")
                                            .read_text()) if d["kind"] == "ModelDeployment")
    md["metadata"]["name"] = "metrics-probe"  # a name no other test in this process uses
    labels = {"reason": "WaitingForInputs"}
    before = _value("modelplane_placement_decisions_total", labels)
    placed = server.run(_request("place", md))
    req = _request("compose-deployment", md)
    req.context.CopyFrom(placed.context)
    server.run(req)
    assert _value("modelplane_placement_decisions_total", labels) == before + 1
    # Waiting is not "could not be placed": the unschedulable gauge says nothing yet.
    gauge = metrics.REGISTRY.get_sample_value("modelplane_deployment_unschedulable_replicas",
                                              {"namespace": "ml-team", "name": "metrics-probe"})
    assert gauge is None


def test_metrics_are_served_over_http() -> None:
    httpd = metrics.serve_metrics("127.0.0.1:0")
    try:
        port = httpd.server_address[1]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as rsp:
            text = rsp.read().decode()
    finally:
        httpd.shutdown()
    assert "# TYPE modelplane_step_requests_total counter" in text


def test_json_logs_are_one_object_per_line() -> None:
    record = logging.LogRecord("modelplane.server", logging.ERROR, __file__, 1,
                               "step %s failed", ("place",), None)
    line = metrics.JSONFormatter().format(record)
    assert json.loads(line) | {"time": "t"} == {"time": "t", "level": "ERROR",
                                                 "logger": "modelplane.server",
                                                 "message": "step place failed"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_what_worker_processes_record_is_served_by_the_main_process(tmp_path: Path) -> None:
    grpc_port, metrics_port = _free_port(), _free_port()
    env = {**os.environ, "TMPDIR": str(tmp_path), "MODELPLANE_SLOW_WORKERS": "0"}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "modelplane.cli", "serve", "--insecure", "--workers", "1",
         "--address", f"127.0.0.1:{grpc_port}", "--metrics-address", f"127.0.0.1:{metrics_port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        channel = grpc.insecure_channel(f"127.0.0.1:{grpc_port}")
        grpc.channel_ready_future(channel).result(timeout=60)
        xr = {"apiVersion": "modelplane.ai/v1alpha1", "kind": "InferenceClass",
              "metadata": {"name": "x"}, "spec": {}}
        stub = grpcv1.FunctionRunnerServiceStub(channel)
        for _ in range(2):
            stub.RunFunction(_request("compose-class", xr), timeout=60)
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics",
                                    timeout=30) as rsp:
            text = rsp.read().decode()
        # the directory the server made for its processes' values
        assert [p.name.startswith("modelplane-metrics-") for p in tmp_path.iterdir()] == [True]
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    # steps ran in the worker process only: the main process's /metrics shows them
    assert ('modelplane_step_requests_total{kind="InferenceClass",outcome="ok",'
            'step="compose-class"} 2.0') in text
    assert 'modelplane_step_duration_seconds_count{step="compose-class"} 2.0' in text
    assert list(tmp_path.iterdir()) == []  # and removed it on exit
