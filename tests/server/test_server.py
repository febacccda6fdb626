"""The function server speaks Crossplane's real protocol and never falls over."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import crossplane.function.proto.v1.run_function_pb2 as fnv1
import crossplane.function.proto.v1beta1.run_function_pb2 as fnv1beta1
import grpc
import pytest
from crossplane.function import resource
from crossplane.function.proto.v1 import run_function_pb2_grpc as grpcv1
from crossplane.function.proto.v1beta1 import run_function_pb2_grpc as grpcv1beta1
from modelplane import server
from modelplane.step import STEPS, StepRequest, StepResult, step


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def address() -> Iterator[str]:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "modelplane.cli", "serve", "--insecure",
         "--address", f"127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
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


def test_v1beta1_is_served_through_the_sdk_runtime(address: str) -> None:
    stub = grpcv1beta1.FunctionRunnerServiceStub(grpc.insecure_channel(address))
    req = fnv1beta1.RunFunctionRequest()
    req.ParseFromString(_request("no-such-step").SerializeToString())
    rsp = stub.RunFunction(req, timeout=30)
    assert rsp.results[0].severity == fnv1beta1.SEVERITY_FATAL


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
