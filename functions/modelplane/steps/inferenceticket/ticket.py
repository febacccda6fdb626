"""An InferenceTicket read as plain data: its ten rows, what is wrong with it, and what it implies.

The ticket implies exactly one ModelDeployment and one ModelService. :func:`implied` builds them
once; the dry run (``answer.py``) places that very ModelDeployment, and ``deploy: true`` composes
it, so the prediction and the real placement read the same object and cannot drift.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from modelplane.cel import check as cel_problem
from modelplane.cel.quantity import is_quantity
from modelplane.common.fields import mapping, sequence
from modelplane.common.names import dns_label
from modelplane.contract.api import API_VERSION, MODEL_DEPLOYMENT, MODEL_SERVICE
from modelplane.contract.inferenceclass import class_devices
from modelplane.contract.metadata import CLUSTER_LABEL, DEPLOYMENT_LABEL, ENDPOINT_COPIED_LABELS
from modelplane.steps.routing import selector_problem

ROWS = ("model", "engine", "hardware", "fleet", "sovereignty", "scaling", "endpoint",
        "overflow", "cache", "lifecycle")
DEFAULT_DEVICE = "gpu"
ENGINE = "engine"
#: The seed's warning, quoted when an overflow lies outside the data boundary.
OVERFLOW_WARNING = ("the overflow you did not plan is the data boundary you did not mean to "
                    "cross")
_CAPACITY_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


@dataclass
class Problem:
    """Bad input: the field path and a message naming the value."""

    field: str
    message: str

    def __str__(self) -> str:
        return self.message if self.message.startswith(self.field) else (
            f"{self.field} {self.message}")


@dataclass
class Row:
    name: str
    state: str  # decided | open
    message: str

    def status(self) -> dict[str, str]:
        return {"name": self.name, "state": self.state, "message": self.message}


@dataclass
class Implied:
    """What the ticket composes, and why it cannot compose (problems) when it cannot."""

    deployment: dict[str, Any] | None = None
    service: dict[str, Any] | None = None
    problems: list[Problem] = field(default_factory=list)


def spec_of(ticket: Mapping[str, Any]) -> dict[str, Any]:
    return dict(mapping(ticket.get("spec")))


def row(spec: Mapping[str, Any], name: str) -> dict[str, Any] | None:
    value = spec.get(name)
    return dict(value) if isinstance(value, Mapping) else None


def declined(value: Mapping[str, Any] | None) -> bool:
    return bool(value and value.get("none") is True)


def _date(text: Any) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            d = date.fromisoformat(text)
            return datetime(d.year, d.month, d.day, tzinfo=UTC)
        t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def rows(ticket: Mapping[str, Any], now: datetime) -> list[Row]:
    """Each row decided (filled or explicitly declined) or open, and why."""
    spec = spec_of(ticket)
    out: list[Row] = []
    for name in ROWS:
        value = row(spec, name)
        if value is None:
            out.append(Row(name, "open", f"spec.{name} is absent"))
        elif declined(value):
            out.append(Row(name, "decided", f"declined (spec.{name}.none: true)"))
        elif name == "endpoint" and not str(value.get("owner") or "").strip():
            out.append(Row(name, "open", "spec.endpoint.owner is empty: nobody is paged when "
                                         "this endpoint breaks"))
        elif name == "lifecycle" and value.get("retireAfter") is not None:
            retire = _date(value.get("retireAfter"))
            if retire is not None and retire <= now:
                out.append(Row(name, "open", f"spec.lifecycle.retireAfter "
                                             f"{value['retireAfter']!r} has passed: retire the "
                                             f"model or decide a new date"))
            else:
                out.append(Row(name, "decided", "filled"))
        else:
            out.append(Row(name, "decided", "filled"))
    return out


def deployment_name(ticket: Mapping[str, Any]) -> str:
    return dns_label(str(mapping(ticket.get("metadata")).get("name", "")))


def service_name(ticket: Mapping[str, Any]) -> str:
    endpoint = row(spec_of(ticket), "endpoint") or {}
    return dns_label(str(endpoint.get("service") or deployment_name(ticket)))


def boundary_of(ticket: Mapping[str, Any]) -> dict[str, Any] | None:
    """The data-boundary selector (None when the row is absent or declined)."""
    sov = row(spec_of(ticket), "sovereignty")
    if sov is None or declined(sov):
        return None
    b = sov.get("dataBoundary")
    return dict(b) if isinstance(b, Mapping) else None


def fleet_selector(ticket: Mapping[str, Any]) -> dict[str, Any] | None:
    fleet = row(spec_of(ticket), "fleet")
    if fleet is None or declined(fleet):
        return None
    sel = fleet.get("clusterSelector")
    return dict(sel) if isinstance(sel, Mapping) and sel else None


def cluster_selector(ticket: Mapping[str, Any]) -> dict[str, Any] | None:
    """fleet ∩ sovereignty as a cluster selector.

    The boundary is judged on endpoint labels; of a cluster's labels an endpoint copies only
    ``ENDPOINT_COPIED_LABELS``, so only requirements on those keys carry over to clusters. The
    others are constant across clusters (an endpoint never carries them), and ``answer.py``
    judges them with the boundary itself.
    """
    base = fleet_selector(ticket) or {}
    labels = {str(k): str(v) for k, v in mapping(base.get("matchLabels")).items()}
    exprs = [dict(e) for e in map(mapping, sequence(base.get("matchExpressions")))]
    boundary = boundary_of(ticket) or {}
    for k, v in sorted(mapping(boundary.get("matchLabels")).items()):
        if k not in ENDPOINT_COPIED_LABELS:
            continue
        if k in labels and labels[k] != str(v):
            exprs.append({"key": k, "operator": "In", "values": [str(v)]})
        else:
            labels[k] = str(v)
    exprs += [dict(e) for e in map(mapping, sequence(boundary.get("matchExpressions")))
              if e.get("key") in ENDPOINT_COPIED_LABELS]
    out: dict[str, Any] = {}
    if labels:
        out["matchLabels"] = dict(sorted(labels.items()))
    if exprs:
        out["matchExpressions"] = exprs
    return out or None


def _class_selector(cls: Mapping[str, Any], device: str) -> str | None:
    """A CEL expression true for exactly the device shape the class publishes as ``device``."""
    for d in class_devices(cls):
        if d["name"] != device:
            continue
        parts = [f"device.driver == {json.dumps(d['driver'])}"]
        for cname, cap in sorted(mapping(d.get("capacity")).items()):
            value = mapping(cap).get("value")
            if _CAPACITY_NAME.match(cname) and isinstance(value, str) and is_quantity(value):
                parts.append(f"device.capacity[device.driver].{cname}"
                             f".compareTo(quantity({json.dumps(value)})) == 0"
                             if "-" not in cname else
                             f"device.capacity[device.driver][{json.dumps(cname)}]"
                             f".compareTo(quantity({json.dumps(value)})) == 0")
        return " && ".join(parts)
    return None


def device_request(ticket: Mapping[str, Any], classes: Mapping[str, Mapping[str, Any]],
                   problems: list[Problem]) -> dict[str, Any] | None:
    """The hardware row as a DRA device request, or None (row open, declined, or invalid)."""
    hw = row(spec_of(ticket), "hardware")
    if hw is None or declined(hw):
        return None
    device = str(hw.get("device") or DEFAULT_DEVICE)
    gpus = hw.get("gpus", 1)
    selectors: list[str] = []
    names = [str(n) for n in sequence(hw.get("classNames"))]
    shapes: list[str] = []
    for i, cname in enumerate(names):
        cls = classes.get(cname)
        if cls is None:
            problems.append(Problem(f"spec.hardware.classNames[{i}]",
                                    f"{cname!r}: no InferenceClass of that name"))
            continue
        shape = _class_selector(cls, device)
        if shape is None:
            problems.append(Problem(f"spec.hardware.classNames[{i}]",
                                    f"{cname!r}: the class publishes no device named "
                                    f"{device!r} (set spec.hardware.device)"))
            continue
        shapes.append(shape)
    if shapes:
        unique = sorted(set(shapes))
        selectors.append(unique[0] if len(unique) == 1
                         else " || ".join(f"({s})" for s in unique))
    memory = hw.get("memory")
    if memory is not None:
        if not isinstance(memory, str) or not is_quantity(memory):
            problems.append(Problem("spec.hardware.memory",
                                    f"{memory!r} is not a Kubernetes quantity (e.g. 40Gi)"))
        else:
            selectors.append(f"device.capacity[device.driver].memory"
                             f".compareTo(quantity({json.dumps(memory)})) >= 0")
    for i, s in enumerate(sequence(hw.get("selectors"))):
        expr = str(mapping(s).get("cel", ""))
        why = cel_problem(expr)
        if why:
            problems.append(Problem(f"spec.hardware.selectors[{i}].cel",
                                    f"{expr!r} does not compile: {why}"))
        else:
            selectors.append(expr)
    out: dict[str, Any] = {"name": device, "count": gpus if isinstance(gpus, int) else 1}
    if selectors:
        out["selectors"] = [{"cel": s} for s in selectors]
    return out


def _selector_problems(ticket: Mapping[str, Any], problems: list[Problem]) -> None:
    fleet = fleet_selector(ticket)
    if fleet:
        why = selector_problem(fleet, "spec.fleet.clusterSelector")
        if why:
            problems.append(Problem("spec.fleet.clusterSelector", why))
    boundary = boundary_of(ticket)
    sov = row(spec_of(ticket), "sovereignty")
    if sov is not None and not declined(sov) and boundary is None:
        problems.append(Problem("spec.sovereignty.dataBoundary",
                                "is required unless the row is declined (none: true)"))
    if boundary is not None:
        # The same check a ModelService makes: a boundary that cannot be evaluated fails closed.
        why = selector_problem(boundary, "spec.sovereignty.dataBoundary")
        if why:
            problems.append(Problem("spec.sovereignty.dataBoundary", why))
        keys = set(mapping(boundary.get("matchLabels"))) | {
            str(e.get("key")) for e in map(mapping, sequence(boundary.get("matchExpressions")))}
        if CLUSTER_LABEL in keys:
            problems.append(Problem("spec.sovereignty.dataBoundary",
                                    f"names {CLUSTER_LABEL!r}, which placement cannot honour "
                                    f"as a cluster label; bound it by "
                                    f"{' or '.join(ENDPOINT_COPIED_LABELS)}"))
    lifecycle = row(spec_of(ticket), "lifecycle")
    if lifecycle and lifecycle.get("retireAfter") is not None and _date(
            lifecycle.get("retireAfter")) is None:
        problems.append(Problem("spec.lifecycle.retireAfter",
                                f"{lifecycle['retireAfter']!r} is not a date (YYYY-MM-DD) or "
                                f"an RFC 3339 time"))


def _container(ticket: Mapping[str, Any]) -> dict[str, Any]:
    spec = spec_of(ticket)
    engine = row(spec, "engine") or {}
    model = str((row(spec, "model") or {}).get("name") or "")
    args = [str(a) for a in sequence(engine.get("args"))]
    if model and not any(a == "--model" or a.startswith("--model=") for a in args):
        args.insert(0, f"--model={model}")
    out: dict[str, Any] = {"name": ENGINE, "image": str(engine.get("image") or "")}
    if args:
        out["args"] = args
    return out


def scaling(ticket: Mapping[str, Any]) -> tuple[int, int]:
    """(replicas, maxReplicas): the steady target and the peak (maxReplicas >= replicas)."""
    s = row(spec_of(ticket), "scaling") or {}
    replicas = s.get("replicas", 1)
    replicas = replicas if isinstance(replicas, int) and not isinstance(replicas, bool) else 1
    peak = s.get("maxReplicas", replicas)
    peak = peak if isinstance(peak, int) and not isinstance(peak, bool) else replicas
    return max(replicas, 0), max(peak, replicas, 0)


def implied(ticket: Mapping[str, Any], classes: Sequence[Mapping[str, Any]],
            overflow: Mapping[str, Any] | None = None) -> Implied:
    """The ModelDeployment and ModelService the ticket describes (the only place they are built).

    ``classes`` resolves ``hardware.classNames``; ``overflow`` is the referenced ModelEndpoint
    (its labels are how the ModelService's Fallback group selects it).
    """
    out = Implied()
    spec = spec_of(ticket)
    meta = mapping(ticket.get("metadata"))
    namespace = str(meta.get("namespace") or "")
    by_name = {str(mapping(c.get("metadata")).get("name")): c for c in classes}
    device = device_request(ticket, by_name, out.problems)
    _selector_problems(ticket, out.problems)
    if device is None or out.problems:
        return out
    name = deployment_name(ticket)
    replicas, _ = scaling(ticket)
    md_spec: dict[str, Any] = {
        "replicas": replicas,
        "engines": [{"name": ENGINE, "members": [{
            "role": "Standalone",
            "nodeSelector": {"devices": [device]},
            "template": {"spec": {"containers": [_container(ticket)]}},
        }]}],
    }
    selector = cluster_selector(ticket)
    if selector:
        md_spec["clusterSelector"] = selector
    cache = row(spec, "cache")
    if cache and not declined(cache):
        ref = str(mapping(cache.get("modelCacheRef")).get("name") or "")
        if ref:
            md_spec["modelCacheRef"] = {"name": ref}
    out.deployment = {"apiVersion": API_VERSION, "kind": MODEL_DEPLOYMENT,
                      "metadata": {"name": name, "namespace": namespace},
                      "spec": md_spec}
    endpoint = row(spec, "endpoint") or {}
    model = row(spec, "model") or {}
    owner: dict[str, str] = {}
    if model.get("requester"):
        owner["team"] = str(model["requester"])
    if endpoint.get("owner"):
        owner["contact"] = str(endpoint["owner"])
    groups: list[dict[str, Any]] = [
        {"selector": {"matchLabels": {DEPLOYMENT_LABEL: name}}, "weight": 1, "role": "Primary"}]
    if overflow is not None:
        labels = {str(k): str(v) for k, v in
                  mapping(mapping(overflow.get("metadata")).get("labels")).items()}
        if labels:
            groups.append({"selector": {"matchLabels": dict(sorted(labels.items()))},
                           "weight": 1, "role": "Fallback"})
    ms_spec: dict[str, Any] = {"endpoints": groups}
    if owner:
        ms_spec["owner"] = owner
    boundary = boundary_of(ticket)
    if boundary:
        ms_spec["dataBoundary"] = {"selector": boundary}
    out.service = {"apiVersion": API_VERSION, "kind": MODEL_SERVICE,
                   "metadata": {"name": service_name(ticket), "namespace": namespace},
                   "spec": ms_spec}
    return out
