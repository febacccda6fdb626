"""The capacity summary object each InferenceCluster composes and placement requires.

One ConfigMap per InferenceCluster in the control plane's ``crossplane-system`` namespace,
composed by `compose-cluster` (so Crossplane applies it with the cluster's status, and
deletes it with the cluster), labelled so `place` can require them all with one selector. Its
``data`` holds the summary text (format: ``modelplane.placement.capacity``). Placement trusts a
summary only when its controller is the InferenceCluster it describes: anything else in that
namespace with the label is ignored.
"""

from __future__ import annotations

from modelplane.common.names import dns_label

#: Namespace of the summaries: the control plane's own, which tenants cannot write to.
NAMESPACE = "crossplane-system"
#: Label every summary carries (value: the format version); what `place` selects on.
LABEL = "modelplane.ai/capacity"
LABEL_VALUE = "v1"
#: The data key of the summary text.
DATA_KEY = "summary"


def object_name(cluster: str) -> str:
    """The summary ConfigMap's name for an InferenceCluster."""
    return dns_label("modelplane-capacity", cluster)
