"""The ModelReplica spec as typed values; every problem names the field path and the value.

The XRD already rejects most bad input at admission; this reader guards again at run time so a
hand-edited or older object becomes a condition, never an exception.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from modelplane.placement.model import ResolvedDevice

ROLES = ("Standalone", "Leader", "Worker")
MODES = ("Unified", "PrefillDecode")
PHASES = ("Prefill", "Decode")


class SpecError(Exception):
    """A field of the ModelReplica spec that cannot be composed (path and reason)."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


@dataclass(frozen=True)
class Member:
    """One pod role of an engine, pinned to a node pool."""

    role: str
    pool: str
    nodes: int  # worker pods per group (Worker only; 0 otherwise)
    devices: tuple[ResolvedDevice, ...]
    template: dict[str, Any]
    path: str

    @property
    def serves(self) -> bool:
        """Whether the member's pods take requests (Standalone, or the Leader of a group)."""
        return self.role in ("Standalone", "Leader")


@dataclass(frozen=True)
class Engine:
    name: str
    phase: str | None
    copies: int
    members: tuple[Member, ...]
    path: str

    def member(self, role: str) -> Member | None:
        return next((m for m in self.members if m.role == role), None)

    @property
    def multi_node(self) -> bool:
        return self.member("Leader") is not None


@dataclass(frozen=True)
class Replica:
    name: str
    namespace: str
    deployment: str
    cluster: str
    mode: str
    cache: str | None
    tolerations: tuple[dict[str, Any], ...]
    engines: tuple[Engine, ...]


def _int(value: Any, path: str, default: int, lo: int, hi: int) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or int(value) != value:
        raise SpecError(path, f"must be an integer, got {value!r}")
    if not lo <= int(value) <= hi:
        raise SpecError(path, f"must be between {lo} and {hi}, got {int(value)}")
    return int(value)


def _str(value: Any, path: str) -> str:
    if not isinstance(value, str) or not value:
        raise SpecError(path, f"must be a non-empty string, got {value!r}")
    return value


def _device(raw: Any, path: str) -> ResolvedDevice | None:
    if not isinstance(raw, dict):
        raise SpecError(path, f"must be an object, got {raw!r}")
    name = _str(raw.get("name"), f"{path}.name")
    # A Synthetic device has no DeviceClass to claim through; it only shaped placement.
    if raw.get("claim") == "Synthetic" or not raw.get("deviceClassName"):
        return None
    sels: list[str] = []
    for i, s in enumerate(raw.get("selectors") or []):
        cel = s.get("cel") if isinstance(s, dict) else None
        sels.append(_str(cel, f"{path}.selectors[{i}].cel"))
    return ResolvedDevice(
        name=name,
        device_class_name=_str(raw.get("deviceClassName"), f"{path}.deviceClassName"),
        count=_int(raw.get("count"), f"{path}.count", 1, 1, 64),
        selectors=tuple(sels),
    )


def _member(raw: Any, path: str) -> Member:
    if not isinstance(raw, dict):
        raise SpecError(path, f"must be an object, got {raw!r}")
    role = raw.get("role")
    if role not in ROLES:
        raise SpecError(f"{path}.role", f"must be one of {', '.join(ROLES)}, got {role!r}")
    pool = _str(raw.get("pool"), f"{path}.pool")
    nodes = 0
    if role == "Worker":
        worker: dict[str, Any] = raw["worker"] if isinstance(raw.get("worker"), dict) else {}
        if worker.get("nodes") is None:
            raise SpecError(f"{path}.worker.nodes", "a Worker member needs worker.nodes")
        nodes = _int(worker.get("nodes"), f"{path}.worker.nodes", 1, 1, 64)
    devices: list[ResolvedDevice] = []
    raw_devices = raw.get("devices") or []
    if not isinstance(raw_devices, list):
        raise SpecError(f"{path}.devices", f"must be a list, got {raw_devices!r}")
    for i, d in enumerate(raw_devices):
        dev = _device(d, f"{path}.devices[{i}]")
        if dev is not None:
            devices.append(dev)
    template = raw.get("template")
    if not isinstance(template, dict) or not isinstance(template.get("spec"), dict):
        got = template.get("spec") if isinstance(template, dict) else template
        raise SpecError(f"{path}.template.spec", f"must be a PodSpec object, got {got!r}")
    containers = template["spec"].get("containers")
    if not isinstance(containers, list) or not containers or not all(
            isinstance(c, dict) and c.get("name") for c in containers):
        raise SpecError(f"{path}.template.spec.containers",
                        "needs at least one container, each with a name")
    return Member(role=str(role), pool=pool, nodes=nodes,
                  devices=tuple(sorted(devices, key=lambda d: d.name)),
                  template=template, path=path)


def _engine(raw: Any, path: str, mode: str) -> Engine:
    if not isinstance(raw, dict):
        raise SpecError(path, f"must be an object, got {raw!r}")
    name = _str(raw.get("name"), f"{path}.name")
    raw_members = raw.get("members") or []
    if not isinstance(raw_members, list):
        raise SpecError(f"{path}.members", f"must be a list, got {raw_members!r}")
    members = [_member(m, f"{path}.members[{i}]") for i, m in enumerate(raw_members)]
    roles = sorted(m.role for m in members)
    if roles not in (["Standalone"], ["Leader", "Worker"]):
        raise SpecError(f"{path}.members", "an engine has either one Standalone member, or one "
                        f"Leader and one Worker member, got roles {roles}")
    phase = raw.get("phase")
    if mode == "PrefillDecode" and phase not in PHASES:
        raise SpecError(f"{path}.phase", f"serving mode PrefillDecode needs phase Prefill or "
                        f"Decode, got {phase!r}")
    if mode != "PrefillDecode" and phase is not None:
        raise SpecError(f"{path}.phase", f"phase is only allowed with serving mode "
                        f"PrefillDecode, got {phase!r}")
    return Engine(name=name, phase=str(phase) if phase else None,
                  copies=_int(raw.get("copies"), f"{path}.copies", 1, 1, 64),
                  members=tuple(sorted(members, key=lambda m: ROLES.index(m.role))), path=path)


def parse(composite: dict[str, Any]) -> Replica:
    """Read a ModelReplica; raises SpecError naming the first field that cannot be composed."""
    meta = composite.get("metadata") or {}
    spec = composite.get("spec") or {}
    if not isinstance(spec, dict):
        raise SpecError("spec", f"must be an object, got {spec!r}")
    serving = spec.get("serving") or {}
    if not isinstance(serving, dict):
        raise SpecError("spec.serving", f"must be an object, got {serving!r}")
    mode = serving.get("mode") or "Unified"
    if mode not in MODES:
        raise SpecError("spec.serving.mode", f"must be one of {', '.join(MODES)}, got {mode!r}")
    raw_engines = spec.get("engines")
    if not isinstance(raw_engines, list) or not raw_engines:
        raise SpecError("spec.engines", f"needs at least one engine, got {raw_engines!r}")
    engines = [_engine(e, f"spec.engines[{i}]", mode) for i, e in enumerate(raw_engines)]
    names = [e.name for e in engines]
    if len(set(names)) != len(names):
        raise SpecError("spec.engines", f"engine names must be unique, got {names}")
    if mode == "PrefillDecode" and sorted(str(e.phase) for e in engines) != ["Decode", "Prefill"]:
        raise SpecError("spec.engines", "serving mode PrefillDecode needs exactly two engines, "
                        "one with phase Prefill and one with phase Decode, got phases "
                        f"{[e.phase for e in engines]}")
    cache_ref = spec.get("modelCacheRef") or {}
    if not isinstance(cache_ref, dict):
        raise SpecError("spec.modelCacheRef", f"must be an object, got {cache_ref!r}")
    cache = cache_ref.get("name")
    raw_tolerations = spec.get("tolerations") or []
    if not isinstance(raw_tolerations, list):
        raise SpecError("spec.tolerations", f"must be a list, got {raw_tolerations!r}")
    tolerations = tuple(t for t in raw_tolerations if isinstance(t, dict))
    return Replica(
        name=_str(meta.get("name"), "metadata.name"),
        namespace=_str(meta.get("namespace"), "metadata.namespace"),
        deployment=_str(spec.get("deployment"), "spec.deployment"),
        cluster=_str(spec.get("cluster"), "spec.cluster"),
        mode=str(mode),
        cache=str(cache) if cache else None,
        tolerations=tolerations,
        engines=tuple(engines),
    )
