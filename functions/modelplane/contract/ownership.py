"""Which composite controls an object: the owner reference and label Crossplane sets.

Crossplane marks every composed resource with a controller owner reference to its composite and
the ``crossplane.io/composite`` label naming it (render does the same, see
``modelplane.render.engine``). Kinds that trust an object only when Modelplane composed it (a
ModelReplica placed by a ModelDeployment, a ModelEndpoint composed for a replica) read it here.
Owner references are namespace-local, so a match also means "of the object's own namespace".
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from modelplane.common.fields import mapping, sequence
from modelplane.contract.api import GROUP

COMPOSITE_LABEL = "crossplane.io/composite"


def controller(obj: Mapping[str, Any]) -> dict[str, Any] | None:
    """The controller owner reference, or None."""
    for ref in sequence(mapping(obj.get("metadata")).get("ownerReferences")):
        if isinstance(ref, dict) and ref.get("controller") is True:
            return ref
    return None


def not_composed_by(obj: Mapping[str, Any], kind: str) -> str | None:
    """Why ``obj`` is not controlled by a Modelplane composite of ``kind``, or None when it is."""
    ref = controller(obj)
    labels = mapping(mapping(obj.get("metadata")).get("labels"))
    if ref is None:
        return f"it has no controller owner reference (it must be composed by a {kind})"
    group = str(ref.get("apiVersion", "")).split("/")[0]
    if group != GROUP or ref.get("kind") != kind:
        return (f"its controller is {ref.get('kind')} {ref.get('name')!r} "
                f"({ref.get('apiVersion')}), not a {kind}")
    # Crossplane sets the label to the *root* composite's name (a ModelDeployment composed by an
    # InferenceTicket passes the ticket's name down), so it must be present but may name the root.
    if not labels.get(COMPOSITE_LABEL):
        return f"it has no {COMPOSITE_LABEL} label (it must be composed by a {kind})"
    return None
