"""ModelService composition (step `compose-service`)."""

from __future__ import annotations

from modelplane.common.pending import not_yet_implemented
from modelplane.step import StepRequest, StepResult, step


@step("compose-service", kinds=["ModelService"])
def compose(req: StepRequest) -> StepResult:
    return not_yet_implemented(req, "compose-service")
