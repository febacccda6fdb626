"""The data boundary: which endpoint labels a ModelService's ``dataBoundary`` is judged on.

A ModelService keeps an endpoint (Primary or Fallback) only when the endpoint's labels satisfy
``spec.dataBoundary.selector``. A composed ModelEndpoint carries its deployment and cluster
labels plus the cluster labels in ``ENDPOINT_COPIED_LABELS``; nothing else of the cluster.
Routing (``steps/routing/plan.py``) and the InferenceTicket's prediction of where a replica may
serve both judge the boundary here, so the two can never disagree.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from modelplane.common import selectors
from modelplane.contract.metadata import CLUSTER_LABEL, DEPLOYMENT_LABEL, ENDPOINT_COPIED_LABELS


def copied_labels(cluster_labels: Mapping[str, str]) -> dict[str, str]:
    """The cluster labels a composed ModelEndpoint of a replica on that cluster copies."""
    return {k: str(cluster_labels[k]) for k in ENDPOINT_COPIED_LABELS if k in cluster_labels}


def endpoint_labels(deployment: str, cluster: str,
                    cluster_labels: Mapping[str, str]) -> dict[str, str]:
    """Every label of the ModelEndpoint composed for a replica of ``deployment`` on ``cluster``."""
    return {DEPLOYMENT_LABEL: deployment, CLUSTER_LABEL: cluster, **copied_labels(cluster_labels)}


def outside(boundary: Mapping[str, Any] | None, labels: Mapping[str, str]) -> str | None:
    """Why an endpoint with ``labels`` lies outside the boundary selector, or None when inside.

    An absent boundary holds everything inside. (A boundary that cannot be evaluated is invalid
    input and rejected before this is asked: fail closed, never route everywhere.)
    """
    return selectors.explain_mismatch(boundary, labels) if boundary else None
