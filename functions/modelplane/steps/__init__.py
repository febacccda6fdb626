"""Composing steps, one module per API kind. Importing this package registers every step."""

from modelplane.placement import step as _placement  # noqa: F401  (registers `place`)
from modelplane.steps import (  # noqa: F401  (each module registers its steps)
    inferenceclass,
    inferencecluster,
    inferencegateway,
    modelcache,
    modeldeployment,
    modelendpoint,
    modelreplica,
    modelservice,
)
