"""Concurrency of the function server: does a slow reconcile delay a small one?

A real gRPC server (``modelplane.server.serve`` with worker processes, as `modelplane serve`
runs it) on 127.0.0.1. 50 concurrent callers each send small requests (the real
``compose-class`` step on the quickstart's InferenceClass) in a loop, first alone, then while
other callers keep two slow, CPU-bound reconciles (about 2 s of Python each) running. The two
runs alternate ROUNDS times (the machine may be shared: alternating spreads other load over
both), and the small requests' latency percentiles over all rounds are printed for each, with
the difference. Measured, never asserted.

    .venv/bin/python bench/server_bench.py
"""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import grpc
import yaml
from crossplane.function.proto.v1 import run_function_pb2_grpc as grpcv1
from modelplane import server
from modelplane.step import StepRequest, StepResult, step

ROOT = Path(__file__).resolve().parents[1]
CALLERS = 50
SMALL_PER_CALLER = 20
SLOW_SECONDS = 2.0
ROUNDS = 3


@step("bench-slow", kinds=["InferenceClass"])
def _slow(req: StepRequest) -> StepResult:
    """A slow reconcile: pure-Python work holding the interpreter, as a big placement does."""
    end = time.perf_counter() + SLOW_SECONDS
    n = 0
    while time.perf_counter() < end:
        n += sum(i * i for i in range(200))
    return StepResult(status={"n": n})


def _klass() -> dict[str, object]:
    docs = yaml.safe_load_all((ROOT / "examples" / "quickstart" / "platform.yaml").read_text())
    return next(d for d in docs if d and d.get("kind") == "InferenceClass")


def _small_latencies(addr: str, slow: bool) -> list[float]:
    klass = _klass()
    small = server.build_request("compose-class", klass)
    slow_req = server.build_request("bench-slow", klass)
    lat: list[float] = []
    lock = threading.Lock()
    done = threading.Event()

    def slow_caller() -> None:
        stub = grpcv1.FunctionRunnerServiceStub(grpc.insecure_channel(addr))
        while not done.is_set():
            stub.RunFunction(slow_req, timeout=120)

    def caller() -> None:
        stub = grpcv1.FunctionRunnerServiceStub(grpc.insecure_channel(addr))
        stub.RunFunction(small, timeout=120)  # warm the channel
        for _ in range(SMALL_PER_CALLER):
            t = time.perf_counter()
            stub.RunFunction(small, timeout=120)
            with lock:
                lat.append(time.perf_counter() - t)

    slows = [threading.Thread(target=slow_caller) for _ in range(2 if slow else 0)]
    for t in slows:
        t.start()
    if slow:
        time.sleep(0.3)  # the slow reconciles are running
    callers = [threading.Thread(target=caller) for _ in range(CALLERS)]
    for t in callers:
        t.start()
    for t in callers:
        t.join()
    done.set()
    for t in slows:
        t.join()
    return lat


def _pct(xs: list[float], p: float) -> float:
    return sorted(xs)[min(len(xs) - 1, int(p * len(xs)))] * 1000


def _serve_forever(port: int) -> None:
    """The server side, in its own process (so the callers' threads do not share its GIL)."""
    server.load_steps()
    server.serve(server.FunctionRunner(processes=True), f"127.0.0.1:{port}", creds=None,
                 insecure=True)


def main() -> int:
    if len(sys.argv) == 3 and sys.argv[1] == "--serve":
        _serve_forever(int(sys.argv[2]))
        return 0
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    proc = subprocess.Popen([sys.executable, __file__, "--serve", str(port)])
    addr = f"127.0.0.1:{port}"
    try:
        grpc.channel_ready_future(grpc.insecure_channel(addr)).result(timeout=60)
        _small_latencies(addr, slow=False)  # warm every worker process
        alone: list[float] = []
        beside: list[float] = []
        for _ in range(ROUNDS):
            alone += _small_latencies(addr, slow=False)
            beside += _small_latencies(addr, slow=True)
    finally:
        proc.terminate()
        proc.wait(10)
    print(f"{CALLERS} concurrent callers x {SMALL_PER_CALLER} small requests (compose-class) "
          f"x {ROUNDS} rounds; {server.DEFAULT_WORKERS} worker processes "
          f"(+{server.DEFAULT_SLOW_WORKERS} for slow requests) on {os.cpu_count()} cores; "
          f"load average {os.getloadavg()[0]:.1f}")
    print(f"{'run':<34} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'mean ms':>8}")
    for name, xs in (("alone", alone), (f"beside 2 slow ({SLOW_SECONDS:g}s) reconciles", beside)):
        print(f"{name:<34} {_pct(xs, .5):8.1f} {_pct(xs, .9):8.1f} {_pct(xs, .99):8.1f} "
              f"{statistics.mean(xs) * 1000:8.1f}")
    print(f"{'delay added by the slow ones':<34} {_pct(beside, .5) - _pct(alone, .5):8.1f} "
          f"{_pct(beside, .9) - _pct(alone, .9):8.1f} {_pct(beside, .99) - _pct(alone, .99):8.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
