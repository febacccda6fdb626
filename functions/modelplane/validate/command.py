"""`modelplane validate PATH...`: admission checks for manifests, before a commit.

Every document of a Modelplane kind (the items of a ``kind: List`` too) is admitted as the API
server would on create; a schema-valid one is then checked as placement and the cluster would:
its DRA CEL selectors compiled and type-checked by our CEL engine, its pod templates against
Kubernetes' PodTemplateSpec. References between the validated objects (classes, caches,
secrets, gateways) that point at nothing are warnings. Our own package documents are checked
too: each Composition's steps name known function steps, and when both XRDs and Compositions
are given, every XRD has a Composition for its kind. Documents of other kinds are counted as
skipped.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TextIO

import yaml

from modelplane.common.fields import mapping, sequence
from modelplane.contract.api import GROUP, INFERENCE_CLASS, INPUT_API_VERSION
from modelplane.validate import checks, lines
from modelplane.validate.admission import FieldError, admit, compile_error
from modelplane.validate.registry import (
    XRD_GROUP,
    XRD_KIND,
    Registry,
    default_registry,
    yaml_files,
)

FUNCTION_NAME = "function-modelplane"

def known_steps() -> dict[str, frozenset[str]]:
    """Step name -> the XR kinds it serves, from the function's own step registry."""
    from modelplane.server import load_steps
    from modelplane.step import STEPS

    load_steps()
    return {name: reg.kinds for name, reg in STEPS.items()}


Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Problem:
    """One reported line: where (file, line, and document index from 0) and what."""

    file: str
    doc: int
    subject: str
    error: FieldError
    line_no: int = 1
    severity: Severity = "error"

    def line(self) -> str:
        tag = "warning: " if self.severity == "warning" else ""
        path = f"{self.error.path}: " if self.error.path else ""
        return f"{self.file}:{self.line_no}: {tag}{self.subject}: {path}{self.error.message}"

    def as_json(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line_no, "document": self.doc,
                "severity": self.severity, "object": self.subject, "field": self.error.path,
                "message": self.error.message}


@dataclass(frozen=True)
class Skipped:
    """A document of another project's kind: not ours to judge, but said so."""

    file: str
    line_no: int
    api_version: str
    kind: str
    name: str


@dataclass
class Report:
    """What a validation run saw: counts for the summary, problems, skipped documents."""

    files: int = 0
    documents: int = 0
    invalid: int = 0
    problems: list[Problem] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]

    @property
    def valid(self) -> int:
        return self.documents - self.invalid

    def summary(self) -> str:
        skipped = ""
        if self.skipped:
            kinds: dict[str, int] = {}
            for s in self.skipped:
                kinds[s.kind or "?"] = kinds.get(s.kind or "?", 0) + 1
            shown = ", ".join(f"{k} {n}" for k, n in sorted(kinds.items()))
            skipped = f", {len(self.skipped)} skipped (not Modelplane kinds: {shown})"
        errors = len(self.errors)
        warnings = len(self.warnings)
        return (f"{self.files} file(s), {self.documents + len(self.skipped)} document(s): "
                f"{self.valid} valid, {self.invalid} invalid ({errors} error(s)){skipped}; "
                f"{warnings} warning(s)")

    def as_json(self) -> dict[str, Any]:
        return {
            "summary": {"files": self.files, "documents": self.documents + len(self.skipped),
                        "valid": self.valid, "invalid": self.invalid,
                        "skipped": len(self.skipped), "errors": len(self.errors),
                        "warnings": len(self.warnings)},
            "problems": [p.as_json() for p in self.problems],
            "skipped": [{"file": s.file, "line": s.line_no, "apiVersion": s.api_version,
                         "kind": s.kind, "name": s.name} for s in self.skipped],
        }


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


def _is_list(doc: dict[str, Any]) -> bool:
    """What ``kubectl get -o yaml`` prints for several objects: ``kind: List`` (or a typed
    ``<Kind>List``) with ``items``."""
    return str(doc.get("kind", "")).endswith("List") and isinstance(doc.get("items"), list)


def _entries(path: Path) -> list[tuple[int, dict[str, Any], Any, str]]:
    """(document index, object, node, subject prefix) for every object of a file, with the
    items of each List unwrapped."""
    out: list[tuple[int, dict[str, Any], Any, str]] = []
    for index, doc in enumerate(lines.documents(path)):
        if not isinstance(doc.data, dict):
            continue
        if _is_list(doc.data):
            for i, item in enumerate(sequence(doc.data.get("items"))):
                if isinstance(item, dict):
                    out.append((index, item, lines.child(doc.node, "items", i), f"items[{i}] "))
        else:
            out.append((index, doc.data, doc.node, ""))
    return out


def validate_report(paths: list[str], registry: Registry | None = None) -> Report:
    """Validate files and directories: every problem in file and document order, with counts."""
    registry = registry or default_registry()
    steps = known_steps()
    report = Report()
    problems = report.problems
    xrds: list[tuple[str, int, dict[str, Any], int]] = []
    compositions: list[tuple[str, int, dict[str, Any]]] = []
    ours: list[tuple[str, int, dict[str, Any], Any, str]] = []
    present: set[tuple[str, str, str | None]] = set()
    for raw in paths:
        root = Path(raw)
        if not root.exists():
            problems.append(Problem(raw, 0, "-", FieldError("", "no such file or directory")))
            continue
        for path in yaml_files(root):
            name = str(path)
            report.files += 1
            try:
                entries = _entries(path)
            except yaml.YAMLError as exc:
                why = " ".join(str(exc).split())
                mark = getattr(exc, "problem_mark", None)
                problems.append(Problem(name, 0, "-", FieldError("", f"not valid YAML: {why}"),
                                        line_no=mark.line + 1 if mark is not None else 1))
                report.invalid += 1
                report.documents += 1
                continue
            for index, doc, node, prefix in entries:
                present.add(checks.identity(doc))
                if _is_ours(doc):
                    _, errors = admit(doc, registry)
                    if not errors:
                        # Only a schema-valid object is worth the deeper checks.
                        errors = checks.selector_errors(doc) + checks.pod_template_errors(doc)
                    ours.append((name, index, doc, node, prefix))
                elif _is_our_xrd(doc):
                    xrds.append((name, index, doc, lines.line_of(node, "")))
                    errors = check_xrd(doc)
                elif _is_our_composition(doc):
                    compositions.append((name, index, doc))
                    errors = check_composition(doc, registry, steps)
                else:
                    meta = mapping(doc.get("metadata"))
                    report.skipped.append(Skipped(name, lines.line_of(node, ""),
                                                  str(doc.get("apiVersion", "")),
                                                  str(doc.get("kind", "")),
                                                  str(meta.get("name", ""))))
                    continue  # another project's kind: not ours to judge
                report.documents += 1
                report.invalid += bool(errors)
                subject = prefix + _subject(doc)
                problems.extend(Problem(name, index, subject, e, lines.line_of(node, e.path))
                                for e in errors)
    # Pools that ask for EFA from a class validated alongside that cannot have it.
    classes = {str(mapping(d.get("metadata")).get("name")): mapping(d.get("spec"))
               for _, _, d, _, _ in ours if d.get("kind") == INFERENCE_CLASS}
    judged = {(p.file, p.doc) for p in problems if p.severity == "error"}
    for name, index, doc, node, prefix in ours:
        if (name, index) in judged:
            continue  # already invalid: its schema errors come first
        errors = checks.fabric_errors(doc, classes)
        report.invalid += bool(errors)
        problems.extend(Problem(name, index, prefix + _subject(doc), e, lines.line_of(node, e.path))
                        for e in errors)
    # References are warnings: the set validated may be one part of a fleet (a team's models
    # without the platform), so a reference to something not in it may well exist.
    for name, index, doc, node, prefix in ours:
        for ref in checks.references(doc):
            if (ref.kind, ref.name, ref.namespace) in present:
                continue
            where = f" in namespace {ref.namespace}" if ref.namespace else ""
            problems.append(Problem(name, index, prefix + _subject(doc), FieldError(
                ref.field, f"{ref.kind} {ref.name!r}{where} is not among the validated "
                           "objects"), lines.line_of(node, ref.field), "warning"))
    if xrds and compositions:
        composed = {
            (str(ref.get("apiVersion")), str(ref.get("kind")))
            for _, _, c in compositions
            for ref in [mapping(mapping(c.get("spec")).get("compositeTypeRef"))]
        }
        for name, index, xrd, line in xrds:
            spec = mapping(xrd.get("spec"))
            kind = str(mapping(spec.get("names")).get("kind"))
            for version in map(mapping, sequence(spec.get("versions"))):
                if not version.get("referenceable"):
                    continue
                ref_key = (f"{spec.get('group')}/{version.get('name')}", kind)
                if ref_key not in composed:
                    problems.append(Problem(name, index, _subject(xrd), FieldError(
                        "spec.names.kind", f"no Composition has compositeTypeRef "
                                           f"{ref_key[0]} {kind}"), line))
                    report.invalid += 1
    # File order as given and found; line order within a file.
    order = {f: i for i, f in enumerate(dict.fromkeys(p.file for p in problems))}
    problems.sort(key=lambda p: (order[p.file], p.line_no, p.severity))
    return report


def validate_paths(paths: list[str], registry: Registry | None = None) -> list[Problem]:
    """Every error found in the given files and directories, in file and line order."""
    return validate_report(paths, registry).errors


def validate_command(paths: list[str], out: TextIO | None = None, output: str = "text",
                     strict: bool = False) -> int:
    """Print one line per problem and a summary; see EXIT_CODES.

    Each line reads ``file:line: Kind/name: field.path: message`` (``warning:`` before the
    object for a warning); the last line counts files, documents, valid, invalid and skipped.
    """
    stream = out or sys.stdout
    report = validate_report(paths)
    if output == "json":
        stream.write(json.dumps(report.as_json(), indent=2, sort_keys=True) + "\n")
    else:
        for problem in report.problems:
            print(problem.line(), file=stream)
        print(report.summary(), file=stream)
    if report.errors or (strict and report.warnings):
        return 1
    return 0


EXIT_CODES = """exit codes:
  0  every Modelplane document is valid (warnings allowed unless --strict)
  1  an error: a document the API server, placement or the cluster would reject, a file
     that is not YAML or does not exist (with --strict: also a warning)
  2  the command line is wrong"""
