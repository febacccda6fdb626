"""Turn an InferenceClass device entry into the CEL ``device`` variable, and key it for the memo.

Entry shape (the DRA ResourceSlice spelling)::

    {"name": "gpu", "driver": "gpu.nvidia.com",
     "attributes": {"model": {"string": "L4"}, "cc": {"version": "8.9.0"}},
     "capacity": {"memory": {"value": "23034Mi"}},
     "allowMultipleAllocations": false}

Attribute and capacity names are ``id`` (filed under the driver's domain) or ``domain/id``.
Every attribute value carries exactly one of ``string|int|bool|version``; versions are strict
semver and capacities strict Kubernetes quantities, as the API server validates them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

from .quantity import QuantityError, parse_quantity
from .runtime import INT64_MAX, INT64_MIN, DeviceValue, DomainMap
from .semver import SemverError, parse_semver

__all__ = ["DeviceError", "device_key", "to_device"]

_VALUE_KINDS: Final = ("string", "int", "bool", "version")


class DeviceError(ValueError):
    """The device entry is malformed; the message names the field and the value."""


def device_key(device: Mapping[str, Any]) -> str:
    """Canonical JSON of the entry without its ``name``: devices of one shape share a key."""
    shape = {k: v for k, v in device.items() if k != "name"}
    try:
        return json.dumps(shape, sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError):
        return repr(sorted(shape.items(), key=lambda kv: str(kv[0])))


def _split_name(qualified: str, driver: str, where: str) -> tuple[str, str]:
    if not isinstance(qualified, str) or not qualified:
        raise DeviceError(f"{where}: invalid name {qualified!r}")
    domain, sep, ident = qualified.partition("/")
    if not sep:
        return driver, qualified
    if not domain or not ident or "/" in ident:
        raise DeviceError(f"{where}: invalid qualified name {qualified!r}")
    return domain, ident


def _attribute_value(name: str, raw: Any) -> Any:
    where = f"attributes[{name!r}]"
    if not isinstance(raw, Mapping):
        raise DeviceError(f"{where}: expected an object with one of {list(_VALUE_KINDS)}, "
                          f"got {raw!r}")
    kinds = [k for k in raw if k in _VALUE_KINDS]
    extra = [k for k in raw if k not in _VALUE_KINDS]
    if len(kinds) != 1 or extra:
        raise DeviceError(f"{where}: must carry exactly one of {list(_VALUE_KINDS)}, "
                          f"got keys {sorted(map(str, raw))}")
    kind = kinds[0]
    value = raw[kind]
    if kind == "string":
        if not isinstance(value, str):
            raise DeviceError(f"{where}.string: expected a string, got {value!r}")
        return value
    if kind == "bool":
        if not isinstance(value, bool):
            raise DeviceError(f"{where}.bool: expected a boolean, got {value!r}")
        return value
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int) or not (
                INT64_MIN <= value <= INT64_MAX):
            raise DeviceError(f"{where}.int: expected a 64-bit integer, got {value!r}")
        return value
    if not isinstance(value, str):
        raise DeviceError(f"{where}.version: expected a semver string, got {value!r}")
    try:
        return parse_semver(value)
    except SemverError as exc:
        raise DeviceError(f"{where}.version: invalid semantic version {value!r}: {exc}") from None


def to_device(device: Mapping[str, Any]) -> DeviceValue:
    """Build the ``device`` variable; raises DeviceError naming the offending field."""
    if not isinstance(device, Mapping):
        raise DeviceError(f"device: expected an object, got {device!r}")
    driver = device.get("driver", "")
    if driver is None:
        driver = ""
    if not isinstance(driver, str):
        raise DeviceError(f"driver: expected a string, got {driver!r}")
    multi = device.get("allowMultipleAllocations", False)
    if multi is None:
        multi = False
    if not isinstance(multi, bool):
        raise DeviceError(f"allowMultipleAllocations: expected a boolean, got {multi!r}")

    attributes = DomainMap()
    raw_attrs = device.get("attributes") or {}
    if not isinstance(raw_attrs, Mapping):
        raise DeviceError(f"attributes: expected an object, got {raw_attrs!r}")
    for name in sorted(raw_attrs, key=str):
        domain, ident = _split_name(name, driver, f"attributes[{name!r}]")
        attributes.setdefault(domain, {})[ident] = _attribute_value(name, raw_attrs[name])

    capacity = DomainMap()
    raw_cap = device.get("capacity") or {}
    if not isinstance(raw_cap, Mapping):
        raise DeviceError(f"capacity: expected an object, got {raw_cap!r}")
    for name in sorted(raw_cap, key=str):
        domain, ident = _split_name(name, driver, f"capacity[{name!r}]")
        entry = raw_cap[name]
        value = entry.get("value") if isinstance(entry, Mapping) else None
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)  # Quantity's JSON form also accepts a bare number
        if not isinstance(value, str):
            raise DeviceError(f"capacity[{name!r}].value: expected a quantity string, "
                              f"got {value!r}")
        try:
            capacity.setdefault(domain, {})[ident] = parse_quantity(value)
        except QuantityError as exc:
            raise DeviceError(f"capacity[{name!r}].value: invalid quantity {value!r}: "
                              f"{exc}") from None
    return DeviceValue(driver, attributes, capacity, multi)
