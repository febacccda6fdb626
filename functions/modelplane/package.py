"""`python -m modelplane.package build`: assemble and check the xpkg package roots offline.

``crossplane xpkg build --package-root DIR`` reads every YAML file under DIR: exactly one
``crossplane.yaml`` (the package metadata) and the objects the package installs. This module
writes the two roots we publish and checks them the way the package manager would, without a
cluster or the crossplane CLI:

- ``build/package/configuration/``: the Configuration metadata, the XRDs from ``apis/``, the
  Compositions from ``compositions/`` and the activation policy. A Configuration may contain
  only XRDs, Compositions and ManagedResourceActivationPolicies; anything else is rejected here
  (the package manager would refuse to install it).
- ``build/package/function/``: the Function metadata and the CRD of the function's input.

Compositions in ``compositions/`` call the function by the name ``function-modelplane`` (what
``modelplane render`` and a hand-installed Function use). When Crossplane installs the Function
as a *dependency* of the Configuration it names it after the package repository instead
(``xpkg.upbound.io/modelplane/function-modelplane`` -> ``modelplane-function-modelplane``), so
the assembled Compositions are rewritten to that name; otherwise every pipeline would reference a
Function that does not exist.

Schemas come from a directory of upstream CRDs (``--crds``; checked structurally:
JSON Schema over each CRD's openAPIV3Schema, unknown fields rejected). When that directory is
absent the schema checks are skipped with a message; the kind lint always runs.
"""

from __future__ import annotations

import argparse
import functools
import os
import shutil
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from modelplane.common.openapi import to_jsonschema
from modelplane.common.output import load_yaml

META_GROUP = "meta.pkg.crossplane.io"
META_FILE = "crossplane.yaml"
FUNCTION_NAME = "function-modelplane"  # the name compositions/ use for the function

# What a Configuration package may carry besides its crossplane.yaml: (group, kind).
CONFIGURATION_KINDS = frozenset({
    ("apiextensions.crossplane.io", "CompositeResourceDefinition"),
    ("apiextensions.crossplane.io", "Composition"),
    ("apiextensions.crossplane.io", "ManagedResourceActivationPolicy"),
})
# What a Function package may carry: the CRDs of its input (and nothing that runs).
FUNCTION_KINDS = frozenset({("apiextensions.k8s.io", "CustomResourceDefinition")})

YAML_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class Problem:
    """One reason a package root would not build or install, naming the file."""

    file: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.message}"


def repo_root() -> Path:
    """The checkout this module runs from (functions/modelplane/package.py -> repo)."""
    return Path(__file__).resolve().parents[2]


def default_conformance(root: Path) -> Path:
    env = os.environ.get("MODELPLANE_CONFORMANCE")
    return Path(env) if env else root.parent / "shared" / "conformance" / "crds"


def _to_dns_label(s: str) -> str:
    """The package manager's DNS-label conversion of a repository path, character for
    character: [a-z0-9] kept, '.', '/', ':' and '-' become '-' (never first, 63rd or last),
    everything else dropped, at most the first 63 input characters, '-' trimmed."""
    out: list[str] = []
    for i, c in enumerate(s):
        if "a" <= c <= "z" or "0" <= c <= "9":
            out.append(c)
        if c in "./:-" and i not in (0, 62, len(s) - 1):
            out.append("-")
        if i == 62:
            break
    return "".join(out).strip("-")


def dependency_name(package: str) -> str:
    """The object name Crossplane gives a dependency: its repository path (registry host,
    tag and digest dropped) as a DNS label, e.g. ``modelplane-function-modelplane`` for
    ``xpkg.upbound.io/modelplane/function-modelplane``."""
    ref = package.split("@", 1)[0]
    first, _, rest = ref.partition("/")
    repo = rest if rest and ("." in first or ":" in first or first == "localhost") else ref
    head, _, last = repo.rpartition("/")
    repo = f"{head}/{last.split(':', 1)[0]}" if head else last.split(":", 1)[0]
    return _to_dns_label(repo)


# -- schemas -----------------------------------------------------------------------------------

@functools.cache
def _crd_index(crds: Path) -> dict[tuple[str, str], dict[str, Any]]:
    index: dict[tuple[str, str], dict[str, Any]] = {}
    for sub in ("meta.pkg.crossplane.io", "apiextensions.crossplane.io"):
        for f in sorted((crds / sub).glob("*.yaml")):
            crd = load_yaml(f.read_text())
            index[(crd["spec"]["group"], crd["spec"]["names"]["kind"])] = crd
    return index


def schema_for(crds: Path, api_version: str, kind: str) -> dict[str, Any] | None:
    """The JSON Schema of a served version of a CRD in ``crds``; None when not known."""
    group, _, version = api_version.rpartition("/")
    crd = _crd_index(crds).get((group, kind))
    if crd is None:
        return None
    for v in crd["spec"]["versions"]:
        if v["name"] == version and v.get("served", True):
            schema: dict[str, Any] = to_jsonschema(v["schema"]["openAPIV3Schema"])
            return schema
    return None


def schema_problems(crds: Path | None, obj: dict[str, Any], where: str) -> list[Problem]:
    """Structural schema errors of ``obj`` (none when no conformance data is available)."""
    if crds is None:
        return []
    api_version, kind = str(obj.get("apiVersion", "")), str(obj.get("kind", ""))
    schema = schema_for(crds, api_version, kind)
    if schema is None:
        group = api_version.rpartition("/")[0]
        if _crd_index(crds).get((group, kind)) is not None:
            return [Problem(where, f"{kind} {api_version}: version not served by the CRD")]
        return []
    body = {k: v for k, v in obj.items() if k != "status"}
    errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(body),
                    key=lambda e: list(map(str, e.absolute_path)))
    return [Problem(where, f"{kind}: {'.'.join(map(str, e.absolute_path)) or '<root>'}: "
                           f"{e.message}") for e in errors]


# -- reading a package root --------------------------------------------------------------------

def documents(root: Path) -> tuple[list[tuple[str, dict[str, Any]]], list[Problem]]:
    """Every YAML document under ``root`` as (file relative to root, object), sorted by file."""
    docs: list[tuple[str, dict[str, Any]]] = []
    problems: list[Problem] = []
    for f in sorted(p for p in root.rglob("*") if p.is_file() and p.suffix in YAML_SUFFIXES):
        rel = str(f.relative_to(root))
        try:
            parsed = list(yaml.safe_load_all(f.read_text()))
        except yaml.YAMLError as exc:
            problems.append(Problem(rel, f"not valid YAML: {exc}"))
            continue
        for doc in parsed:
            if doc is None:
                continue
            if not isinstance(doc, dict) or not doc.get("apiVersion") or not doc.get("kind"):
                problems.append(Problem(rel, "every document must be an object with apiVersion "
                                             "and kind"))
                continue
            docs.append((rel, doc))
    return docs, problems


def _group(api_version: str) -> str:
    return api_version.rpartition("/")[0]


def _check_root(root: Path, meta_kind: str, allowed: frozenset[tuple[str, str]],
                crds: Path | None) -> tuple[list[tuple[str, dict[str, Any]]], list[Problem]]:
    """The checks every package root gets: one meta file, allowed kinds only, schemas."""
    if not root.is_dir():
        return [], [Problem(str(root), "package root does not exist (run the build first)")]
    docs, problems = documents(root)
    metas = [(f, d) for f, d in docs if _group(str(d["apiVersion"])) == META_GROUP]
    if not metas:
        problems.append(Problem(META_FILE, f"missing: a {meta_kind} package needs a "
                                           f"{META_FILE} with apiVersion {META_GROUP}/v1"))
    for f, d in metas:
        if f != META_FILE:
            problems.append(Problem(f, f"package metadata ({d['kind']}) must be the root "
                                       f"{META_FILE}, and there must be only one"))
        elif d["kind"] != meta_kind:
            problems.append(Problem(f, f"kind {d['kind']} in a {meta_kind} package root; "
                                       f"expected {META_GROUP}/v1 {meta_kind}"))
        problems += schema_problems(crds, d, f)
    allowed_text = ", ".join(sorted(k for _, k in allowed))
    for f, d in docs:
        group, kind = _group(str(d["apiVersion"])), str(d["kind"])
        if group == META_GROUP:
            continue
        if (group, kind) not in allowed:
            problems.append(Problem(f, f"kind {kind} ({d['apiVersion']}) is not allowed in a "
                                       f"{meta_kind} package; allowed: {allowed_text}"))
            continue
        problems += schema_problems(crds, d, f)
    return docs, problems


def check_configuration(root: Path, crds: Path | None) -> list[Problem]:
    """Everything wrong with a Configuration package root (empty: it builds and installs)."""
    docs, problems = _check_root(root, "Configuration", CONFIGURATION_KINDS, crds)
    meta = next((d for f, d in docs if f == META_FILE), {})
    deps = (meta.get("spec") or {}).get("dependsOn") or []
    functions = {dependency_name(str(d.get("package") or d.get("function") or ""))
                 for d in deps if d.get("kind") == "Function" or d.get("function")}
    xrds = {(str((d.get("spec") or {}).get("group")),
             str(((d.get("spec") or {}).get("names") or {}).get("kind"))): d
            for _, d in docs if d["kind"] == "CompositeResourceDefinition"}
    for f, d in docs:
        if d["kind"] != "Composition":
            continue
        spec = d.get("spec") or {}
        ref = spec.get("compositeTypeRef") or {}
        key = (_group(str(ref.get("apiVersion", ""))), str(ref.get("kind", "")))
        if key not in xrds:
            problems.append(Problem(f, f"compositeTypeRef {ref.get('apiVersion')} "
                                       f"{ref.get('kind')} is not defined by an XRD in the "
                                       f"package"))
        for step in spec.get("pipeline") or []:
            name = str((step.get("functionRef") or {}).get("name", ""))
            if name not in functions:
                problems.append(Problem(
                    f, f"pipeline step {step.get('step')!r} calls function {name!r}, but "
                       f"the package's Function dependencies install as "
                       f"{sorted(functions) or 'nothing'}"))
    for f, d in docs:
        if d.get("kind") == "Configuration":
            for i, dep in enumerate(deps):
                problems += _dependency_problems(f, i, dep)
    return problems


def _dependency_problems(where: str, i: int, dep: dict[str, Any]) -> list[Problem]:
    """The current dependency form: apiVersion + kind + package (the legacy fields are
    deprecated upstream), a repository without tag, and a version constraint."""
    out: list[Problem] = []
    path = f"spec.dependsOn[{i}]"
    legacy = [k for k in ("provider", "function", "configuration") if k in dep]
    if legacy:
        out.append(Problem(where, f"{path}: deprecated field(s) {legacy}; use apiVersion, "
                                  f"kind and package"))
    if dep.get("apiVersion") != "pkg.crossplane.io/v1" or dep.get("kind") not in (
            "Provider", "Function", "Configuration"):
        out.append(Problem(where, f"{path}: apiVersion/kind {dep.get('apiVersion')!r}/"
                                  f"{dep.get('kind')!r}; expected pkg.crossplane.io/v1 Provider, "
                                  f"Function or Configuration"))
    pkg = str(dep.get("package", ""))
    if "/" not in pkg or "." not in pkg.split("/", 1)[0]:
        out.append(Problem(where, f"{path}.package {pkg!r}: must be a fully qualified "
                                  f"repository (registry host included)"))
    elif ":" in pkg.rsplit("/", 1)[-1] or "@" in pkg:
        out.append(Problem(where, f"{path}.package {pkg!r}: give the repository without a tag; "
                                  f"the version constraint selects the release"))
    if not str(dep.get("version", "")).strip():
        out.append(Problem(where, f"{path}.version: a semantic version constraint is required"))
    return out


def check_function(root: Path, crds: Path | None, compositions: Iterable[dict[str, Any]] = ()
                   ) -> list[Problem]:
    """Everything wrong with the Function package root; also checks that every Composition
    step's ``input`` is valid against the input CRD the package ships."""
    docs, problems = _check_root(root, "Function", FUNCTION_KINDS, crds)
    inputs: dict[tuple[str, str], dict[str, Any]] = {}
    for _, d in docs:
        if d["kind"] != "CustomResourceDefinition":
            continue
        spec = d.get("spec") or {}
        for v in spec.get("versions") or []:
            inputs[(f"{spec.get('group')}/{v.get('name')}", str(spec["names"]["kind"]))] = (
                to_jsonschema(v["schema"]["openAPIV3Schema"]))
    for comp in compositions:
        for step in (comp.get("spec") or {}).get("pipeline") or []:
            inp = step.get("input")
            where = f"composition {comp['metadata']['name']} step {step.get('step')!r}"
            if not isinstance(inp, dict):
                problems.append(Problem(where, "has no input naming the Modelplane step"))
                continue
            schema = inputs.get((str(inp.get("apiVersion")), str(inp.get("kind"))))
            if schema is None:
                problems.append(Problem(where, f"input {inp.get('apiVersion')} {inp.get('kind')} "
                                               f"has no CRD in the Function package"))
                continue
            problems += [Problem(where, f"input: {'.'.join(map(str, e.absolute_path)) or '<root>'}"
                                        f": {e.message}")
                         for e in jsonschema.Draft7Validator(schema).iter_errors(inp)]
    return problems


# -- assembling --------------------------------------------------------------------------------

def _write(path: Path, objs: list[dict[str, Any]], header: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    body = "---\n".join(yaml.safe_dump(o, sort_keys=False) for o in objs)
    path.write_text(f"# {header}\n{body}")


def assemble(root: Path, out: Path) -> tuple[Path, Path]:
    """Write the Configuration and Function package roots under ``out``; return them.

    Output is rebuilt from scratch each time so a removed XRD never lingers in a package.
    """
    conf, fn = out / "configuration", out / "function"
    for d in (conf, fn):
        if d.exists():
            shutil.rmtree(d)
    src = root / "package"
    # Configuration: metadata and activation policy verbatim, then the APIs.
    for f in sorted((src / "configuration").glob("*.y*ml")):
        (conf / f.name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(f, conf / f.name)
    meta = yaml.safe_load((src / "configuration" / META_FILE).read_text()) or {}
    fn_deps = [d for d in (meta.get("spec") or {}).get("dependsOn") or []
               if d.get("kind") == "Function"]
    installed_as = dependency_name(str(fn_deps[0]["package"])) if fn_deps else FUNCTION_NAME
    for f in sorted((root / "apis").glob("*/definition.y*ml")):
        dest = conf / "apis" / f.parent.name / f.name
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(f, dest)
    for f in sorted((root / "compositions").glob("*.y*ml")):
        comps = [d for d in yaml.safe_load_all(f.read_text()) if d is not None]
        for c in comps:
            for step in (c.get("spec") or {}).get("pipeline") or []:
                ref = step.get("functionRef") or {}
                if ref.get("name") == FUNCTION_NAME:
                    ref["name"] = installed_as
        _write(conf / "compositions" / f.name, comps,
               f"Generated from compositions/{f.name} by `make package`: functionRef renamed "
               f"{FUNCTION_NAME} -> {installed_as} (the name Crossplane gives the dependency).")
    # Function: metadata and the input CRD(s).
    fn.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src / "function" / META_FILE, fn / META_FILE)
    for f in sorted((src / "function").glob("input/*.y*ml")):
        (fn / "input").mkdir(exist_ok=True)
        shutil.copyfile(f, fn / "input" / f.name)
    return conf, fn


def build(root: Path, out: Path, crds: Path | None) -> list[Problem]:
    """Assemble both package roots and return every problem found in them."""
    conf, fn = assemble(root, out)
    problems = check_configuration(conf, crds)
    comps = [d for _, d in documents(conf)[0] if d["kind"] == "Composition"]
    problems += check_function(fn, crds, comps)
    return problems


def _report(problems: list[Problem], ok: str) -> int:
    if problems:
        for p in problems:
            print(f"error: {p}", file=sys.stderr)
        print(f"{len(problems)} problem(s)", file=sys.stderr)
        return 1
    print(ok)
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m modelplane.package", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="assemble build/package/{configuration,function} and check")
    b.add_argument("--root", type=Path, default=None, help="repository root (default: this "
                                                           "checkout, else the current directory)")
    b.add_argument("--out", type=Path, default=None, help="output (default ROOT/build/package)")
    b.add_argument("--conformance", type=Path, default=None,
                   help="upstream CRDs directory (default ROOT/../shared/conformance/crds or "
                        "$MODELPLANE_CONFORMANCE)")
    c = sub.add_parser("check", help="check an existing package root without building")
    c.add_argument("kind", choices=["configuration", "function"])
    c.add_argument("dir", type=Path)
    c.add_argument("--conformance", type=Path, default=None)
    args = p.parse_args(argv)

    root = args.root if getattr(args, "root", None) else repo_root()
    if not (root / "package" / "configuration").is_dir():
        root = Path.cwd()
    crds: Path | None = args.conformance or default_conformance(root)
    assert crds is not None
    if not (crds / "meta.pkg.crossplane.io").is_dir():
        print(f"warning: no upstream CRDs at {crds}; schema checks skipped (kind lint still "
              f"runs)", file=sys.stderr)
        crds = None
    if args.command == "check":
        problems = (check_configuration(args.dir, crds) if args.kind == "configuration"
                    else check_function(args.dir, crds))
        return _report(problems, f"{args.dir}: ok")
    out = args.out or root / "build" / "package"
    problems = build(root, out, crds)
    return _report(problems, f"package roots ready: {out / 'configuration'} and "
                             f"{out / 'function'} (crossplane xpkg build --package-root <dir>)")


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["CONFIGURATION_KINDS", "Problem", "assemble", "build", "check_configuration",
           "check_function", "dependency_name", "main"]
