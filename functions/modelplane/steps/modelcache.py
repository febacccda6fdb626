"""ModelCache composition (step `compose-cache`)."""

from __future__ import annotations

from modelplane.common.pending import not_yet_implemented
from modelplane.step import StepRequest, StepResult, step


@step("compose-cache", kinds=["ModelCache"])
def compose(req: StepRequest) -> StepResult:
    return not_yet_implemented(req, "compose-cache")
