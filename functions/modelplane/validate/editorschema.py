"""JSON Schemas for editors, generated from the XRDs (``make schemas`` writes ``schemas/``).

An editor with the YAML language server (VS Code's YAML extension, Neovim's yamlls, JetBrains)
completes fields, shows their descriptions and defaults, and flags typos while an ML or platform
engineer writes a manifest, long before ``modelplane validate`` or the API server sees it.

The schemas are the XRDs' structural OpenAPI v3 schemas, with the fields Crossplane adds to
every XR, turned into JSON Schema draft-07 (the draft the YAML language server supports fully):

- ``x-kubernetes-preserve-unknown-fields`` keeps an object open; every other object with
  ``properties`` is closed (``additionalProperties: false``), because the API server rejects
  unknown fields under kubectl's default strict field validation.
- ``x-kubernetes-int-or-string`` becomes ``integer | string``; ``nullable`` adds ``null``.
- The other ``x-kubernetes-*`` keys (list types, CEL ``x-kubernetes-validations``) have no JSON
  Schema equivalent and are dropped: an editor cannot run CEL, so what they forbid is left to
  ``modelplane validate``, which applies the same rules as the API server.

``schemas/modelplane.json`` dispatches on ``apiVersion``/``kind`` to one schema per kind, so a
single mapping covers every manifest. tests/api fails when the committed files are stale.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from modelplane.common.openapi import to_jsonschema
from modelplane.validate.registry import Registry, default_registry

Schema = dict[str, Any]

DRAFT = "http://json-schema.org/draft-07/schema#"
INDEX = "modelplane.json"

_METADATA: Schema = {
    "type": "object",
    "description": "Standard object metadata (name, namespace, labels, annotations, ...).",
    "properties": {
        "name": {"type": "string", "maxLength": 253},
        "namespace": {"type": "string", "maxLength": 63},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
    },
}


def convert(node: Schema) -> Schema:
    """One structural OpenAPI v3 schema node as JSON Schema, descriptions and defaults kept."""
    out: Schema = to_jsonschema(node, annotated=True)
    return out


def file_name(kind: str, version: str) -> str:
    return f"{kind.lower()}-{version}.json"


def kind_schema(registry: Registry, api_version: str, kind: str) -> Schema:
    """The schema of one kind: its XRD schema plus apiVersion, kind and metadata."""
    source = registry.schema_for(api_version, kind) or {}
    body = convert(source)
    props = body.setdefault("properties", {})
    props["apiVersion"] = {"const": api_version, "description": "The API group and version."}
    props["kind"] = {"const": kind}
    props["metadata"] = _METADATA
    body["required"] = sorted({"apiVersion", "kind", "metadata", *body.get("required", [])})
    # What Crossplane and the function write (status) is not the author's: leave it open.
    body.pop("additionalProperties", None)
    if isinstance(props.get("status"), dict):
        props["status"].pop("additionalProperties", None)
    scope = registry.scope(api_version, kind)
    return {"$schema": DRAFT, "title": f"{kind} ({api_version}, {scope})", **body}


def index_schema(registry: Registry) -> Schema:
    """One schema for every Modelplane manifest: picks the kind's schema by apiVersion/kind and
    leaves documents of other kinds alone (a file may mix Modelplane and other resources)."""
    branches = []
    for api_version, kind in registry.kinds():
        branches.append({
            "if": {"properties": {"apiVersion": {"const": api_version}, "kind": {"const": kind}},
                   "required": ["apiVersion", "kind"]},
            "then": {"$ref": file_name(kind, api_version.split("/")[-1])}})
    # No $id: an editor resolves the file-relative $refs from wherever the files are checked out.
    return {"$schema": DRAFT, "title": "Modelplane manifests (every modelplane.ai kind)",
            "allOf": branches}


def generate(registry: Registry | None = None) -> dict[str, str]:
    """File name → content of every schema file, deterministic for the same XRDs."""
    registry = registry or default_registry()
    files = {INDEX: index_schema(registry)}
    for api_version, kind in registry.kinds():
        files[file_name(kind, api_version.split("/")[-1])] = kind_schema(registry, api_version,
                                                                         kind)
    return {name: json.dumps(body, indent=2, sort_keys=True) + "\n"
            for name, body in sorted(files.items())}


def write(directory: Path) -> list[Path]:
    """Write every schema file into ``directory`` and remove stale ones; the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    files = generate()
    for old in directory.glob("*.json"):
        if old.name not in files:
            old.unlink()
    out = []
    for name, text in files.items():
        path = directory / name
        path.write_text(text, encoding="utf-8")
        out.append(path)
    return out


def main(argv: list[str]) -> int:
    target = Path(argv[0]) if argv else Path("schemas")
    for path in write(target):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
