"""Composing steps, one entry per API kind. Importing this package registers every step.

Each kind's module (or package) serves only that kind and never imports another kind's: what
kinds promise each other lives in :mod:`modelplane.contract`. ``routing`` is shared by the
kinds that route (ModelService, ModelEndpoint, InferenceGateway) and says so.
"""

from modelplane.steps import (  # noqa: F401  (each module registers its steps)
    inferenceclass,
    inferencecluster,
    inferencegateway,
    inferenceticket,
    modelcache,
    modeldeployment,
    modelendpoint,
    modelreplica,
    modelservice,
)
