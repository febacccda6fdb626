"""Nesting is bounded end to end: what is admitted, every request carrying it can decode."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import crossplane.function.proto.v1.run_function_pb2 as fnv1
import yaml
from modelplane import server
from modelplane.contract.podpolicy import MAX_FREE_FORM_DEPTH
from modelplane.steps.modelreplica.compose import compose
from modelplane.validate import admit, default_registry

from tests.placement.fleet import deployment
from tests.results import condition
from tests.workloads.fixtures import replica, request, standalone

ENGINE = {"name": "engine", "image": "vllm/vllm-openai:v0.7.3"}


def _nested(levels: int) -> Any:
    """``levels`` maps and lists, alternating, around a string."""
    v: Any = "x"
    for i in range(levels):
        v = {"k": v} if i % 2 == 0 else [v]
    return v


def _pod(depth: int) -> dict[str, Any]:
    """A PodSpec whose deepest value sits ``depth`` maps/lists below template.spec."""
    return {"containers": [ENGINE], "overhead": _nested(depth - 1)}


def _md(depth: int) -> dict[str, Any]:
    md = deployment("m")
    md["spec"]["engines"][0]["members"][0]["template"] = {"spec": _pod(depth)}
    return md


def test_admission_refuses_a_template_nested_beyond_the_bound() -> None:
    _, errors = admit(_md(MAX_FREE_FORM_DEPTH + 1), default_registry())
    assert len(errors) == 1
    assert errors[0].path.startswith("spec.engines[0].members[0].template.spec.overhead")
    assert f"deeper than {MAX_FREE_FORM_DEPTH}" in errors[0].message


def test_admission_accepts_the_bound() -> None:
    _, errors = admit(_md(MAX_FREE_FORM_DEPTH), default_registry())
    assert errors == []


def _member(depth: int) -> dict[str, Any]:
    m = standalone()
    m["template"] = {"spec": _pod(depth)}
    return m


def test_every_request_carrying_a_template_at_the_bound_decodes() -> None:
    mr = replica(engines=[{"name": "q", "members": [_member(MAX_FREE_FORM_DEPTH)]}])
    spec = mr["spec"]["engines"][0]["members"][0]["template"]["spec"]
    lws = {"spec": {"leaderWorkerTemplate": {"workerTemplate": {"spec": spec}}}}
    requests = [
        # the replica among an InferenceCluster's required resources
        server.build_request("compose-cluster", {"kind": "InferenceCluster",
                                                 "metadata": {"name": "c"}},
                             required={"replicas": [mr]}),
        # the workload Object the replica observes, manifest and observed copy
        server.build_request("compose-replica", mr, observed={"w": {
            "spec": {"forProvider": {"manifest": lws}},
            "status": {"atProvider": {"manifest": lws}}}}),
    ]
    for req in requests:
        assert fnv1.RunFunctionRequest.FromString(req.SerializeToString()) == req


def test_a_replica_nested_beyond_the_bound_composes_nothing() -> None:
    mr = replica(engines=[{"name": "q", "members": [_member(MAX_FREE_FORM_DEPTH + 1)]}])
    res = compose(request(mr))
    assert res.desired == {}
    assert "deeper than" in condition(res, "Resolved").message


def test_render_reports_a_too_deep_fleet_as_one_line(tmp_path: Path) -> None:
    md = _md(40)
    (tmp_path / "model.yaml").write_text(yaml.safe_dump(md))
    out = subprocess.run([sys.executable, "-m", "modelplane.cli", "render", str(tmp_path)],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 1 and out.stdout == ""
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "deeper than" in lines[0], out.stderr
