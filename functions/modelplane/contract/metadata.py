"""Labels and annotations: what each one promises, and who reads it.

Everything under ``modelplane.ai/`` on an object we compose is ours; admission rejects those
keys on user templates so a tenant cannot forge them.
"""

from __future__ import annotations

PREFIX = "modelplane.ai/"

# -- on ModelReplicas, ModelEndpoints and the objects composed for them --------------------
#: The ModelDeployment a ModelReplica or composed ModelEndpoint belongs to (status.labelSelector).
DEPLOYMENT_LABEL = "modelplane.ai/deployment"
#: The InferenceCluster a replica, endpoint, cache copy or cloud resource belongs to.
CLUSTER_LABEL = "modelplane.ai/cluster"
#: The node label every provisioned node pool carries and every replica pod selects.
POOL_LABEL = "modelplane.ai/pool"
#: The GPU model of an EKS node pool's class (provisioning.eks.accelerator.type) on its nodes,
#: so workloads and operators can select by GPU kind (GKE sets its own accelerator label).
ACCELERATOR_LABEL = "modelplane.ai/accelerator"
#: Cluster labels a composed ModelEndpoint copies: where a replica serves from, for routing
#: and data-boundary rules of ModelServices.
REGION_LABEL = "modelplane.ai/region"
JURISDICTION_LABEL = "modelplane.ai/jurisdiction"
ENDPOINT_COPIED_LABELS = (REGION_LABEL, JURISDICTION_LABEL)
#: A ModelReplica's slot (0..replicas-1) within its deployment.
ORDINAL_ANNOTATION = "modelplane.ai/ordinal"
#: The spread record of the fleet read that placed a replica (lets a steady reconcile prove
#: the spread is even without reading the fleet).
SPREAD_ANNOTATION = "modelplane.ai/spread-domains"

# -- on workloads a ModelReplica composes on its cluster -----------------------------------
REPLICA_LABEL = "modelplane.ai/replica"
ENGINE_LABEL = "modelplane.ai/engine"
ROLE_LABEL = "modelplane.ai/role"
SERVING_LABEL = "modelplane.ai/serving"
INFERENCE_POOL_LABEL = "modelplane.ai/inference-pool"

# -- routing -------------------------------------------------------------------------------
#: ``"False"`` takes a ModelEndpoint out of rotation.
READY_ANNOTATION = "modelplane.ai/ready"
ENDPOINT_LABEL = "modelplane.ai/endpoint"
CONFIG_HASH_ANNOTATION = "modelplane.ai/config-hash"
SERVICE_LABEL = "modelplane.ai/service"
OWNER_TEAM_LABEL = "modelplane.ai/owner-team"
OWNER_CONTACT_LABEL = "modelplane.ai/owner-contact"
GATEWAY_LABEL = "modelplane.ai/gateway"

# -- caching -------------------------------------------------------------------------------
CACHE_LABEL = "modelplane.ai/cache"
