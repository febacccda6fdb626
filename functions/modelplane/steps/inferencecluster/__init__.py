"""InferenceCluster (step `compose-cluster`): one cluster of the fleet and what runs on it.

- ``compose``: the step: pools joined with their classes, the per-source infrastructure, the
  serving stack, status (provider configs, gateway address, pools and the compact ledger).
- ``gke``, ``eks``, ``aks``, ``existing``: infrastructure per ``spec.cluster.source``.
- ``common``: what those composers share (the pool model, MR scaffolding).
- ``servingstack``: ProviderConfigs, chart Releases and gateway objects on the cluster.
- ``charts``: which software the serving stack runs, pinned in one place.
"""

from modelplane.steps.inferencecluster import compose

__all__ = ["compose"]
