"""``modelplane cel eval [--device FILE] EXPR``: try a selector against one device.

The expression is evaluated in the device-selector environment (same functions, same cost budget)
but any result type is printed, so quantity and semver helpers can be explored too; a real selector
must still produce a bool (``modelplane.cel.check`` reports that). Output is one JSON object on
stdout: ``{"result": <value>}`` with exit code 0, or ``{"error": "<message>"}`` with exit code 1.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import yaml

from . import evaluate
from .quantity import Quantity
from .runtime import UInt
from .semver import Semver

__all__ = ["eval_command", "to_json"]


def to_json(value: Any) -> Any:
    """A JSON-safe rendering of a CEL value (quantities and versions as strings)."""
    if isinstance(value, (Quantity, Semver)):
        return str(value)
    if isinstance(value, UInt):
        return int(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="backslashreplace")
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return str(value)
    if isinstance(value, list):
        return [to_json(v) for v in value]
    if isinstance(value, dict):
        return {str(to_json(k)).lower() if isinstance(k, bool) else str(to_json(k)): to_json(v)
                for k, v in value.items()}
    return value


def _load_device(path: str) -> tuple[dict[str, Any] | None, str | None]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        return None, f"--device {path}: cannot read: {exc.strerror or exc}"
    try:
        data = yaml.safe_load(text)  # YAML is a superset of JSON
    except yaml.YAMLError as exc:
        return None, f"--device {path}: not valid YAML or JSON: {exc}"
    if not isinstance(data, dict):
        return None, f"--device {path}: expected one device object, got {type(data).__name__}"
    return data, None


def _emit(payload: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(payload, sort_keys=True) + "\n")


def eval_command(expr: str, device_file: str | None) -> int:
    """Evaluate ``expr`` against the device in ``device_file`` (or an empty device)."""
    device: dict[str, Any] = {"driver": ""}
    if device_file is not None:
        loaded, problem = _load_device(device_file)
        if problem is not None or loaded is None:
            _emit({"error": problem or "no device"})
            return 1
        device = loaded
    out = evaluate(expr, device, require_bool=False)
    if out.error is not None:
        _emit({"error": out.error})
        return 1
    _emit({"result": to_json(out.value)})
    return 0
