"""Per-source InferenceCluster composers (gke, eks, aks, existing) and the serving stack."""
