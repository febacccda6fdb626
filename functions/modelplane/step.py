"""The step contract: what a composing step receives and returns, as plain data.

Every pipeline step of the Modelplane function is a pure function
``(StepRequest) -> StepResult``. The gRPC layer (``server.py``) translates protobuf to these
dataclasses and back, so handlers are testable over plain dicts and never see protobuf.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

Resource = dict[str, Any]
Severity = Literal["Normal", "Warning", "Fatal"]
ConditionStatus = Literal["True", "False", "Unknown"]
Readiness = Literal["True", "False", "Unspecified"]

# Metadata the API server owns: never echo it back as desired state.
_SERVER_METADATA = (
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "managedFields",
    "ownerReferences",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "selfLink",
    "generateName",
)


@dataclass(frozen=True)
class Selector:
    """A required-resources selector (Crossplane ``requirements.resources``).

    Exactly one of ``match_name`` / ``match_labels`` may be set; with neither, every object of
    the kind matches. ``namespace=None`` means cluster-scoped kinds, or all namespaces for a
    label match of a namespaced kind.
    """

    api_version: str
    kind: str
    match_name: str | None = None
    match_labels: tuple[tuple[str, str], ...] | None = None
    namespace: str | None = None

    @staticmethod
    def labels(
        api_version: str, kind: str, labels: dict[str, str], namespace: str | None = None
    ) -> Selector:
        return Selector(api_version, kind, None, tuple(sorted(labels.items())), namespace)


@dataclass
class Condition:
    """A status condition the step asks Crossplane to set on the XR (never ``Ready``)."""

    type: str
    status: ConditionStatus
    reason: str
    message: str = ""


@dataclass
class Result:
    """A function result: an event on the XR; Fatal aborts the reconcile without deleting."""

    severity: Severity
    message: str
    reason: str = ""


@dataclass
class Desired:
    """One desired composed resource and the readiness the step reports for it."""

    resource: Resource
    ready: Readiness = "Unspecified"


@dataclass
class StepRequest:
    """Everything a step may read. All values are plain JSON-like data."""

    step: str
    input: dict[str, Any]
    composite: Resource
    observed: dict[str, Resource] = field(default_factory=dict)
    desired: dict[str, Desired] = field(default_factory=dict)
    desired_composite_status: dict[str, Any] = field(default_factory=dict)
    context: dict[str, Any] = field(default_factory=dict)
    # name -> objects; a name that is absent has not been resolved yet (first call of the loop).
    required: dict[str, list[Resource]] = field(default_factory=dict)

    # -- convenience accessors -------------------------------------------------------------
    @property
    def kind(self) -> str:
        return str(self.composite.get("kind", ""))

    @property
    def name(self) -> str:
        return str(self.composite.get("metadata", {}).get("name", ""))

    @property
    def namespace(self) -> str | None:
        ns = self.composite.get("metadata", {}).get("namespace")
        return str(ns) if ns else None

    @property
    def spec(self) -> dict[str, Any]:
        spec = self.composite.get("spec")
        return spec if isinstance(spec, dict) else {}

    @property
    def status(self) -> dict[str, Any]:
        status = self.composite.get("status")
        return status if isinstance(status, dict) else {}

    def keep_observed(self, names: Iterable[str] | None = None) -> dict[str, Desired]:
        """Observed composed resources as desired state, for when a step cannot compute anew.

        Crossplane deletes whatever a function stops returning, so a step that lacks an input
        returns what already exists (minus status and server-owned metadata) instead.
        """
        wanted = set(self.observed) if names is None else set(names)
        kept: dict[str, Desired] = {}
        for rname in sorted(wanted & set(self.observed)):
            kept[rname] = Desired(as_desired(self.observed[rname]))
        return kept


# Label and annotation prefixes other parties own on our composed objects: Crossplane sets its
# own (the external name is the one we compose), users set render's fault injection and
# Crossplane's pause, kubectl its bookkeeping.
_FOREIGN_PREFIXES = ("crossplane.io/", "kubectl.kubernetes.io/", "render.modelplane.ai/")
_OURS = ("crossplane.io/external-name",)
# Crossplane's field manager for composed resources (one per XR: ".../<hash>").
_COMPOSED_MANAGER = "apiextensions.crossplane.io/composed/"


def _owned_keys(managed: Any, field: str) -> set[str] | None:
    """Keys of metadata.<field> that Crossplane's composed-resource manager owns, from the
    object's managedFields (FieldsV1); None when the object carries no managedFields."""
    if not isinstance(managed, list) or not managed:
        return None
    keys: set[str] = set()
    for entry in managed:
        if not isinstance(entry, dict) or not str(entry.get("manager", "")).startswith(
                _COMPOSED_MANAGER):
            continue
        fields = ((entry.get("fieldsV1") or {}).get("f:metadata") or {}).get(f"f:{field}") or {}
        keys |= {k[2:] for k in fields if k.startswith("f:")}
    return keys


def as_desired(observed: Resource) -> Resource:
    """An observed object as our intent again: only the fields we own.

    Crossplane server-side applies desired state as our full intent, so echoing a field makes
    us its owner and fights whoever set it. Dropped: status, server-owned metadata, finalizers,
    a nested XR's ``spec.crossplane`` (its own reconciler's resourceRefs and revision), and
    labels/annotations others set (by managedFields when the object has them, else by prefix).
    """
    obj = copy.deepcopy(observed)
    obj.pop("status", None)
    meta = obj.get("metadata")
    if isinstance(meta, dict):
        managed = meta.get("managedFields")
        for key in (*_SERVER_METADATA, "finalizers"):
            meta.pop(key, None)
        for field_ in ("labels", "annotations"):
            values = meta.get(field_)
            if not isinstance(values, dict):
                continue
            owned = _owned_keys(managed, field_)
            meta[field_] = {k: v for k, v in values.items()
                            if (k in owned if owned is not None
                                else k in _OURS or not k.startswith(_FOREIGN_PREFIXES))}
            if not meta[field_]:
                del meta[field_]
    spec = obj.get("spec")
    if isinstance(spec, dict):
        spec.pop("crossplane", None)
    return obj


@dataclass
class StepResult:
    """What a step returns. ``desired`` replaces the pipeline's desired composed resources."""

    desired: dict[str, Desired] = field(default_factory=dict)
    status: dict[str, Any] = field(default_factory=dict)
    conditions: list[Condition] = field(default_factory=list)
    results: list[Result] = field(default_factory=list)
    requirements: dict[str, Selector] = field(default_factory=dict)
    context: dict[str, Any] = field(default_factory=dict)
    # Set to "True" to override Crossplane's readiness derived from composed resources.
    composite_ready: Readiness = "Unspecified"

    def condition(
        self, type_: str, status: ConditionStatus, reason: str, message: str = ""
    ) -> None:
        self.conditions.append(Condition(type_, status, reason, message))

    def event(self, severity: Severity, message: str, reason: str = "") -> None:
        self.results.append(Result(severity, message, reason))


Handler = Callable[[StepRequest], StepResult]


@dataclass(frozen=True)
class Registration:
    name: str
    kinds: frozenset[str]
    handler: Handler


STEPS: dict[str, Registration] = {}


def step(name: str, kinds: Iterable[str]) -> Callable[[Handler], Handler]:
    """Register a handler for pipeline input ``step: <name>`` on XRs of the given kinds."""

    def register(handler: Handler) -> Handler:
        if name in STEPS:
            raise ValueError(f"step {name!r} registered twice")
        STEPS[name] = Registration(name, frozenset(kinds), handler)
        return handler

    return register


def require(
    req: StepRequest, res: StepResult, name: str, selector: Selector
) -> list[Resource] | None:
    """Declare a required resource set and return it, or None while it is not yet resolved.

    Crossplane calls the function again with the resources until the requirements a step
    returns are stable, so a step must declare the same requirements on every call.
    """
    res.requirements[name] = selector
    got = req.required.get(name)
    return None if got is None else list(got)


def mark_ready_from_observed(req: StepRequest, desired: dict[str, Desired]) -> None:
    """Mark desired resources ready whose observed object reports ``Ready=True``.

    Crossplane treats a composed resource as ready only when a function says READY_TRUE (an
    unspecified readiness counts as not ready), so every step reports readiness itself; this is
    the common rule for managed resources and our own XRs. Resources already marked stay marked.
    """
    for name, d in desired.items():
        if d.ready != "Unspecified":
            continue
        obs = req.observed.get(name)
        for c in ((obs or {}).get("status") or {}).get("conditions") or []:
            if isinstance(c, dict) and c.get("type") == "Ready":
                d.ready = "True" if c.get("status") == "True" else "False"
