"""Offline admission for the Modelplane API (`modelplane validate`).

``admit`` applies an XRD's structural schema, defaults and CEL rules to one object, as the API
server does on create; ``validate_command`` runs it over files and directories. The render
engine admits every manifest it loads through the same code.
"""

from __future__ import annotations

from modelplane.validate.admission import FieldError, admit
from modelplane.validate.command import validate_command, validate_paths
from modelplane.validate.registry import Registry, default_registry, package_root

__all__ = [
    "FieldError",
    "Registry",
    "admit",
    "default_registry",
    "package_root",
    "validate_command",
    "validate_paths",
]
