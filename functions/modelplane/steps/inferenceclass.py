"""InferenceClass composition (step `compose-class`): validate a hardware shape, publish devices.

A class composes nothing. It is the source of truth for what one node of a pool offers, and
placement reads ``status.devices`` (defaults resolved) rather than re-deriving them. An invalid
class is reported by a condition naming the field and value; the previously published devices
stay as they were so running placements are not disturbed by a bad edit. A class whose
``eks.accelerator`` names another accelerator kind than its devices says so in
``AcceleratorConsistent=False`` (``AcceleratorMismatch``) and stays Ready.
"""

from __future__ import annotations

from modelplane.contract.api import INFERENCE_CLASS
from modelplane.contract.inferenceclass import (
    accelerator_disagreement,
    problems,
    resolve_devices,
)
from modelplane.step import StepRequest, StepResult, step


@step("compose-class", kinds=[INFERENCE_CLASS])
def compose(req: StepRequest) -> StepResult:
    res = StepResult()
    found = problems(req.spec)
    if found:
        res.condition("Valid", "False", "InvalidClass", "; ".join(found))
        res.composite_ready = "False"
        return res
    res.status["devices"] = resolve_devices(req.spec)
    res.condition("Valid", "True", "Valid",
                  f"{len(res.status['devices'])} device(s) published")
    # Reported where the platform engineer defines the lane; the devices stay published and
    # the class stays Ready: pools and replicas already running on it keep serving.
    disagreement = accelerator_disagreement(req.spec)
    if disagreement:
        res.condition("AcceleratorConsistent", "False", "AcceleratorMismatch",
                      disagreement + "; the node image and labels follow the accelerator, "
                      "placement follows the devices: make them name the same kind")
    res.composite_ready = "True"
    return res
