"""InferenceCluster composition (step `compose-cluster`)."""

from __future__ import annotations

from modelplane.common.pending import not_yet_implemented
from modelplane.step import StepRequest, StepResult, step


@step("compose-cluster", kinds=["InferenceCluster"])
def compose(req: StepRequest) -> StepResult:
    return not_yet_implemented(req, "compose-cluster")
