"""InferenceTicket: the inference deployment ticket answered against the fleet (docs/ticket.md).

``ticket.py`` reads the ten rows and builds the ModelDeployment and ModelService the ticket
implies (once); ``answer.py`` answers it with the placement core's own dry run; ``compose.py``
is the `compose-ticket` step.
"""

from modelplane.steps.inferenceticket import compose  # noqa: F401  (registers compose-ticket)
