"""Cold vs memoised device-selector evaluation over a fleet-sized device list.

Run: ``python bench/cel_bench.py`` (prints a small table). 4,000 devices of 4 distinct shapes are
matched against a few selectors three ways:

* cold      - compile and evaluate every (selector, device) pair, no caches at all;
* compiled  - compile once per selector, evaluate every pair (what celpy-style use gives);
* memoised  - ``modelplane.cel.match``: compile once, evaluate once per distinct shape.
"""

from __future__ import annotations

import contextlib
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "functions"))

from modelplane.cel import match, reset_stats, stats
from modelplane.cel.device import to_device
from modelplane.cel.engine import compile_expr
from modelplane.cel.runtime import CELError, Meter

SHAPES: list[dict[str, Any]] = [
    {"driver": "gpu.nvidia.com", "attributes": {"model": {"string": "L4"},
                                                "cc": {"version": "8.9.0"}},
     "capacity": {"memory": {"value": "23034Mi"}}},
    {"driver": "gpu.nvidia.com", "attributes": {"model": {"string": "H100"},
                                                "cc": {"version": "9.0.0"}},
     "capacity": {"memory": {"value": "81559Mi"}}},
    {"driver": "gpu.nvidia.com", "attributes": {"model": {"string": "A10G"},
                                                "cc": {"version": "8.6.0"}},
     "capacity": {"memory": {"value": "23028Mi"}}},
    {"driver": "tpu.google.com", "attributes": {"generation": {"string": "v5e"}},
     "capacity": {"hbm": {"value": "16Gi"}}},
]
SELECTORS = [
    'device.capacity["gpu.nvidia.com"].memory.compareTo(quantity("20Gi")) >= 0',
    'device.attributes["gpu.nvidia.com"].cc.isGreaterThan(semver("8.5.0"))',
    'device.driver == "gpu.nvidia.com" && device.attributes["gpu.nvidia.com"].model in '
    '["L4", "A10G"]',
]
N_DEVICES = 4000


def _devices() -> list[dict[str, Any]]:
    return [{"name": f"dev-{i}", **SHAPES[i % len(SHAPES)]} for i in range(N_DEVICES)]


def _cold(devices: list[dict[str, Any]]) -> int:
    hits = 0
    for expr in SELECTORS:
        for d in devices:
            program = compile_expr(expr)
            with contextlib.suppress(CELError):  # errors are non-matches, as in match()
                hits += program.evaluate(to_device(d), Meter()) is True
    return hits


def _compiled(devices: list[dict[str, Any]]) -> int:
    hits = 0
    for expr in SELECTORS:
        program = compile_expr(expr)
        for d in devices:
            with contextlib.suppress(CELError):
                hits += program.evaluate(to_device(d), Meter()) is True
    return hits


def _memoised(devices: list[dict[str, Any]]) -> int:
    return sum(match(expr, d).matched for expr in SELECTORS for d in devices)


def main() -> None:
    devices = _devices()
    pairs = len(devices) * len(SELECTORS)
    rows = []
    for label, fn in (("cold", _cold), ("compiled", _compiled), ("memoised", _memoised)):
        reset_stats()
        start = time.perf_counter()
        hits = fn(devices)
        elapsed = time.perf_counter() - start
        s = stats()
        rows.append((label, elapsed, pairs / elapsed, hits, s["compiles"], s["evaluations"],
                     s["memo_hits"]))
    print(f"{pairs} (selector, device) pairs: {len(SELECTORS)} selectors x {N_DEVICES} devices "
          f"of {len(SHAPES)} shapes")
    print(f"{'mode':<12}{'seconds':>10}{'pairs/s':>12}{'matches':>9}{'compiles':>10}"
          f"{'evals':>8}{'memo hits':>11}")
    for label, elapsed, rate, hits, compiles, evals, memo in rows:
        print(f"{label:<12}{elapsed:>10.3f}{rate:>12.0f}{hits:>9}{compiles:>10}{evals:>8}"
              f"{memo:>11}")
    print("(stats columns count only work done through modelplane.cel.match)")


if __name__ == "__main__":
    main()
