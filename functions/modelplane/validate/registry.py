"""The loaded XRDs: which kinds Modelplane serves and the schema of each."""

from __future__ import annotations

import copy
import importlib.resources
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import yaml

XRD_KIND = "CompositeResourceDefinition"
XRD_GROUP = "apiextensions.crossplane.io"

# Crossplane adds these to every v2 XR schema when it turns an XRD into a CRD; a manifest may
# set spec.crossplane (composition selection) even though our definitions never mention it.
_CROSSPLANE_SPEC = {
    "type": "object",
    "description": "Crossplane's own settings for the XR (composition selection, resource "
    "references); added by Crossplane to every composite resource.",
    "x-kubernetes-preserve-unknown-fields": True,
}
_CROSSPLANE_CONDITIONS = {
    "type": "array",
    "description": "Conditions of the resource, maintained by Crossplane and the function.",
    "items": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
}


def iter_yaml_documents(path: Path) -> Iterator[Any]:
    """Every YAML document of a file (raises yaml.YAMLError on a malformed file)."""
    with path.open(encoding="utf-8") as fh:
        yield from yaml.safe_load_all(fh)


def yaml_files(root: Path) -> list[Path]:
    """A file itself, or every .yaml/.yml file below a directory, in a stable order."""
    if root.is_file():
        return [root]
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix in (".yaml", ".yml"))


class Registry:
    """The XRDs Modelplane serves, indexed by (apiVersion, kind) for each served version."""

    def __init__(self, xrds: Sequence[dict[str, Any]]) -> None:
        self._xrds: dict[tuple[str, str], dict[str, Any]] = {}
        self._schemas: dict[tuple[str, str], dict[str, Any]] = {}
        for xrd in xrds:
            spec = xrd.get("spec") or {}
            kind = str((spec.get("names") or {}).get("kind", ""))
            for version in spec.get("versions") or []:
                if not version.get("served", True):
                    continue
                key = (f"{spec.get('group')}/{version.get('name')}", kind)
                self._xrds[key] = xrd
                schema = (version.get("schema") or {}).get("openAPIV3Schema") or {}
                self._schemas[key] = _with_crossplane_fields(schema)

    @staticmethod
    def load(dirs: Sequence[Path]) -> Registry:
        """Every CompositeResourceDefinition found in YAML files below the given paths."""
        found: list[dict[str, Any]] = []
        for root in dirs:
            for path in yaml_files(Path(root)):
                for doc in iter_yaml_documents(path):
                    if isinstance(doc, dict) and doc.get("kind") == XRD_KIND and str(
                        doc.get("apiVersion", "")
                    ).startswith(XRD_GROUP + "/"):
                        found.append(doc)
        found.sort(key=lambda d: str((d.get("metadata") or {}).get("name", "")))
        return Registry(found)

    def xrd_for(self, api_version: str, kind: str) -> dict[str, Any] | None:
        return self._xrds.get((api_version, kind))

    def schema_for(self, api_version: str, kind: str) -> dict[str, Any] | None:
        """The version's openAPIV3Schema plus the fields Crossplane adds to every XR."""
        return self._schemas.get((api_version, kind))

    def scope(self, api_version: str, kind: str) -> str:
        xrd = self.xrd_for(api_version, kind) or {}
        return str((xrd.get("spec") or {}).get("scope", "Namespaced"))

    def kinds(self) -> list[tuple[str, str]]:
        return sorted(self._xrds)

    def xrds(self) -> list[dict[str, Any]]:
        """The distinct XRDs, sorted by name."""
        unique = {str(x["metadata"]["name"]): x for x in self._xrds.values()}
        return [unique[k] for k in sorted(unique)]


def _with_crossplane_fields(schema: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(schema)
    props = out.setdefault("properties", {})
    spec = props.get("spec")
    if isinstance(spec, dict):
        spec.setdefault("properties", {}).setdefault("crossplane", _CROSSPLANE_SPEC)
    status = props.get("status")
    if isinstance(status, dict):
        status.setdefault("properties", {}).setdefault("conditions", _CROSSPLANE_CONDITIONS)
    return out


def package_root() -> Path:
    """The directory holding apis/ and compositions/: the repo root, or the installed copy."""
    repo = Path(__file__).resolve().parents[3]
    if (repo / "apis").is_dir():
        return repo
    return Path(str(importlib.resources.files("modelplane") / "_package"))


_DEFAULT: Registry | None = None


def default_registry() -> Registry:
    """The project's own XRDs (loaded once per process)."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = Registry.load([package_root() / "apis"])
    return _DEFAULT
