"""`modelplane validate PATH...`: admission checks for manifests, before a commit.

Every document of a Modelplane kind is admitted as the API server would on create. Our own
package documents are checked too: each Composition's steps name known function steps, and when
both XRDs and Compositions are given, every XRD has a Composition for its kind.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import yaml

from modelplane.cel import selector_problems
from modelplane.common.fields import mapping, sequence
from modelplane.contract.api import GROUP, INPUT_API_VERSION
from modelplane.validate.admission import FieldError, admit, compile_error
from modelplane.validate.registry import (
    XRD_GROUP,
    XRD_KIND,
    Registry,
    default_registry,
    iter_yaml_documents,
    yaml_files,
)

FUNCTION_NAME = "function-modelplane"

def known_steps() -> dict[str, frozenset[str]]:
    """Step name -> the XR kinds it serves, from the function's own step registry."""
    from modelplane.server import load_steps
    from modelplane.step import STEPS

    load_steps()
    return {name: reg.kinds for name, reg in STEPS.items()}


@dataclass(frozen=True)
class Problem:
    """One reported line: where (file and document index) and what."""

    file: str
    doc: int
    subject: str
    error: FieldError

    def line(self) -> str:
        return f"{self.file}:{self.doc}: {self.subject}: {self.error.path}: {self.error.message}"


def _subject(doc: dict[str, Any]) -> str:
    meta = doc.get("metadata")
    name = meta.get("name") if isinstance(meta, dict) else None
    return f"{doc.get('kind', '?')}/{name or '?'}"


def _is_ours(doc: dict[str, Any]) -> bool:
    return str(doc.get("apiVersion", "")).split("/")[0] == GROUP


def _is_our_xrd(doc: dict[str, Any]) -> bool:
    return (
        doc.get("kind") == XRD_KIND
        and str(doc.get("apiVersion", "")).startswith(XRD_GROUP + "/")
        and mapping(doc.get("spec")).get("group") == GROUP
    )


def _is_our_composition(doc: dict[str, Any]) -> bool:
    ref = mapping(mapping(doc.get("spec")).get("compositeTypeRef"))
    return (
        doc.get("kind") == "Composition"
        and str(doc.get("apiVersion", "")).startswith(XRD_GROUP + "/")
        and str(ref.get("apiVersion", "")).split("/")[0] == GROUP
    )


def check_composition(doc: dict[str, Any], registry: Registry,
                      steps: dict[str, frozenset[str]]) -> list[FieldError]:
    """A Composition of ours names a served XR type and known steps of our function."""
    errors: list[FieldError] = []
    spec = mapping(doc.get("spec"))
    ref = mapping(spec.get("compositeTypeRef"))
    xr_kind = str(ref.get("kind", ""))
    if registry.xrd_for(str(ref.get("apiVersion", "")), xr_kind) is None:
        errors.append(FieldError("spec.compositeTypeRef", f"no XRD serves "
                                 f"{ref.get('apiVersion')} {xr_kind}"))
    if spec.get("mode") != "Pipeline":
        errors.append(FieldError("spec.mode", "Modelplane compositions use mode: Pipeline"))
    pipeline = sequence(spec.get("pipeline"))
    if not pipeline:
        errors.append(FieldError("spec.pipeline", "needs at least one step"))
    for i, raw_entry in enumerate(pipeline):
        entry = mapping(raw_entry)
        where = f"spec.pipeline[{i}]"
        if mapping(entry.get("functionRef")).get("name") != FUNCTION_NAME:
            continue  # another function's step (e.g. auto-ready): not ours to check
        step_input = mapping(entry.get("input"))
        if step_input.get("apiVersion") != INPUT_API_VERSION or step_input.get("kind") != "Input":
            errors.append(FieldError(f"{where}.input", f"input must be apiVersion "
                                     f"{INPUT_API_VERSION}, kind Input"))
        name = step_input.get("step")
        if name not in steps:
            errors.append(FieldError(f"{where}.input.step", f"unknown step {name!r}; known "
                                     f"steps: {', '.join(sorted(steps))}"))
        elif steps[name] and xr_kind not in steps[name]:
            errors.append(FieldError(f"{where}.input.step", f"step {name!r} serves "
                                     f"{', '.join(sorted(steps[name]))}, not {xr_kind}"))
    return errors


def check_xrd(doc: dict[str, Any]) -> list[FieldError]:
    """Our own XRD rules: every field described, every CEL rule compiles."""
    errors: list[FieldError] = []
    for i, raw_version in enumerate(sequence(mapping(doc.get("spec")).get("versions"))):
        version = mapping(raw_version)
        schema = mapping(mapping(version.get("schema")).get("openAPIV3Schema"))
        _walk_schema(schema, f"spec.versions[{i}].schema.openAPIV3Schema", errors)
    return errors


def _walk_schema(node: dict[str, Any], where: str, errors: list[FieldError]) -> None:
    if not str(node.get("description", "")).strip():
        errors.append(FieldError(where, "every field needs a description (kubectl explain "
                                        "shows it)"))
    for j, rule in enumerate(map(mapping, sequence(node.get("x-kubernetes-validations")))):
        why = compile_error(str(rule.get("rule", "")))
        if why:
            errors.append(FieldError(f"{where}.x-kubernetes-validations[{j}]",
                                     f"rule does not compile: {why}"))
    for key, child in sorted(mapping(node.get("properties")).items()):
        _walk_schema(mapping(child), f"{where}.properties.{key}", errors)
    if isinstance(node.get("additionalProperties"), dict):
        _walk_schema(node["additionalProperties"], f"{where}.additionalProperties", errors)
    if isinstance(node.get("items"), dict):
        _walk_schema(node["items"], f"{where}.items", errors)


def validate_paths(paths: list[str], registry: Registry | None = None) -> list[Problem]:
    """Every problem found in the given files and directories, in file and document order."""
    registry = registry or default_registry()
    steps = known_steps()
    problems: list[Problem] = []
    xrds: list[tuple[str, int, dict[str, Any]]] = []
    compositions: list[tuple[str, int, dict[str, Any]]] = []
    for raw in paths:
        root = Path(raw)
        if not root.exists():
            problems.append(Problem(raw, 0, "-", FieldError("", "no such file or directory")))
            continue
        for path in yaml_files(root):
            name = str(path)
            try:
                docs = list(iter_yaml_documents(path))
            except yaml.YAMLError as exc:
                why = " ".join(str(exc).split())
                problems.append(Problem(name, 0, "-", FieldError("", f"not valid YAML: {why}")))
                continue
            for index, doc in enumerate(docs):
                if doc is None or not isinstance(doc, dict):
                    continue
                if _is_ours(doc):
                    admitted, errors = admit(doc, registry)
                    # Device selectors as the API server judges them (length, compile, cost).
                    errors += [FieldError(p, m) for p, m in selector_problems(admitted)]
                elif _is_our_xrd(doc):
                    xrds.append((name, index, doc))
                    errors = check_xrd(doc)
                elif _is_our_composition(doc):
                    compositions.append((name, index, doc))
                    errors = check_composition(doc, registry, steps)
                else:
                    continue  # another project's kind: not ours to judge
                problems.extend(Problem(name, index, _subject(doc), e) for e in errors)
    if xrds and compositions:
        composed = {
            (str(ref.get("apiVersion")), str(ref.get("kind")))
            for _, _, c in compositions
            for ref in [mapping(mapping(c.get("spec")).get("compositeTypeRef"))]
        }
        for name, index, xrd in xrds:
            spec = mapping(xrd.get("spec"))
            kind = str(mapping(spec.get("names")).get("kind"))
            for version in map(mapping, sequence(spec.get("versions"))):
                if not version.get("referenceable"):
                    continue
                ref_key = (f"{spec.get('group')}/{version.get('name')}", kind)
                if ref_key not in composed:
                    problems.append(Problem(name, index, _subject(xrd), FieldError(
                        "spec.names.kind", f"no Composition has compositeTypeRef "
                                           f"{ref_key[0]} {kind}")))
    return problems


def validate_command(paths: list[str], out: TextIO | None = None) -> int:
    """Print one line per problem; 0 when every document is valid, 1 otherwise.

    Each line reads ``file:doc-index: Kind/name: field.path: message``, where doc-index counts
    the YAML documents of the file from 0.
    """
    stream = out or sys.stdout
    problems = validate_paths(paths)
    for problem in problems:
        print(problem.line(), file=stream)
    return 1 if problems else 0
