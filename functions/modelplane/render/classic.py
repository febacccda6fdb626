"""`modelplane render-xr`: one XR, argument- and output-compatible with `crossplane render`.

`modelplane render-xr XR COMPOSITION [FUNCTIONS] [-o OBSERVED] [-e REQUIRED]
[--context-files k=f] [-r] [-x]` runs the pipeline once (with the requirements loop answered
from -e) and prints a YAML stream: the XR, then the desired composed resources sorted by
composition-resource-name, then (with -r) the function results. Nothing is applied, simulated or
garbage-collected. The flags mean what they mean to `crossplane render`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import crossplane.function.proto.v1.run_function_pb2 as fnv1

from modelplane import server
from modelplane.common.output import yaml_stream
from modelplane.render.engine import (
    COMPOSITE_LABEL,
    RESOURCE_NAME_ANNOTATION,
    Engine,
    LocalFunctionServer,
    RenderError,
    _fmt_names,
)
from modelplane.render.loader import InputError, _documents, files_under
from modelplane.render.store import Obj, Store

# `crossplane render` stamps every condition with this fixed time, so output is reproducible.
RENDER_TIME = "2024-01-01T00:00:00Z"
_SEVERITY = {fnv1.SEVERITY_FATAL: "SEVERITY_FATAL", fnv1.SEVERITY_WARNING: "SEVERITY_WARNING",
             fnv1.SEVERITY_NORMAL: "SEVERITY_NORMAL"}


def _read(path: str | None) -> list[Obj]:
    if not path:
        return []
    out: list[Obj] = []
    for f in files_under([Path(path)]):
        out.extend(d for d in _documents(f) if isinstance(d, dict))
    return out


def _context(specs: list[str] | None) -> dict[str, Any]:
    ctx: dict[str, Any] = {}
    items = [i for spec in specs or [] for part in spec.split(";") for i in part.split(",")]
    for item in items:
        if not item.strip():
            continue
        key, _, file = item.partition("=")
        if not file:
            raise InputError(f"--context-files: expected key=file, got {item!r}")
        ctx[key.strip()] = json.loads(Path(file.strip()).read_text())
    return ctx


def _check_functions(comp: Obj, functions_file: str | None) -> None:
    """Every step must be function-modelplane's, and a given functions file must define it."""
    from modelplane.contract.api import INPUT_API_VERSION
    from modelplane.validate.command import FUNCTION_NAME

    steps = (comp.get("spec") or {}).get("pipeline") or []
    named = sorted({str((s.get("functionRef") or {}).get("name")) for s in steps})
    # Ours by name, or by the step input only our function reads: a package manager installs
    # the Function under its dependency name (e.g. modelplane-function-modelplane).
    others = sorted({str((s.get("functionRef") or {}).get("name")) for s in steps
                     if (s.get("functionRef") or {}).get("name") != FUNCTION_NAME
                     and (s.get("input") or {}).get("apiVersion") != INPUT_API_VERSION})
    if others:
        raise InputError(f"the pipeline calls {', '.join(others)}: render-xr runs only "
                         f"{FUNCTION_NAME}; use `crossplane render` for other functions")
    if functions_file is not None:
        defined = {str((f.get("metadata") or {}).get("name")) for f in _read(functions_file)
                   if f.get("kind") == "Function"}
        missing = [n for n in named if n not in defined]
        if missing:
            raise InputError(f"{functions_file}: no Function named {', '.join(missing)}")


def render_one(args: argparse.Namespace) -> list[Obj]:
    xrs = _read(args.xr)
    comps = _read(args.composition)
    if len(xrs) != 1:
        raise InputError(f"{args.xr}: expected exactly one XR, found {len(xrs)}")
    if len(comps) != 1 or comps[0].get("kind") != "Composition":
        raise InputError(f"{args.composition}: expected exactly one Composition")
    xr, comp = xrs[0], comps[0]
    _check_functions(comp, args.functions)
    xr.setdefault("metadata", {})
    observed = {
        str(((o.get("metadata") or {}).get("annotations") or {}).get(RESOURCE_NAME_ANNOTATION)): o
        for o in _read(args.observed_resources)
    }
    store = Store()
    for obj in _read(args.required_resources):
        store.put(obj)

    fn = LocalFunctionServer()
    client = fn.client()
    results: list[Obj] = []
    try:
        engine = Engine(store, [], [comp], client)
        desired_xr: dict[str, Any] = {}
        desired: dict[str, fnv1.Resource] = {}
        context = _context(args.context_files)
        conditions: list[dict[str, Any]] = []
        ready_override = fnv1.READY_UNSPECIFIED
        for step in (comp.get("spec") or {}).get("pipeline") or []:
            rsp = engine._run_step(xr, observed, desired_xr, desired, context, step, store)
            for r in rsp.results:
                results.append({"apiVersion": "render.crossplane.io/v1beta1", "kind": "Result",
                                "step": step.get("step"), "severity": _SEVERITY.get(r.severity,
                                "SEVERITY_UNSPECIFIED"), "message": r.message,
                                **({"reason": r.reason} if r.reason else {})})
            if any(r.severity == fnv1.SEVERITY_FATAL for r in rsp.results):
                raise RenderError(f"pipeline step {step.get('step')!r} returned a fatal "
                                  f"result: {rsp.results[0].message}")
            desired_xr = server.struct_to_dict(rsp.desired.composite.resource)
            if rsp.desired.composite.ready != fnv1.READY_UNSPECIFIED:
                ready_override = rsp.desired.composite.ready
            desired = dict(rsp.desired.resources.items())
            context = server.struct_to_dict(rsp.context) if rsp.HasField("context") else {}
            conditions += [{"type": c.type, "reason": c.reason,
                            "status": {fnv1.STATUS_CONDITION_TRUE: "True",
                                       fnv1.STATUS_CONDITION_FALSE: "False"}.get(
                                           c.status, "Unknown"),
                            **({"message": c.message} if c.message else {})}
                           for c in rsp.conditions]
    finally:
        client.close()
        fn.stop()

    unready = sorted(n for n, r in desired.items() if r.ready != fnv1.READY_TRUE)
    # As Crossplane: the function's word on the XR's readiness wins; else all composed ready.
    ready: dict[str, Any] = {"type": "Ready", "status": "True", "reason": "Available"}
    if ready_override == fnv1.READY_TRUE:
        pass
    elif unready and ready_override != fnv1.READY_FALSE:
        ready = {"type": "Ready", "status": "False", "reason": "Creating",
                 "message": f"Unready resources: {_fmt_names(unready)}"}
    elif ready_override == fnv1.READY_FALSE:
        ready = {"type": "Ready", "status": "False", "reason": "Creating"}
    out_xr: Obj = {"apiVersion": xr.get("apiVersion"), "kind": xr.get("kind"),
                   "metadata": xr["metadata"] if args.include_full_xr else {
                       k: v for k, v in xr["metadata"].items() if k in ("name", "namespace")}}
    if args.include_full_xr and "spec" in xr:
        out_xr["spec"] = xr["spec"]
    status = dict(desired_xr.get("status") or {})
    status["conditions"] = [{**c, "lastTransitionTime": RENDER_TIME}
                            for c in [ready, *[c for c in conditions
                                               if c["type"] not in ("Ready", "Synced")]]]
    out_xr["status"] = status

    composed: list[Obj] = []
    owner = {"apiVersion": xr.get("apiVersion"), "kind": xr.get("kind"),
             "name": xr["metadata"].get("name"), "uid": xr["metadata"].get("uid", ""),
             "controller": True, "blockOwnerDeletion": True}
    for rname in sorted(desired):
        obj = server.struct_to_dict(desired[rname].resource)
        meta = obj.setdefault("metadata", {})
        if not meta.get("name"):
            meta["generateName"] = f"{xr['metadata'].get('name')}-"
        meta.setdefault("labels", {})[COMPOSITE_LABEL] = xr["metadata"].get("name")
        meta.setdefault("annotations", {})[RESOURCE_NAME_ANNOTATION] = rname
        meta["ownerReferences"] = [owner]
        composed.append(obj)
    return [out_xr, *composed, *(results if args.include_function_results else [])]


def classic_command(args: argparse.Namespace) -> int:
    try:
        docs = render_one(args)
    except (InputError, RenderError, OSError, json.JSONDecodeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    sys.stdout.write(yaml_stream(docs))
    return 0
