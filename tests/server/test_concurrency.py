"""The server serves concurrently: one slow request never holds up an unrelated one, and a
request past its deadline is a Fatal result for that XR only. (Behaviour only: how long
anything takes is measured by `make bench`, never asserted here.)"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator

import crossplane.function.proto.v1.run_function_pb2 as fnv1
import pytest
from crossplane.function import resource
from modelplane import server
from modelplane.step import STEPS, StepRequest, StepResult, step

RELEASE = threading.Event()
STARTED = threading.Event()
RUNNING = threading.Semaphore(0)  # one release per blocking request that has started


@pytest.fixture(autouse=True)
def slow_and_fast_steps() -> Iterator[None]:
    @step("test-blocking", kinds=["InferenceClass"])
    def _blocking(req: StepRequest) -> StepResult:
        STARTED.set()
        RUNNING.release()
        RELEASE.wait(timeout=30)  # until the test lets it go
        return StepResult(status={"done": "slow"})

    @step("test-fast", kinds=["InferenceClass"])
    def _fast(req: StepRequest) -> StepResult:
        return StepResult(status={"done": req.name})

    @step("test-niceness", kinds=["InferenceClass"])
    def _niceness(req: StepRequest) -> StepResult:
        """Its own thread's niceness; with ``spec.spinUntilChanged``, it uses CPU until the
        niceness has changed."""
        mine = threading.get_native_id()
        start = os.getpriority(os.PRIO_PROCESS, mine)
        give_up = time.monotonic() + 30
        while req.spec.get("spinUntilChanged") and time.monotonic() < give_up:
            if os.getpriority(os.PRIO_PROCESS, mine) != start:
                break
        time.sleep(float(req.spec.get("sleep", 0)))  # waiting, not using CPU
        return StepResult(status={"nice": os.getpriority(os.PRIO_PROCESS, mine)})

    global RUNNING
    RELEASE.clear()
    STARTED.clear()
    RUNNING = threading.Semaphore(0)
    yield
    RELEASE.set()
    for name in ("test-blocking", "test-fast", "test-niceness"):
        STEPS.pop(name, None)


def _request(step_name: str, name: str = "x", spec: dict[str, object] | None = None,
             tag: str = "") -> fnv1.RunFunctionRequest:
    return server.build_request(step_name, {"apiVersion": "modelplane.ai/v1alpha1",
                                            "kind": "InferenceClass", "metadata": {"name": name},
                                            "spec": spec or {}}, tag=tag)


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
        stuck = await runner.RunFunction(_request("test-blocking", "stuck", tag="stuck-tag"))
        other = await runner.RunFunction(_request("test-fast", "other"))
        return stuck, other

    stuck, other = asyncio.run(scenario())
    RELEASE.set()
    assert stuck.meta.tag == "stuck-tag"  # read from the request's bytes, never decoded whole
    assert [r.severity for r in stuck.results] == [fnv1.SEVERITY_FATAL]
    assert "'stuck'" in stuck.results[0].message and "deadline" in stuck.results[0].message
    assert not any(r.severity == fnv1.SEVERITY_FATAL for r in other.results)
    assert _status(other) == {"done": "other"}
    runner.shutdown()


async def _until(predicate: Callable[[], bool], what: str) -> None:
    give_up = time.monotonic() + 30
    while not predicate():
        assert time.monotonic() < give_up, f"never: {what}"
        await asyncio.sleep(0.005)


def test_a_slow_request_gives_its_place_to_the_next_one() -> None:
    # One place: without the slow places the fast requests would all wait for the slow one.
    runner = server.FunctionRunner(workers=1, slow_workers=1, slow_after=0.01, deadline=60)

    async def scenario() -> tuple[int, bool]:
        slow = asyncio.ensure_future(runner.RunFunction(_request("test-blocking")))
        await _until(lambda: runner.slow_in_flight == 1, "the blocking request became slow")
        fast = await asyncio.gather(*(runner.RunFunction(_request("test-fast", f"x{i}"))
                                      for i in range(20)))
        still_running = not slow.done()
        RELEASE.set()
        assert _status(await slow) == {"done": "slow"}
        assert [_status(r)["done"] for r in fast] == [f"x{i}" for i in range(20)]
        return runner.slow_in_flight, still_running

    assert asyncio.run(scenario()) == (0, True)
    runner.shutdown()


def test_slow_requests_take_at_most_the_slow_places() -> None:
    # Three slow requests, one slow place: the other two keep their places, one place is left.
    runner = server.FunctionRunner(workers=3, slow_workers=1, slow_after=0.01, deadline=60)

    async def scenario() -> list[str]:
        slow = [asyncio.ensure_future(runner.RunFunction(_request("test-blocking", f"s{i}")))
                for i in range(3)]
        for _ in range(3):
            await asyncio.get_running_loop().run_in_executor(None, RUNNING.acquire, True, 30)
        await _until(lambda: runner.slow_in_flight == 1, "one request moved to the slow place")
        await asyncio.sleep(0.05)  # several slices: no second one moves
        moved = runner.slow_in_flight
        fast = await runner.RunFunction(_request("test-fast", "f"))  # the one place left
        RELEASE.set()
        done = await asyncio.gather(*slow)
        return [f"moved={moved}", str(_status(fast)["done"]), *(str(_status(r)["done"])
                                                                for r in done)]

    assert asyncio.run(scenario()) == ["moved=1", "f", "slow", "slow", "slow"]
    runner.shutdown()


@pytest.mark.skipif(sys.platform != "linux", reason="niceness per thread is Linux's")
def test_in_a_worker_a_request_past_a_slice_of_cpu_runs_at_a_lower_priority_and_only_it(
        ) -> None:
    base = os.getpriority(os.PRIO_PROCESS, 0)
    slow = server._work(_request("test-niceness", spec={"spinUntilChanged": True})
                        .SerializeToString(), 0.01)
    fast = server._work(_request("test-niceness").SerializeToString(), 30.0)
    waiting = server._work(_request("test-niceness", spec={"sleep": 0.2})
                           .SerializeToString(), 0.01)  # past the slice in time, not in CPU
    assert _status(fnv1.RunFunctionResponse.FromString(slow)) == {
        "nice": min(19, base + server.SLOW_NICE)}
    assert _status(fnv1.RunFunctionResponse.FromString(fast)) == {"nice": base}
    assert _status(fnv1.RunFunctionResponse.FromString(waiting)) == {"nice": base}
    assert os.getpriority(os.PRIO_PROCESS, 0) == base


def test_the_pool_size_and_deadline_are_configurable_by_environment(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELPLANE_WORKERS", "3")
    monkeypatch.setenv("MODELPLANE_STEP_DEADLINE", "7.5")
    monkeypatch.setenv("MODELPLANE_SLOW_WORKERS", "2")
    monkeypatch.setenv("MODELPLANE_SLOW_AFTER", "0.2")
    runner = server.FunctionRunner()
    assert (runner.workers, runner.deadline, runner.slow_workers, runner.slow_after) == (
        3, 7.5, 2, 0.2)
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
