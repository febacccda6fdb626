"""A ModelDeployment's backend share: what the ModelServices of its namespace give it.

The eviction order (``placement/eviction.py``) protects the higher-weight backends, so the
InferenceCluster reads the ModelServices (``spec.endpoints[]``) the way routing does: an entry's
``role`` defaults to Primary and its ``weight`` to 1 (``steps/routing/plan.py``). An entry counts
for a deployment when its selector matches the label every composed ModelEndpoint of that
deployment carries, ``modelplane.ai/deployment=<name>``.

What ranks is the entry's *share* of its ModelService's Primary traffic (its weight over the sum
of the service's Primary weights), not the weight as written: weights only mean something
within one service, and tenants share pools, so a tenant who writes ``weight: 1000`` must not
outrank another tenant's sole backend (both are 100% of their service).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from fractions import Fraction
from typing import Any

from modelplane.common import selectors
from modelplane.contract.metadata import DEPLOYMENT_LABEL


def _weight(entry: Mapping[str, Any]) -> int:
    try:
        return max(int(entry.get("weight", 1)), 0)
    except (TypeError, ValueError):
        return 0


def _primaries(spec: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    entries = spec.get("endpoints")
    return [e for e in (entries if isinstance(entries, list) else [])
            if isinstance(e, Mapping) and str(e.get("role") or "Primary") == "Primary"]


def weight_of(services: Iterable[Mapping[str, Any]], namespace: str, deployment: str
              ) -> Fraction:
    """The largest share of Primary traffic a ModelService in ``namespace`` gives the entry
    whose selector matches ``modelplane.ai/deployment=<deployment>`` (0 to 1; 0 when none
    routes to it)."""
    labels = {DEPLOYMENT_LABEL: deployment}
    best = Fraction(0)
    for svc in services:
        meta = svc.get("metadata")
        spec = svc.get("spec")
        if not isinstance(meta, Mapping) or not isinstance(spec, Mapping):
            continue
        if str(meta.get("namespace") or "") != namespace:
            continue
        primaries = _primaries(spec)
        total = sum(_weight(e) for e in primaries)
        for e in primaries:
            sel = e.get("selector")
            if total and isinstance(sel, Mapping) and selectors.matches(dict(sel), labels):
                best = max(best, Fraction(_weight(e), total))
    return best
