"""The function server speaks Crossplane's real protocol and never falls over."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import crossplane.function.proto.v1.run_function_pb2 as fnv1
import crossplane.function.proto.v1beta1.run_function_pb2 as fnv1beta1
import grpc
import pytest
from crossplane.function import resource
from crossplane.function.proto.v1 import run_function_pb2_grpc as grpcv1
from crossplane.function.proto.v1beta1 import run_function_pb2_grpc as grpcv1beta1
from modelplane import server
from modelplane.step import STEPS, StepRequest, StepResult, step

from tests.workloads.fixtures import replica, standalone


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def address() -> Iterator[str]:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "modelplane.cli", "serve", "--insecure",
         "--address", f"127.0.0.1:{port}", "--workers", "2"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**os.environ, "MODELPLANE_SLOW_WORKERS": "1"},
    )
    addr = f"127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            grpc.channel_ready_future(grpc.insecure_channel(addr)).result(timeout=1)
            break
        except grpc.FutureTimeoutError:
            if proc.poll() is not None:
                pytest.fail("modelplane serve exited early")
    yield addr
    proc.terminate()
    proc.wait(timeout=10)


def _request(step_name: str, kind: str = "InferenceClass") -> fnv1.RunFunctionRequest:
    return fnv1.RunFunctionRequest(
        meta=fnv1.RequestMeta(tag="t"),
        observed=fnv1.State(composite=fnv1.Resource(resource=resource.dict_to_struct({
            "apiVersion": "modelplane.ai/v1alpha1", "kind": kind,
            "metadata": {"name": "x"}, "spec": {}}))),
        input=resource.dict_to_struct({"apiVersion": "fn.modelplane.ai/v1alpha1",
                                       "kind": "Input", "step": step_name}),
    )


def test_v1_round_trip_with_the_sdk_stub(address: str) -> None:
    stub = grpcv1.FunctionRunnerServiceStub(grpc.insecure_channel(address))
    rsp = stub.RunFunction(_request("compose-class"), timeout=30)
    assert rsp.meta.tag == "t"
    assert not [r for r in rsp.results if r.severity == fnv1.SEVERITY_FATAL]


def test_unknown_step_is_a_fatal_result_naming_it(address: str) -> None:
    stub = grpcv1.FunctionRunnerServiceStub(grpc.insecure_channel(address))
    rsp = stub.RunFunction(_request("no-such-step"), timeout=30)
    assert rsp.results[0].severity == fnv1.SEVERITY_FATAL
    assert "unknown pipeline step 'no-such-step'" in rsp.results[0].message


def test_a_kind_the_step_does_not_handle_is_fatal(address: str) -> None:
    stub = grpcv1.FunctionRunnerServiceStub(grpc.insecure_channel(address))
    rsp = stub.RunFunction(_request("compose-class", kind="ModelService"), timeout=30)
    assert rsp.results[0].severity == fnv1.SEVERITY_FATAL
    assert "does not handle XR kind 'ModelService'" in rsp.results[0].message


def test_v1beta1_is_served_too(address: str) -> None:
    stub = grpcv1beta1.FunctionRunnerServiceStub(grpc.insecure_channel(address))
    req = fnv1beta1.RunFunctionRequest()
    req.ParseFromString(_request("no-such-step").SerializeToString())
    rsp = stub.RunFunction(req, timeout=30)
    assert rsp.results[0].severity == fnv1beta1.SEVERITY_FATAL


def _nested_maps(maps: int, lists_at: tuple[int, ...]) -> Any:
    v: Any = "x"
    for i in range(maps):
        v = {"k": v}
        if i in lists_at:
            v = [v]
    return v


def _too_deep_for_protobuf() -> fnv1.RunFunctionRequest:
    """The issue's case: 24 nested maps and 2 lists in a member template are admitted as part of
    a ModelDeployment, but inside its ModelReplica, among the hosting InferenceCluster's
    required resources, the request nests deeper than protobuf's decoder allows."""
    member = standalone()
    member["template"] = {"spec": {"containers": [{"name": "e", "image": "i"}],
                                   "overhead": _nested_maps(24, lists_at=(7, 15))}}
    mr = replica(engines=[{"name": "q", "members": [member]}])
    req = server.build_request(
        "compose-cluster", {"apiVersion": "modelplane.ai/v1alpha1", "kind": "InferenceCluster",
                            "metadata": {"name": "gpu-east"}, "spec": {}},
        required={"replicas": [mr]}, tag="deep")
    with pytest.raises(Exception, match="MaxDepth"):  # the premise: protobuf refuses it
        fnv1.RunFunctionRequest.FromString(req.SerializeToString())
    return req


def test_a_request_protobuf_cannot_decode_is_a_fatal_result_for_that_xr(address: str) -> None:
    stub = grpcv1.FunctionRunnerServiceStub(grpc.insecure_channel(address))
    deep = stub.RunFunction.future(_too_deep_for_protobuf(), timeout=60)
    sibling = stub.RunFunction.future(_request("compose-class"), timeout=60)
    rsp = deep.result()  # an answer, not an RpcError with StatusCode.UNKNOWN
    assert rsp.meta.tag == "deep"
    assert [r.severity for r in rsp.results] == [fnv1.SEVERITY_FATAL]
    message = rsp.results[0].message
    assert "cannot decode the request (step 'compose-cluster' for InferenceCluster 'gpu-east')" \
        in message
    assert "nests deeper than protobuf decodes" in message
    assert not [r for r in sibling.result().results if r.severity == fnv1.SEVERITY_FATAL]
    # and the server goes on answering
    assert stub.RunFunction(_request("compose-class"), timeout=30).meta.tag == "t"


def test_a_v1beta1_request_protobuf_cannot_decode_is_fatal_too(address: str) -> None:
    stub = grpcv1beta1.FunctionRunnerServiceStub(grpc.insecure_channel(address))
    req = fnv1beta1.RunFunctionRequest()
    req.ParseFromString(_request("compose-class").SerializeToString())
    channel = grpc.insecure_channel(address)
    raw = channel.unary_unary("/apiextensions.fn.proto.v1beta1.FunctionRunnerService/RunFunction")
    got = fnv1beta1.RunFunctionResponse.FromString(
        raw(_too_deep_for_protobuf().SerializeToString(), timeout=60))
    assert [r.severity for r in got.results] == [fnv1beta1.SEVERITY_FATAL]
    assert not [r for r in stub.RunFunction(req, timeout=30).results
                if r.severity == fnv1beta1.SEVERITY_FATAL]


def test_bytes_that_are_not_a_request_are_a_fatal_result(address: str) -> None:
    raw = grpc.insecure_channel(address).unary_unary(
        "/apiextensions.fn.proto.v1.FunctionRunnerService/RunFunction")
    got = fnv1.RunFunctionResponse.FromString(raw(b"\x0a\xff\xff", timeout=30))
    assert [r.severity for r in got.results] == [fnv1.SEVERITY_FATAL]
    assert "cannot decode the request (step '?' for ? '?')" in got.results[0].message


def test_an_exception_in_a_handler_becomes_fatal_and_the_server_survives() -> None:
    @step("test-explodes", kinds=["InferenceClass"])
    def explodes(req: StepRequest) -> StepResult:
        raise KeyError("spec.devices")

    try:
        rsp = server.run(_request("test-explodes"))
        assert rsp.results[0].severity == fnv1.SEVERITY_FATAL
        assert "KeyError" in rsp.results[0].message and "spec.devices" in rsp.results[0].message
        # And the next request is answered normally.
        assert server.run(_request("no-such-step")).results[0].severity == fnv1.SEVERITY_FATAL
    finally:
        STEPS.pop("test-explodes", None)


def test_integral_numbers_survive_the_struct_round_trip() -> None:
    s = resource.dict_to_struct({"replicas": 3, "ratio": 0.5, "nested": [{"n": 2}]})
    assert server.struct_to_dict(s) == {"replicas": 3, "ratio": 0.5, "nested": [{"n": 2}]}


def test_the_message_limit_is_set_explicitly() -> None:
    opts = dict(server.SERVER_OPTIONS)
    assert opts["grpc.max_receive_message_length"] == server.MAX_MESSAGE_BYTES > 4 * 1024 * 1024
