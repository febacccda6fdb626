"""Reading what a step returned, the same way in every test."""

from __future__ import annotations

from typing import NamedTuple

from modelplane.step import StepResult


class Cond(NamedTuple):
    status: str
    reason: str
    message: str


def condition(res: StepResult, type_: str) -> Cond:
    """The condition of that type the step set (the test fails when it set none)."""
    found = [c for c in res.conditions if c.type == type_]
    assert found, f"no {type_} condition; got {[c.type for c in res.conditions]}"
    return Cond(found[-1].status, found[-1].reason, found[-1].message)
