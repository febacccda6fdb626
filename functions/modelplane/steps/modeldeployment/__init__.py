"""ModelDeployment: `place` decides where each replica runs, `compose` turns it into replicas.

``decision`` is the typed record the two steps pass through the pipeline context.
"""

from modelplane.steps.modeldeployment import compose, place

__all__ = ["compose", "place"]
