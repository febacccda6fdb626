"""DRA device selectors: Kubernetes-faithful CEL, cost-limited, compiled once and memoised.

Public API (other packages depend on exactly these names)::

    match(expr, device) -> Match       # memoised per (expression, device shape)
    check(expr) -> str | None          # compile / length / estimated-cost problem, or None
    stats() -> dict[str, int]; reset_stats() -> None

Placement asks ``match`` for every (selector, device) pair of a fleet. Devices of one InferenceClass
repeat across clusters, so results are memoised on the device's canonical shape (its entry minus
``name``): CEL work is proportional to distinct (selector, shape) pairs, not to clusters. Each
distinct expression is compiled once per process.

See docs/cel.md for the environment, the cost model and the differences from Kubernetes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from .device import DeviceError, device_key, to_device
from .engine import CompileError, InstantiationError, Program, compile_expr, fmt_type
from .runtime import COST_LIMIT, TIME_LIMIT, CELError, CostExceeded, DeviceValue, Meter

__all__ = [
    "COST_LIMIT",
    "MAX_EXPRESSION_BYTES",
    "TIME_LIMIT",
    "Match",
    "Outcome",
    "check",
    "evaluate",
    "match",
    "reset_stats",
    "selector_problems",
    "stats",
]

# Kubernetes resource/v1 CELSelectorExpressionMaxLength.
MAX_EXPRESSION_BYTES: Final = 10 * 1024
# Memo entries kept before the memo is dropped and rebuilt (bounds memory in long-lived servers).
_MEMO_MAX: Final = 200_000
_COMPILED_MAX: Final = 20_000


@dataclass(frozen=True)
class Match:
    """Whether a device satisfies a selector; ``reason`` says why not when it does not."""

    matched: bool
    reason: str | None = None


@dataclass(frozen=True)
class Outcome:
    """One evaluation: a value, or an error with the phase it happened in."""

    value: Any = None
    error: str | None = None
    phase: str | None = None  # "compile" | "evaluation" | "device"


@dataclass(frozen=True)
class _Compiled:
    program: Program | None
    error: str | None


_compiled: dict[tuple[str, bool, bool], _Compiled] = {}
_memo: dict[tuple[str, str], Match] = {}
_stats: dict[str, int] = {"compiles": 0, "evaluations": 0, "memo_hits": 0, "memo_misses": 0}


def stats() -> dict[str, int]:
    """Counters since the last reset: compiles, evaluations, memo hits and misses."""
    return dict(_stats)


def reset_stats() -> None:
    """Zero the counters and forget compiled programs and memoised results."""
    _compiled.clear()
    _memo.clear()
    for k in _stats:
        _stats[k] = 0


def _compile(expr: str, *, allow_multiple_allocations: bool = True,
             require_bool: bool = True) -> _Compiled:
    key = (expr, allow_multiple_allocations, require_bool)
    got = _compiled.get(key)
    if got is not None:
        return got
    _stats["compiles"] += 1
    size = len(expr.encode("utf-8"))
    if size > MAX_EXPRESSION_BYTES:
        result = _Compiled(None, f"expression too long: {size} bytes, must have at most "
                                 f"{MAX_EXPRESSION_BYTES} bytes")
    else:
        try:
            program = compile_expr(expr, allow_multiple_allocations=allow_multiple_allocations)
        except InstantiationError as exc:
            result = _Compiled(None, str(exc))
        except CompileError as exc:
            result = _Compiled(None, f"compilation failed: {exc}")
        else:
            if require_bool and program.type not in ("bool", "any"):
                result = _Compiled(None, "must evaluate to bool or the unknown type, not "
                                         f"{fmt_type(program.type)}")
            else:
                result = _Compiled(program, None)
    if len(_compiled) >= _COMPILED_MAX:
        _compiled.clear()
    _compiled[key] = result
    return result


def _over_budget(program: Program, limit: int) -> str | None:
    if program.estimated_cost > limit:
        shown = "unbounded" if program.estimated_cost == float("inf") else \
            str(int(program.estimated_cost))
        return (f"cost limit exceeded: estimated worst-case cost {shown} exceeds the limit "
                f"of {limit} (too complex; not evaluated)")
    return None


def check(expr: str) -> str | None:
    """A user-facing problem with ``expr`` (length, compilation, estimated cost), else None."""
    compiled = _compile(expr)
    if compiled.error is not None:
        return compiled.error
    assert compiled.program is not None
    return _over_budget(compiled.program, COST_LIMIT)


def selector_problems(doc: Any, path: str = "") -> list[tuple[str, str, str]]:
    """``(field path, expression, problem)`` for every device selector in ``doc`` that the API
    server would refuse: too long, not compiling, or a worst-case cost above the 1,000,000 limit.

    Selectors are the ``cel`` strings of ``selectors`` lists (ModelDeployment and ModelReplica
    device requests); paths read like ``spec.engines[0].devices[0].selectors[1].cel``.
    """
    out: list[tuple[str, str, str]] = []
    if isinstance(doc, Mapping):
        for key, value in doc.items():
            here = f"{path}.{key}" if path else str(key)
            if key == "selectors" and isinstance(value, list):
                for i, sel in enumerate(value):
                    expr = sel.get("cel") if isinstance(sel, Mapping) else None
                    if isinstance(expr, str):
                        problem = check(expr)
                        if problem is not None:
                            out.append((f"{here}[{i}].cel", expr, problem))
            else:
                out.extend(selector_problems(value, here))
    elif isinstance(doc, list):
        for i, item in enumerate(doc):
            out.extend(selector_problems(item, f"{path}[{i}]"))
    return out


def evaluate(expr: str, device: Mapping[str, Any] | DeviceValue | None = None, *,
             require_bool: bool = True, allow_multiple_allocations: bool = True,
             cost_limit: int = COST_LIMIT, enforce_estimate: bool = True,
             time_limit: float | None = None) -> Outcome:
    """Evaluate without the memo (CLI, tests). ``device`` None means an empty device.

    ``time_limit`` is the wall-clock budget in seconds (default ``TIME_LIMIT``); past it, as past
    ``cost_limit`` units, the evaluation stops with an ``operation cancelled`` error.
    """
    compiled = _compile(expr, allow_multiple_allocations=allow_multiple_allocations,
                        require_bool=require_bool)
    if compiled.error is not None:
        return Outcome(error=compiled.error, phase="compile")
    program = compiled.program
    assert program is not None
    if enforce_estimate:
        problem = _over_budget(program, cost_limit)
        if problem is not None:
            return Outcome(error=problem, phase="evaluation")
    try:
        dev = device if isinstance(device, DeviceValue) else to_device(device or {})
    except DeviceError as exc:
        return Outcome(error=f"invalid device: {exc}", phase="device")
    _stats["evaluations"] += 1
    try:
        value = program.evaluate(dev, Meter(cost_limit, time_limit))
    except CELError as exc:
        return Outcome(error=str(exc), phase="evaluation")
    except CostExceeded as exc:
        return Outcome(error=str(exc), phase="evaluation")
    except RecursionError:
        return Outcome(error="evaluation recursion limit exceeded", phase="evaluation")
    return Outcome(value=value)


def match(expr: str, device: Mapping[str, Any]) -> Match:
    """Does ``device`` (an InferenceClass device entry) satisfy selector ``expr``?

    Errors, non-bool results and budget overruns are non-matches whose reason says what
    happened, as Kubernetes' allocator treats them. Memoised per (expr, device shape).
    """
    try:
        key = device_key(device)
    except Exception as exc:  # a non-mapping device: report, never raise
        return Match(False, f"invalid device: {exc}")
    memo_key = (expr, key)
    got = _memo.get(memo_key)
    if got is not None:
        _stats["memo_hits"] += 1
        return got
    _stats["memo_misses"] += 1
    out = evaluate(expr, device)
    if out.error is not None:
        result = Match(False, out.error)
    elif out.value is True:
        result = Match(True, None)
    elif out.value is False:
        result = Match(False, "selector evaluated to false")
    else:
        kind = _kind(out.value)
        result = Match(False, f"CEL result of type {kind} could not be converted to bool")
    if len(_memo) >= _MEMO_MAX:
        _memo.clear()
    _memo[memo_key] = result
    return result


def _kind(v: Any) -> str:
    from .runtime import type_name

    return type_name(v)
