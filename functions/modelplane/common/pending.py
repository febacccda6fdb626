"""A placeholder for steps whose capability has not landed yet: keep everything, say so."""

from __future__ import annotations

from modelplane.step import StepRequest, StepResult


def not_yet_implemented(req: StepRequest, capability: str) -> StepResult:
    """Compose nothing new, keep whatever exists, and report it in a condition."""
    res = StepResult(desired=req.keep_observed())
    res.condition(
        "Composed", "False", "NotImplemented",
        f"{req.kind} composition ({capability}) is not implemented yet; nothing is composed",
    )
    return res
