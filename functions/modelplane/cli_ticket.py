"""`modelplane ticket`: the inference deployment ticket on the command line (docs/ticket.md).

- ``new`` prints an annotated ticket with the ten questions.
- ``check TICKET --fleet DIR`` renders the fleet with the ticket (never deploying it) and prints
  the answer the InferenceTicket step wrote: exit 0 runnable and fully decided, 1 not runnable,
  3 decisions open, 2 usage or input error.
- ``from DIR`` writes the ticket an existing ModelDeployment/ModelService pair implies.
- ``compile TICKET -o DIR`` writes the manifests ``deploy: true`` composes (``ticket.implied``).
"""

from __future__ import annotations

import copy
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from modelplane.common import conditions
from modelplane.common import selectors as label_selectors
from modelplane.common.fields import mapping, sequence
from modelplane.common.output import to_yaml
from modelplane.contract.api import (
    GROUP,
    INFERENCE_CLASS,
    INFERENCE_TICKET,
    MODEL_DEPLOYMENT,
    MODEL_ENDPOINT,
    MODEL_SERVICE,
)
from modelplane.contract.boundary import outside
from modelplane.contract.metadata import DEPLOYMENT_LABEL
from modelplane.render import InputError, RenderError, render_fleet
from modelplane.render.loader import load
from modelplane.steps.inferenceticket.ticket import ROWS, implied, row, spec_of

OK, NOT_RUNNABLE, USAGE, OPEN = 0, 1, 2, 3

TEMPLATE = """\
# An inference deployment ticket: fill every row, or decline it with `none: true`.
# A row left out is open. `modelplane ticket check THIS --fleet DIR` answers it.
apiVersion: modelplane.ai/v1alpha1
kind: InferenceTicket
metadata:
  name: my-model
  namespace: my-team
spec:
  # 1. Model and business job: which model, doing what work, for whom?
  model:
    name: Qwen/Qwen3-Coder-30B-A3B-Instruct
    job: "PR review on the payments repo"
    requester: my-team
  # 2. Serving engine / container: what actually runs the weights?
  engine: {image: vllm/vllm-openai:v0.11.0, args: ["--max-model-len=32768"]}
  # 3. Hardware class and memory need: which published lane, how much memory per device?
  #    (or classNames: [l40s-1x]; or selectors: [{cel: 'device.attributes[...]...'}])
  hardware: {gpus: 1, memory: 40Gi}
  # 4. Fleet boundary: cloud, neocloud, on-prem, which region?
  fleet: {clusterSelector: {matchLabels: {modelplane.ai/region: eu-west}}}
  # 5. Sovereignty / compliance: where may the data be served from? (judged on endpoint labels)
  sovereignty: {dataBoundary: {matchLabels: {modelplane.ai/jurisdiction: eu}}}   # or {none: true}
  # 6. Scaling target and latency budget: replicas must fit now, maxReplicas at peak.
  scaling: {replicas: 2, maxReplicas: 6, p95LatencyMs: 1500}
  # 7. Endpoint shape and owner: which URL, and who is paged when it breaks?
  endpoint: {service: my-model, owner: oncall@example.com}
  # 8. Overflow / break-glass provider: where does traffic go when capacity is gone?
  overflow: {endpointRef: {name: hosted-provider}}                         # or {none: true}
  # 9. Cache / weight location: where do the weights live and load from?
  cache: {modelCacheRef: {name: my-model-weights}}                         # or {none: true}
  # 10. Rollback and retirement rule: how is it backed out, and when does it die?
  lifecycle:
    rollback: "keep the previous image as a 0% canary for 7 days"
    retireAfter: "2027-06-30"
  # Compose the ModelDeployment and ModelService once the answer is yes.
  deploy: false
"""


def _error(msg: str) -> int:
    print(f"error: {msg}", file=sys.stderr)
    return USAGE


def _read_ticket(path: str) -> dict[str, Any]:
    loaded = load([Path(path)], frozenset({GROUP}))
    tickets = [o for _, o in loaded.objects if o.get("kind") == INFERENCE_TICKET]
    if len(tickets) != 1:
        raise InputError(f"{path}: expected exactly one InferenceTicket, found {len(tickets)}")
    return tickets[0]


def answer_of(ticket: dict[str, Any]) -> dict[str, Any]:
    """The rendered ticket's status as ``ticket check -o json`` prints it."""
    status = mapping(ticket.get("status"))
    runnable = status.get("runnable")
    return {
        "runnable": runnable if isinstance(runnable, bool) else None,
        "decided": list(sequence(status.get("decided"))),
        "open": list(sequence(status.get("open"))),
        "lanes": list(sequence(status.get("lanes"))),
        "clusters": list(sequence(status.get("clusters"))),
        "fitsNow": status.get("fitsNow") is True,
        "fitsAtPeak": status.get("fitsAtPeak") is True,
        "withinBoundary": status.get("withinBoundary") is not False,
        "reasons": list(sequence(status.get("reasons"))),
    }


def exit_code(ticket: dict[str, Any]) -> int:
    decided = conditions.get(ticket, "Decided") or {}
    if decided.get("reason") == "InvalidTicket":
        return USAGE
    ans = answer_of(ticket)
    if ans["runnable"] is False:
        return NOT_RUNNABLE
    if ans["open"] or ans["runnable"] is None:
        return OPEN
    return OK


def _text(ticket: dict[str, Any]) -> str:
    status = mapping(ticket.get("status"))
    ans = answer_of(ticket)
    lines = [f"{'ROW':<12} {'STATE':<8} NOTE"]
    for r in map(mapping, sequence(status.get("rows"))):
        lines.append(f"{r.get('name', ''):<12} {r.get('state', ''):<8} {r.get('message', '')}")
    lines.append("")
    decided = conditions.get(ticket, "Decided") or {}
    if decided.get("reason") == "InvalidTicket":
        lines.append(f"Invalid: {decided.get('message', '')}")
    elif ans["runnable"] is True and not ans["open"]:
        lines.append(f"Yes: lanes {', '.join(ans['lanes'])}; clusters "
                     f"{', '.join(ans['clusters'])}; fits now and at peak")
    elif ans["runnable"] is False:
        why = [str(c.get("message", "")) for t in ("Runnable", "WithinBoundary")
               if (c := conditions.get(ticket, t)) and c.get("status") == "False"]
        lines.append("No: " + "; ".join(why or ans["reasons"] or ["does not fit"]))
    else:
        note = ""
        if ans["runnable"] is True:
            note = (f" (it would fit: lanes {', '.join(ans['lanes'])}; clusters "
                    f"{', '.join(ans['clusters'])})")
        lines.append(f"Not yet: rows {', '.join(ans['open'])} are open{note}")
    return "\n".join(lines) + "\n"


def check(ticket_path: str, fleet_dir: str, output: str) -> int:
    try:
        ticket = _read_ticket(ticket_path)
    except InputError as exc:
        return _error(str(exc))
    probe = copy.deepcopy(ticket)
    probe.setdefault("spec", {})["deploy"] = False  # a check never deploys
    meta = mapping(ticket.get("metadata"))
    with tempfile.TemporaryDirectory() as tmp:
        f = Path(tmp) / "ticket.yaml"
        f.write_text(to_yaml(probe))
        try:
            fleet = render_fleet([Path(fleet_dir)], extra=[f])
        except (InputError, RenderError) as exc:
            return _error(str(exc))
    got = fleet.get(INFERENCE_TICKET, str(meta.get("name", "")), str(meta.get("namespace", "")))
    if got is None:
        return _error("the ticket was not reconciled")
    if output == "json":
        sys.stdout.write(json.dumps(answer_of(got), indent=2) + "\n")
    else:
        sys.stdout.write(_text(got))
    return exit_code(got)


def _fleet_objects(fleet_dir: str | None) -> list[dict[str, Any]]:
    if not fleet_dir:
        return []
    return [o for _, o in load([Path(fleet_dir)], frozenset({GROUP})).objects]


def compile_ticket(ticket_path: str, out_dir: str, fleet_dir: str | None) -> int:
    try:
        ticket = _read_ticket(ticket_path)
        objs = _fleet_objects(fleet_dir)
    except InputError as exc:
        return _error(str(exc))
    spec = spec_of(ticket)
    ns = mapping(ticket.get("metadata")).get("namespace")
    overflow_row = row(spec, "overflow") or {}
    overflow_name = mapping(overflow_row.get("endpointRef")).get("name")
    overflow = None
    if overflow_name:
        found = [o for o in objs if o.get("kind") == MODEL_ENDPOINT
                 and mapping(o.get("metadata")).get("name") == overflow_name
                 and mapping(o.get("metadata")).get("namespace") == ns]
        if not found:
            return _error(f"spec.overflow.endpointRef.name {overflow_name!r}: no ModelEndpoint "
                          f"of that name in namespace {ns} under --fleet")
        overflow = found[0]
    if (row(spec, "hardware") or {}).get("classNames") and not fleet_dir:
        return _error("spec.hardware.classNames names InferenceClasses: give --fleet DIR")
    made = implied(ticket, [o for o in objs if o.get("kind") == INFERENCE_CLASS], overflow)
    if made.problems or made.deployment is None or made.service is None:
        why = "; ".join(str(p) for p in made.problems) or "spec.hardware is open or declined"
        return _error(f"the ticket implies no deployment: {why}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for kind, obj in (("deployment", made.deployment), ("service", made.service)):
        path = out / f"{obj['metadata']['name']}-{kind}.yaml"
        path.write_text(f"# Composed by InferenceTicket {ns}/"
                        f"{mapping(ticket.get('metadata')).get('name')} with deploy: true.\n"
                        + to_yaml(obj))
        print(path)
    return OK


def _deployment_for(service: dict[str, Any], deployments: dict[str, dict[str, Any]]
                    ) -> dict[str, Any] | None:
    for g in map(mapping, sequence(mapping(service.get("spec")).get("endpoints"))):
        if g.get("role", "Primary") != "Primary":
            continue
        name = mapping(mapping(g.get("selector")).get("matchLabels")).get(DEPLOYMENT_LABEL)
        if name in deployments:
            return deployments[name]
    return None


def ticket_from(dir_: str) -> int:
    try:
        objs = _fleet_objects(dir_)
    except InputError as exc:
        return _error(str(exc))
    deployments = {str(mapping(o.get("metadata")).get("name")): o for o in objs
                   if o.get("kind") == MODEL_DEPLOYMENT}
    services = [o for o in objs if o.get("kind") == MODEL_SERVICE]
    pairs = [(s, d) for s in services if (d := _deployment_for(s, deployments)) is not None]
    if not pairs:
        return _error(f"{dir_}: no ModelService whose Primary endpoints select a "
                      f"ModelDeployment (by {DEPLOYMENT_LABEL}) in the same directory")
    docs = [_implied_ticket(s, d, objs) for s, d in pairs]
    sys.stdout.write("---\n".join(docs))
    return OK


def _implied_ticket(service: dict[str, Any], md: dict[str, Any],
                    objs: list[dict[str, Any]]) -> str:
    smeta, sspec = mapping(service.get("metadata")), mapping(service.get("spec"))
    mspec = mapping(md.get("spec"))
    spec: dict[str, Any] = {}
    opened: list[str] = []
    engines = [mapping(e) for e in sequence(mspec.get("engines"))]
    member = mapping((sequence(engines[0].get("members")) or [{}])[0]) if engines else {}
    container = mapping((sequence(mapping(mapping(member.get("template")).get("spec")).get(
        "containers")) or [{}])[0])
    args = [str(a) for a in sequence(container.get("args"))]
    model = next((a.split("=", 1)[1] for a in args if a.startswith("--model=")), "")
    if model:
        spec["model"] = {"name": model}
        if mapping(sspec.get("owner")).get("team"):
            spec["model"]["requester"] = str(mapping(sspec.get("owner"))["team"])
    else:
        opened.append("model: the engine's args name no --model")
    spec["engine"] = {"image": str(container.get("image", ""))}
    rest = [a for a in args if not a.startswith("--model=")]
    if rest:
        spec["engine"]["args"] = rest
    devices = [mapping(d) for d in sequence(mapping(member.get("nodeSelector")).get("devices"))]
    if devices:
        hw: dict[str, Any] = {"device": str(devices[0].get("name", "gpu")),
                              "gpus": int(devices[0].get("count", 1))}
        sels = [{"cel": str(mapping(s).get("cel"))} for s in sequence(devices[0].get("selectors"))]
        if sels:
            hw["selectors"] = sels
        spec["hardware"] = hw
    else:
        opened.append("hardware: the deployment requests no devices")
    if mapping(mspec.get("clusterSelector")):
        spec["fleet"] = {"clusterSelector": mapping(mspec.get("clusterSelector"))}
    else:
        opened.append("fleet: the deployment selects every cluster; say so with "
                      "{clusterSelector: {}} or bound it")
    boundary = mapping(mapping(sspec.get("dataBoundary")).get("selector"))
    if boundary:
        spec["sovereignty"] = {"dataBoundary": boundary}
    else:
        opened.append("sovereignty: the service declares no data boundary")
    spec["scaling"] = {"replicas": int(mspec.get("replicas", 1))}
    endpoint: dict[str, Any] = {"service": str(smeta.get("name"))}
    contact = mapping(sspec.get("owner")).get("contact")
    if contact:
        endpoint["owner"] = str(contact)
    else:
        opened.append("endpoint: the service names no owner contact")
    spec["endpoint"] = endpoint
    fallback = [mapping(g) for g in sequence(sspec.get("endpoints"))
                if mapping(g).get("role") == "Fallback"]
    ns = smeta.get("namespace")
    chosen = sorted(str(mapping(o.get("metadata")).get("name")) for o in objs
                    if o.get("kind") == MODEL_ENDPOINT
                    and mapping(o.get("metadata")).get("namespace") == ns
                    and any(label_selectors.matches(mapping(g.get("selector")),
                                                    mapping(mapping(o.get("metadata")).get(
                                                        "labels"))) for g in fallback))
    labels_of = {str(mapping(o.get("metadata")).get("name")):
                 mapping(mapping(o.get("metadata")).get("labels")) for o in objs
                 if o.get("kind") == MODEL_ENDPOINT and mapping(o.get("metadata")).get(
                     "namespace") == ns}
    # The service routes only to fallbacks inside its boundary: prefer one of those.
    chosen.sort(key=lambda n: (outside(boundary or None, labels_of.get(n, {})) is not None, n))
    if chosen:
        spec["overflow"] = {"endpointRef": {"name": chosen[0]}}
    else:
        opened.append("overflow: no Fallback endpoint of the service is in the directory")
    cache = mapping(mspec.get("modelCacheRef")).get("name")
    if cache:
        spec["cache"] = {"modelCacheRef": {"name": str(cache)}}
    else:
        opened.append("cache: the deployment references no ModelCache")
    opened.append("lifecycle: a ModelDeployment records no rollback or retirement rule")
    ticket = {"apiVersion": f"{GROUP}/v1alpha1", "kind": INFERENCE_TICKET,
              "metadata": {"name": str(mapping(md.get("metadata")).get("name")),
                           "namespace": str(ns or "")},
              "spec": spec}
    head = (f"# The ticket ModelDeployment {mapping(md.get('metadata')).get('name')} and "
            f"ModelService {smeta.get('name')} imply.\n# Open rows (left out):\n"
            + "".join(f"#   {o}\n" for o in opened))
    assert set(spec) <= set(ROWS)
    return head + to_yaml(ticket)


def add_parser(sub: Any) -> None:
    """Wire ``modelplane ticket ...`` into the CLI's subparsers."""
    t = sub.add_parser("ticket", help="the inference deployment ticket: ask, check, compile")
    tsub = t.add_subparsers(dest="ticket_command", required=True)
    n = tsub.add_parser("new", help="print an annotated ticket with the ten questions")
    n.set_defaults(func=lambda a: (sys.stdout.write(TEMPLATE), OK)[1])
    c = tsub.add_parser("check", help="answer a ticket against a fleet directory")
    c.add_argument("ticket", help="the InferenceTicket manifest (a file)")
    c.add_argument("--fleet", required=True, help="the fleet's manifests (a directory)")
    c.add_argument("-o", "--output", choices=["text", "json"], default="text",
                   help="text: the ten rows and a verdict; json: the answer as one object")
    c.set_defaults(func=lambda a: check(a.ticket, a.fleet, a.output))
    f = tsub.add_parser("from", help="the ticket an existing ModelDeployment/ModelService "
                                     "pair implies")
    f.add_argument("dir", help="a directory with a ModelDeployment and its ModelService")
    f.set_defaults(func=lambda a: ticket_from(a.dir))
    k = tsub.add_parser("compile", help="write the manifests deploy: true composes")
    k.add_argument("ticket", help="the InferenceTicket manifest (a file)")
    k.add_argument("-o", "--output", required=True, help="directory to write to")
    k.add_argument("--fleet", default=None, help="the fleet's manifests: needed when the "
                   "ticket names InferenceClasses or an overflow endpoint")
    k.set_defaults(func=lambda a: compile_ticket(a.ticket, a.output, a.fleet))
