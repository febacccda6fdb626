"""InferenceClass composition (step `compose-class`)."""

from __future__ import annotations

from modelplane.common.pending import not_yet_implemented
from modelplane.step import StepRequest, StepResult, step


@step("compose-class", kinds=["InferenceClass"])
def compose(req: StepRequest) -> StepResult:
    return not_yet_implemented(req, "compose-class")
