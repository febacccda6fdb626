"""Offline admission: what the API server does to a Modelplane object on create.

The order follows the apiextensions API server: unknown fields are pruned (and reported, as
``kubectl apply`` does with its default strict field validation), defaults are applied, the
structural schema is checked, and then the ``x-kubernetes-validations`` CEL rules run on every
schema node whose subtree passed the schema checks.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import celpy
from celpy import celtypes

from modelplane.contract.podpolicy import MAX_FREE_FORM_DEPTH, too_deep
from modelplane.validate.registry import Registry

Schema = dict[str, Any]


@dataclass(frozen=True)
class FieldError:
    """One rejected field: a dotted path such as ``spec.engines[0].members[0].role``."""

    path: str
    message: str


DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
QUALIFIED = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
)

# A raw regular expression tells a user little; for the patterns the API uses, say what the
# value must look like instead.
_PATTERN_HINTS: dict[str, str] = {
    DNS_LABEL: "a DNS label: lowercase letters, digits and '-', starting and ending with a "
    "letter or digit",
    DNS_SUBDOMAIN: "a DNS subdomain: lowercase DNS labels joined by '.'",
    QUALIFIED: "a label key: an optional DNS-subdomain prefix and '/', then letters, digits, "
    "'-', '_' or '.'",
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))"
    r"(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$":
    'a Kubernetes quantity such as "20Gi", "500M" or "1.5"',
    r"^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$": 'a duration such as "90s", "5m" or "1h30m"',
    r"^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)"
    r"(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$": 'a semantic version such as "12.4.0"',
    r"^v?[0-9]+\.[0-9]+\.[0-9]+([-+][0-9A-Za-z.+-]+)?$": 'a chart version such as "41.6.0"',
    r"^[0-9]{1,6}(\.[0-9]{1,6})?$": 'a decimal number such as "0.71"',
    r"^[0-9]+\.[0-9]+(\.[0-9]+)?(-[0-9A-Za-z.-]+)?$": 'a Kubernetes version such as "1.34"',
    r"^https?://[^\s/?#]+([/?#]\S*)?$": "an http:// or https:// URL",
    r"^[a-z][-a-z0-9]{4,28}[a-z0-9]$": "a Google Cloud project ID: 6 to 30 lowercase letters, "
    "digits or '-', starting with a letter",
}

_TYPE_NAMES = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "a boolean (true or false)",
    "object": "a mapping",
    "array": "a list",
}


def admit(obj: dict[str, Any], registry: Registry) -> tuple[dict[str, Any], list[FieldError]]:
    """Admit ``obj`` as the API server would on create; return the defaulted copy and errors.

    ``status`` is carried over untouched and not validated: XRs have a status subresource, so
    the API server ignores status on create and only the function writes it.
    """
    if not isinstance(obj, dict):
        return obj, [FieldError("", "a manifest must be a YAML mapping")]
    api_version = str(obj.get("apiVersion", ""))
    kind = str(obj.get("kind", ""))
    schema = registry.schema_for(api_version, kind)
    if schema is None:
        known = ", ".join(f"{a} {k}" for a, k in registry.kinds())
        field = "apiVersion" if any(k == kind for _, k in registry.kinds()) else "kind"
        return copy.deepcopy(obj), [
            FieldError(field, f"no Modelplane kind {kind!r} in {api_version!r}; known: {known}")
        ]
    errors: list[FieldError] = []
    out = copy.deepcopy(obj)
    _check_metadata(out.get("metadata"), registry.scope(api_version, kind), errors)

    status = out.pop("status", None)
    body_schema = copy.deepcopy(schema)
    body_schema.setdefault("properties", {}).pop("status", None)
    body = {k: v for k, v in out.items() if k not in ("apiVersion", "kind", "metadata")}
    body = _prune(body, body_schema, "", errors)
    _apply_defaults(body, body_schema)
    _validate(body, body_schema, "", errors)

    result = {k: out[k] for k in ("apiVersion", "kind", "metadata") if k in out}
    result.update(body)
    if status is not None:
        result["status"] = status
    return result, sorted(errors, key=lambda e: (e.path, e.message))


# -- metadata --------------------------------------------------------------------------------


def _check_metadata(meta: Any, scope: str, errors: list[FieldError]) -> None:
    if not isinstance(meta, dict):
        errors.append(FieldError("metadata", "metadata is required and must be a mapping"))
        return
    name = meta.get("name")
    if name is None and not meta.get("generateName"):
        errors.append(FieldError("metadata.name", "name is required"))
    elif name is not None and not _matches(str(name), DNS_SUBDOMAIN, 253):
        errors.append(FieldError("metadata.name", f"invalid value {_show(name)}: must be "
                                 f"{_PATTERN_HINTS[DNS_SUBDOMAIN]}, at most 253 characters"))
    namespace = meta.get("namespace")
    if namespace is not None:
        if scope == "Cluster":
            errors.append(FieldError("metadata.namespace", f"this kind is cluster-scoped; "
                                     f"remove namespace {_show(namespace)}"))
        elif not _matches(str(namespace), DNS_LABEL, 63):
            errors.append(FieldError("metadata.namespace", f"invalid value {_show(namespace)}: "
                                     f"must be {_PATTERN_HINTS[DNS_LABEL]}"))
    for field in ("labels", "annotations"):
        values = meta.get(field)
        if values is None:
            continue
        if not isinstance(values, dict):
            errors.append(FieldError(f"metadata.{field}", "must be a mapping of strings"))
            continue
        for key in sorted(values, key=str):
            if not _matches(str(key), QUALIFIED, 316):
                errors.append(FieldError(f"metadata.{field}[{key}]", f"invalid key {key!r}: "
                                         f"must be {_PATTERN_HINTS[QUALIFIED]}"))
            value = values[key]
            if not isinstance(value, str):
                errors.append(FieldError(f"metadata.{field}[{key}]", f"value {value!r} must "
                                         f"be a string (quote it in YAML)"))
            elif field == "labels" and value and not _matches(
                value, r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$", 63
            ):
                errors.append(FieldError(f"metadata.labels[{key}]", f"invalid label value "
                                         f"{value!r}: at most 63 letters, digits, '-', '_' or "
                                         "'.', starting and ending with a letter or digit"))


def _matches(value: str, pattern: str, max_len: int) -> bool:
    return len(value) <= max_len and re.search(pattern, value) is not None


# -- pruning ---------------------------------------------------------------------------------


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _preserves(schema: Schema) -> bool:
    return bool(schema.get("x-kubernetes-preserve-unknown-fields"))


def _prune(value: Any, schema: Schema, path: str, errors: list[FieldError],
           inside_free: bool = False) -> Any:
    """Drop fields the schema does not know, reporting each (strict field validation).

    A free-form subtree (``x-kubernetes-preserve-unknown-fields``, with or without declared
    properties) is kept, but only as deep as every request that carries it can decode; the
    API server cannot bound this (CEL does not see preserved unknown fields), so the steps
    check it again at run time.
    """
    if isinstance(value, dict | list) and _preserves(schema) and not inside_free:
        deep = too_deep(value, path, MAX_FREE_FORM_DEPTH)
        if deep is not None:
            errors.append(FieldError(deep, f"nests deeper than {MAX_FREE_FORM_DEPTH} levels of "
                                     f"maps and lists below {path}; Modelplane cannot carry it"))
    free = inside_free or _preserves(schema)
    if isinstance(value, dict) and schema.get("type", "object") == "object":
        props = schema.get("properties")
        addl = schema.get("additionalProperties")
        if props is None and not isinstance(addl, dict):
            return value  # free-form (preserve-unknown) or untyped: kept verbatim
        out: dict[str, Any] = {}
        for key, child in value.items():
            if props is not None and key in props:
                out[key] = _prune(child, props[key], _join(path, str(key)), errors, free)
            elif isinstance(addl, dict):
                out[key] = _prune(child, addl, f"{path}[{key}]", errors, free)
            elif _preserves(schema):
                out[key] = child
            else:
                known = ", ".join(sorted(props or {}))
                errors.append(FieldError(_join(path, str(key)),
                                         f"unknown field {key!r}; known fields here: {known}"))
        return out
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [_prune(v, schema["items"], f"{path}[{i}]", errors, free)
                for i, v in enumerate(value)]
    return value


# -- defaulting ------------------------------------------------------------------------------


def _apply_defaults(value: Any, schema: Schema) -> None:
    """Fill absent properties that have a default, then descend (into new defaults too)."""
    if isinstance(value, dict):
        props = schema.get("properties") or {}
        for key, child_schema in props.items():
            if key not in value and "default" in child_schema:
                value[key] = copy.deepcopy(child_schema["default"])
        for key, child in value.items():
            if key in props:
                _apply_defaults(child, props[key])
            elif isinstance(schema.get("additionalProperties"), dict):
                _apply_defaults(child, schema["additionalProperties"])
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for item in value:
            _apply_defaults(item, schema["items"])


# -- structural validation -------------------------------------------------------------------


def _show(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= 80 else text[:77] + "..."


def _type_ok(value: Any, schema: Schema) -> bool:
    if schema.get("x-kubernetes-int-or-string"):
        return isinstance(value, (int, str)) and not isinstance(value, bool)
    wanted = schema.get("type")
    if wanted is None:
        return True
    if wanted == "string":
        return isinstance(value, str)
    if wanted == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if wanted == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if wanted == "boolean":
        return isinstance(value, bool)
    if wanted == "object":
        return isinstance(value, dict)
    if wanted == "array":
        return isinstance(value, list)
    return True


def _validate(value: Any, schema: Schema, path: str, errors: list[FieldError]) -> bool:
    """Check one node and its subtree; run its CEL rules when the subtree is sound."""
    before = len(errors)
    if value is None:
        if not schema.get("nullable"):
            wanted = _TYPE_NAMES.get(str(schema.get("type", "")), "a value")
            errors.append(FieldError(path, f"must be {wanted}, not null"))
        return len(errors) == before
    if not _type_ok(value, schema):
        wanted = _TYPE_NAMES.get(str(schema.get("type")), str(schema.get("type")))
        if schema.get("x-kubernetes-int-or-string"):
            wanted = "an integer or a string"
        errors.append(FieldError(path, f"invalid value {_show(value)}: must be {wanted}"))
        return False
    if "enum" in schema and value not in schema["enum"]:
        allowed = ", ".join(json.dumps(v) for v in schema["enum"])
        errors.append(FieldError(path, f"unsupported value {_show(value)}: must be one of "
                                       f"{allowed}"))
    if isinstance(value, str):
        _check_string(value, schema, path, errors)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        _check_number(value, schema, path, errors)
    elif isinstance(value, list):
        _check_list(value, schema, path, errors)
    elif isinstance(value, dict):
        _check_object(value, schema, path, errors)
    if len(errors) == before:
        _run_rules(value, schema, path, errors)
    return len(errors) == before


def _check_string(value: str, schema: Schema, path: str, errors: list[FieldError]) -> None:
    if "maxLength" in schema and len(value) > schema["maxLength"]:
        errors.append(FieldError(path, f"too long: {len(value)} characters, at most "
                                       f"{schema['maxLength']} allowed"))
    if "minLength" in schema and len(value) < schema["minLength"]:
        errors.append(FieldError(path, f"too short: must have at least {schema['minLength']} "
                                       "characters"))
    pattern = schema.get("pattern")
    if pattern and re.search(pattern, value) is None:
        hint = _PATTERN_HINTS.get(pattern)
        what = f"must be {hint}" if hint else f"must match the pattern {pattern}"
        errors.append(FieldError(path, f"invalid value {_show(value)}: {what}"))


def _check_number(value: float, schema: Schema, path: str, errors: list[FieldError]) -> None:
    if "minimum" in schema and value < schema["minimum"]:
        errors.append(FieldError(path, f"invalid value {value}: must be greater than or equal "
                                       f"to {schema['minimum']}"))
    if "maximum" in schema and value > schema["maximum"]:
        errors.append(FieldError(path, f"invalid value {value}: must be less than or equal to "
                                       f"{schema['maximum']}"))
    if schema.get("format") == "int32" and not -(2**31) <= value < 2**31:
        errors.append(FieldError(path, f"invalid value {value}: out of range for int32"))


def _check_list(value: list[Any], schema: Schema, path: str, errors: list[FieldError]) -> None:
    if "maxItems" in schema and len(value) > schema["maxItems"]:
        errors.append(FieldError(path, f"too many items: {len(value)}, at most "
                                       f"{schema['maxItems']} allowed"))
    if "minItems" in schema and len(value) < schema["minItems"]:
        errors.append(FieldError(path, f"needs at least {schema['minItems']} item(s), has "
                                       f"{len(value)}"))
    items = schema.get("items")
    if isinstance(items, dict):
        for i, item in enumerate(value):
            _validate(item, items, f"{path}[{i}]", errors)
    list_type = schema.get("x-kubernetes-list-type")
    if list_type == "map":
        keys = schema.get("x-kubernetes-list-map-keys") or []
        seen: dict[tuple[str, ...], int] = {}
        for i, item in enumerate(value):
            if not isinstance(item, dict):
                continue
            ident = tuple(json.dumps(item.get(k), sort_keys=True) for k in keys)
            if ident in seen:
                shown = ", ".join(f"{k}={_show(item.get(k))}" for k in keys)
                errors.append(FieldError(f"{path}[{i}]", f"duplicate entry: {shown} is already "
                                                         f"used by {path}[{seen[ident]}]"))
            else:
                seen[ident] = i
    elif list_type == "set":
        seen_values: dict[str, int] = {}
        for i, item in enumerate(value):
            ident_s = json.dumps(item, sort_keys=True)
            if ident_s in seen_values:
                errors.append(FieldError(f"{path}[{i}]", f"duplicate value {_show(item)}"))
            else:
                seen_values[ident_s] = i


def _check_object(value: dict[str, Any], schema: Schema, path: str,
                  errors: list[FieldError]) -> None:
    for key in schema.get("required") or []:
        if key not in value:
            errors.append(FieldError(_join(path, key), "required field is missing"))
    if "maxProperties" in schema and len(value) > schema["maxProperties"]:
        errors.append(FieldError(path, f"too many entries: {len(value)}, at most "
                                       f"{schema['maxProperties']} allowed"))
    if "minProperties" in schema and len(value) < schema["minProperties"]:
        errors.append(FieldError(path, f"needs at least {schema['minProperties']} entries"))
    props = schema.get("properties") or {}
    addl = schema.get("additionalProperties")
    for key in value:
        if key in props:
            _validate(value[key], props[key], _join(path, key), errors)
        elif isinstance(addl, dict):
            _validate(value[key], addl, f"{path}[{key}]", errors)


# -- CEL rules -------------------------------------------------------------------------------
#
# The rules are evaluated with cel-python, binding `self` to the node. Where it differs from
# the API server's CEL:
# - cel-python is dynamically typed: the API server type-checks each rule against the schema
#   when the XRD is applied and estimates its cost; neither happens here (tests/api checks the
#   bounds that the cost estimate needs).
# - Regular expressions in `matches()` use Python's `re`, not RE2 (our rules use none).
# - The Kubernetes CEL libraries (quantity, semver, lists, format, url, ...) are absent; our
#   rules use only standard CEL macros and string functions.
# - Transition rules (those reading `oldSelf`) only run on update; admission here is a create,
#   so they are skipped, as the API server does on create.
# - `messageExpression` is evaluated like `rule`; when it fails or yields no string, the static
#   `message` (or the rule text) is reported, as the API server does.

_ENV = celpy.Environment()
_OLD_SELF = re.compile(r"\boldSelf\b")


@lru_cache(maxsize=1024)
def _program(rule: str) -> Callable[[dict[str, Any]], Any] | None:
    try:
        program = _ENV.program(_ENV.compile(rule))
    except Exception:  # an uncompilable rule is reported where it is evaluated
        return None
    evaluate: Callable[[dict[str, Any]], Any] = program.evaluate
    return evaluate


def compile_error(rule: str) -> str | None:
    """Why cel-python cannot compile ``rule``, or None when it compiles."""
    try:
        _ENV.compile(rule)
    except Exception as exc:
        return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return None


def _run_rules(value: Any, schema: Schema, path: str, errors: list[FieldError]) -> None:
    rules = schema.get("x-kubernetes-validations") or []
    if not rules:
        return
    bound: Any = None
    for rule in rules:
        text = str(rule.get("rule", ""))
        if _OLD_SELF.search(text):
            continue
        where = path + str(rule.get("fieldPath", "")) if rule.get("fieldPath") else path
        evaluate = _program(text)
        if evaluate is None:
            errors.append(FieldError(where, f"rule {text!r} does not compile"))
            continue
        if bound is None:
            bound = celpy.json_to_cel(value)
        try:
            result = evaluate({"self": bound})
        except Exception as exc:
            errors.append(FieldError(where, f"rule {text!r} could not be evaluated: {exc}"))
            continue
        # cel-python's BoolType is an int subclass, so a non-bool result (e.g. 1) must be
        # told apart: the API server rejects rules that do not return bool.
        if not (isinstance(result, celtypes.BoolType) and bool(result)):
            message = _message(rule, bound) or rule.get("message") or f"failed rule: {text}"
            errors.append(FieldError(where, str(message)))


def _message(rule: dict[str, Any], bound: Any) -> str | None:
    """A rule's messageExpression evaluated (it names the offending value), as the API server
    does; like there, an expression that fails or is not a string falls back to message."""
    expression = rule.get("messageExpression")
    if not expression:
        return None
    evaluate = _program(str(expression))
    try:
        result = evaluate({"self": bound}) if evaluate is not None else None
    except Exception:
        return None
    return str(result) if isinstance(result, str) and result.strip() else None
