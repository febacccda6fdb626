"""Tolerant field access for objects that arrive from outside (XRs, required resources).

Admission guards our own XRs, but a step still reads objects whose shape it does not control
(another kind's status, a resource edited around the API server, fuzzed input). These helpers
turn a wrongly typed field into an empty value, so a step reports the problem as a condition
instead of crashing.
"""

from __future__ import annotations

import copy
from typing import Any


def mapping(value: Any) -> dict[str, Any]:
    """``value`` when it is an object, else an empty one."""
    return value if isinstance(value, dict) else {}


def sequence(value: Any) -> list[Any]:
    """``value`` when it is a list, else an empty one."""
    return value if isinstance(value, list) else []


def path(obj: Any, *keys: str) -> dict[str, Any]:
    """The object at ``obj.keys[0].keys[1]...``, or an empty one if any step is not an object."""
    cur = mapping(obj)
    for key in keys:
        cur = mapping(cur.get(key))
    return cur


def coalesced(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``over`` merged onto ``base`` as Helm coalesces chart values: maps merge key by key,
    anything else (lists included) replaces; neither input is changed."""
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = coalesced(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out
