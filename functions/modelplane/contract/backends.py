"""A ModelDeployment's backend weight: what the ModelServices of its namespace give it.

The eviction order (``placement/eviction.py``) protects the higher-weight backends, so the
InferenceCluster reads the ModelServices (``spec.endpoints[]``) the way routing does: an entry's
``role`` defaults to Primary and its ``weight`` to 1 (``steps/routing/plan.py``). An entry counts
for a deployment when its selector matches the label every composed ModelEndpoint of that
deployment carries, ``modelplane.ai/deployment=<name>``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from modelplane.common import selectors
from modelplane.contract.metadata import DEPLOYMENT_LABEL


def _weight(entry: Mapping[str, Any]) -> int:
    try:
        return max(int(entry.get("weight", 1)), 0)
    except (TypeError, ValueError):
        return 0


def weight_of(services: Iterable[Mapping[str, Any]], namespace: str, deployment: str) -> int:
    """The highest weight of a Primary entry of a ModelService in ``namespace`` whose selector
    matches ``modelplane.ai/deployment=<deployment>``; 0 when none routes to it."""
    labels = {DEPLOYMENT_LABEL: deployment}
    best = 0
    for svc in services:
        meta = svc.get("metadata")
        spec = svc.get("spec")
        if not isinstance(meta, Mapping) or not isinstance(spec, Mapping):
            continue
        if str(meta.get("namespace") or "") != namespace:
            continue
        entries = spec.get("endpoints")
        for e in entries if isinstance(entries, list) else []:
            if not isinstance(e, Mapping) or str(e.get("role") or "Primary") != "Primary":
                continue
            sel = e.get("selector")
            if isinstance(sel, Mapping) and selectors.matches(dict(sel), labels):
                best = max(best, _weight(e))
    return best
