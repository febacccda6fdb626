"""Pipeline context keys and the condition reasons one kind reads off another."""

from __future__ import annotations

#: The placement decision: written by ModelDeployment's `place`, read by `compose-deployment`
#: (encoded by ``modelplane.steps.modeldeployment.decision``).
PLACEMENT = "modelplane.ai/placement"
#: RFC 3339 time the caller sets (render does; Crossplane does not): anything time-based reads
#: it, and falls back to the wall clock when it is absent.
NOW = "modelplane.ai/now"

#: ModelReplica ``WorkloadsReady`` reason when its cluster cannot admit the pods: placement
#: reads it as the cluster refusing the replica, and re-places it where there is room.
UNSCHEDULABLE_REASON = "Unschedulable"
