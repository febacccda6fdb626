"""The `place` step: reads the fleet, decides placement, writes it to the pipeline context."""

from __future__ import annotations

from modelplane.common.pending import not_yet_implemented
from modelplane.step import StepRequest, StepResult, step


@step("place", kinds=["ModelDeployment"])
def place(req: StepRequest) -> StepResult:
    return not_yet_implemented(req, "place")
