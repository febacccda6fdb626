"""The server serves concurrently: one slow request never holds up an unrelated one, and a
request past its deadline is a Fatal result for that XR only. (Behaviour only: how long
anything takes is measured by `make bench`, never asserted here.)"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import crossplane.function.proto.v1.run_function_pb2 as fnv1
import pytest
from crossplane.function import resource
from modelplane import server
from modelplane.step import STEPS, StepRequest, StepResult, step

RELEASE = threading.Event()
STARTED = threading.Event()


@pytest.fixture(autouse=True)
def slow_and_fast_steps() -> Iterator[None]:
    @step("test-blocking", kinds=["InferenceClass"])
    def _blocking(req: StepRequest) -> StepResult:
        STARTED.set()
        RELEASE.wait(timeout=30)  # until the test lets it go
        return StepResult(status={"done": "slow"})

    @step("test-fast", kinds=["InferenceClass"])
    def _fast(req: StepRequest) -> StepResult:
        return StepResult(status={"done": req.name})

    RELEASE.clear()
    STARTED.clear()
    yield
    RELEASE.set()
    STEPS.pop("test-blocking", None)
    STEPS.pop("test-fast", None)


def _request(step_name: str, name: str = "x") -> fnv1.RunFunctionRequest:
    return server.build_request(step_name, {"apiVersion": "modelplane.ai/v1alpha1",
                                            "kind": "InferenceClass", "metadata": {"name": name},
                                            "spec": {}})


def _status(rsp: fnv1.RunFunctionResponse) -> dict[str, object]:
    return dict(resource.struct_to_dict(rsp.desired.composite.resource).get("status") or {})


def test_a_small_request_completes_while_a_slow_one_is_still_running() -> None:
    runner = server.FunctionRunner(workers=4, deadline=60)

    async def scenario() -> list[str]:
        order: list[str] = []
        slow = asyncio.ensure_future(runner.RunFunction(_request("test-blocking")))
        await asyncio.get_running_loop().run_in_executor(None, STARTED.wait, 30)
        fast = await asyncio.gather(*(runner.RunFunction(_request("test-fast", f"x{i}"))
                                      for i in range(20)))
        order.append(f"{len(fast)} fast done, slow done={slow.done()}")
        RELEASE.set()
        assert _status(await slow) == {"done": "slow"}
        assert [_status(r)["done"] for r in fast] == [f"x{i}" for i in range(20)]
        return order

    assert asyncio.run(scenario()) == ["20 fast done, slow done=False"]
    runner.shutdown()


def test_a_request_past_its_deadline_is_fatal_for_that_xr_only() -> None:
    runner = server.FunctionRunner(workers=2, deadline=0.05)

    async def scenario() -> tuple[fnv1.RunFunctionResponse, fnv1.RunFunctionResponse]:
        stuck = await runner.RunFunction(_request("test-blocking", "stuck"))
        other = await runner.RunFunction(_request("test-fast", "other"))
        return stuck, other

    stuck, other = asyncio.run(scenario())
    RELEASE.set()
    assert [r.severity for r in stuck.results] == [fnv1.SEVERITY_FATAL]
    assert "'stuck'" in stuck.results[0].message and "deadline" in stuck.results[0].message
    assert not any(r.severity == fnv1.SEVERITY_FATAL for r in other.results)
    assert _status(other) == {"done": "other"}
    runner.shutdown()


def test_the_pool_size_and_deadline_are_configurable_by_environment(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELPLANE_WORKERS", "3")
    monkeypatch.setenv("MODELPLANE_STEP_DEADLINE", "7.5")
    runner = server.FunctionRunner()
    assert (runner.workers, runner.deadline) == (3, 7.5)
    runner.shutdown()


def test_the_conversion_cache_is_bounded_in_bytes() -> None:
    cache = server._RequiredCache(max_bytes=64 * 1024)
    for i in range(200):
        obj = {"metadata": {"name": f"c{i}"}, "spec": {"blob": "x" * 512}}
        assert cache.convert(resource.dict_to_struct(obj)) == obj
    assert 0 < cache.bytes <= cache.max_bytes
    big = {"spec": {"blob": "y" * 64 * 1024}}
    assert cache.convert(resource.dict_to_struct(big)) == big  # converted, too big to keep
    assert cache.bytes <= cache.max_bytes
