"""The promises Modelplane's kinds make to each other, each written once.

A ModelDeployment's replicas are found by a label, an InferenceCluster publishes its pools on
status for placement to read, a ModelReplica mounts the volume a ModelCache stages: every such
seam between two kinds is defined here and only here, so changing one means editing one place.

This layer imports only ``modelplane.common`` (and the quantity value type of ``modelplane.cel``);
steps, placement, render and validate import it.

- :mod:`.api`: API group, versions and kind names.
- :mod:`.metadata`: labels and annotations, with what each one promises.
- :mod:`.context`: pipeline context keys, and the shared condition reasons.
- :mod:`.inferenceclass`: when a class is usable, and the devices it publishes (defaults applied).
- :mod:`.remote`: the provider-kubernetes ``Object`` every remote manifest travels in.
- :mod:`.modelcache`: the volume convention between a ModelCache and the pods that read it.
"""
