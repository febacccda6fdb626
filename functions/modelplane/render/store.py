"""The local control plane's object store: what an API server would hold, in memory."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator, Mapping
from typing import Any

Obj = dict[str, Any]
Key = tuple[str, str, str, str]  # (group, kind, namespace, name)


def group_of(api_version: str) -> str:
    return api_version.split("/", 1)[0] if "/" in api_version else ""


def key_of(obj: Mapping[str, Any]) -> Key:
    meta = obj.get("metadata") or {}
    return (
        group_of(str(obj.get("apiVersion", ""))),
        str(obj.get("kind", "")),
        str(meta.get("namespace") or ""),
        str(meta.get("name") or ""),
    )


def describe(key: Key) -> str:
    group, kind, ns, name = key
    kind_ref = f"{kind}.{group}" if group else kind
    return f"{kind_ref} {ns + '/' if ns else ''}{name}"


def canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


class Store:
    """Objects keyed by group, kind, namespace and name (versions are not distinguished)."""

    def __init__(self) -> None:
        self._objs: dict[Key, Obj] = {}

    def __len__(self) -> int:
        return len(self._objs)

    def __contains__(self, key: Key) -> bool:
        return key in self._objs

    def get(self, key: Key) -> Obj | None:
        return self._objs.get(key)

    def put(self, obj: Obj) -> bool:
        """Store a copy of ``obj``; True when that changed anything."""
        key = key_of(obj)
        old = self._objs.get(key)
        if old is not None and canonical(old) == canonical(obj):
            return False
        self._objs[key] = copy.deepcopy(obj)
        return True

    def copy(self) -> Store:
        """A snapshot: later writes to either store do not show in the other."""
        out = Store()
        out._objs = copy.deepcopy(self._objs)
        return out

    def delete(self, key: Key) -> bool:
        return self._objs.pop(key, None) is not None

    def all_keys(self) -> list[Key]:
        return sorted(self._objs)

    def items(self) -> Iterator[tuple[Key, Obj]]:
        for k in sorted(self._objs):
            yield k, self._objs[k]

    def select(
        self,
        api_version: str,
        kind: str,
        *,
        name: str | None = None,
        labels: Mapping[str, str] | None = None,
        namespace: str | None = None,
    ) -> list[Obj]:
        """Objects a Crossplane ResourceSelector would return, sorted by namespace and name."""
        group = group_of(api_version)
        out: list[Obj] = []
        for (g, k, ns, n), obj in self.items():
            if g != group or k != kind:
                continue
            if namespace is not None and ns != namespace:
                continue
            if name is not None and n != name:
                continue
            if labels:
                have = (obj.get("metadata") or {}).get("labels") or {}
                if any(have.get(lk) != lv for lk, lv in labels.items()):
                    continue
            out.append(copy.deepcopy(obj))
        return out

    def owned_by(self, uid: str) -> list[Obj]:
        """Objects whose controller owner reference points at ``uid``."""
        out = []
        for _, obj in self.items():
            for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
                if ref.get("uid") == uid and ref.get("controller"):
                    out.append(obj)
        return out

    def snapshot(self) -> str:
        return canonical([obj for _, obj in self.items()])
