"""ModelReplica (step `compose-replica`): one placed replica's workloads on its cluster.

- ``compose``: the step: reads the spec, the cluster and cache, composes and reports.
- ``spec``: the ModelReplica spec read into typed values, with problems named by field path.
- ``naming``: every remote and control-plane name, and the labels Modelplane puts on pods.
- ``pods``: the user's pod template plus exactly what Modelplane owns (pin, claims, shm, cache...).
- ``claims``: one DRA ResourceClaimTemplate per claiming member.
- ``workloads``: Deployment (Standalone) or LeaderWorkerSet (Leader + Worker) per engine.
- ``exposure``: the Service, the HTTPRoute on the cluster gateway, the InferencePool
  (PrefillDecode).
- ``objects``: when the remote objects count as ready.
"""

from modelplane.steps.modelreplica import compose

__all__ = ["compose"]
