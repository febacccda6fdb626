"""Reading status conditions of observed objects."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def get(obj: Mapping[str, Any] | None, type_: str) -> dict[str, Any] | None:
    """The condition of the given type on an object's status, or None."""
    if not obj:
        return None
    for c in (obj.get("status") or {}).get("conditions") or []:
        if isinstance(c, dict) and c.get("type") == type_:
            return c
    return None


def is_true(obj: Mapping[str, Any] | None, type_: str = "Ready") -> bool:
    c = get(obj, type_)
    return bool(c and c.get("status") == "True")


def some(names: list[str], limit: int = 5) -> str:
    """The first ``limit`` names and how many more, for a condition message that stays short."""
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")
