"""The `modelplane` command: serve the function, render a fleet, validate manifests, eval CEL."""

from __future__ import annotations

import argparse
import logging
import os
import sys

RENDER_EXIT_CODES = """exit codes:
  0  the fleet converged (with --fail-on-unready: and every Modelplane object is Ready)
  1  bad input (YAML, admission) or no fixed point
  2  the command line is wrong
  3  --fail-on-unready: an object is not Ready (the summary's Problems say why)"""

RENDER_XR_EPILOG = """Takes `crossplane render`'s arguments and flags, for a pipeline of
function-modelplane steps only, without Docker. To run the real `crossplane render`
instead, serve the function locally and point the Function at it:

  modelplane serve --insecure --address 127.0.0.1:9443 &
  # functions.yaml: kind Function, name function-modelplane, annotations
  #   render.crossplane.io/runtime: Development
  #   render.crossplane.io/runtime-development-target: 127.0.0.1:9443
  crossplane render xr.yaml composition.yaml functions.yaml

exit codes: 0 rendered; 1 bad input or a fatal result; 2 the command line is wrong"""


def version() -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as package_version

    try:
        return package_version("modelplane")
    except PackageNotFoundError:  # running from a source tree that is not installed
        return "0+unknown"


def _serve(args: argparse.Namespace) -> int:
    from crossplane.function import runtime

    from modelplane import metrics, server

    level = logging.DEBUG if args.debug else logging.INFO
    if args.log_format == "json":
        handler = logging.StreamHandler()
        handler.setFormatter(metrics.JSONFormatter())
        logging.basicConfig(level=level, handlers=[handler])
    else:
        logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    server.load_steps()
    if args.metrics_address:
        metrics.serve_metrics(args.metrics_address)
        logging.getLogger("modelplane.server").info("metrics on %s/metrics", args.metrics_address)
    tls_dir = args.tls_certs_dir or os.environ.get("TLS_SERVER_CERTS_DIR")
    creds = None if args.insecure else runtime.load_credentials(tls_dir) if tls_dir else None
    if creds is None and not args.insecure:
        print("error: no TLS certificates (--tls-certs-dir or TLS_SERVER_CERTS_DIR); "
              "pass --insecure to serve without TLS", file=sys.stderr)
        return 2
    logging.getLogger("modelplane.server").info("serving on %s", args.address)
    runner = server.FunctionRunner(workers=args.workers, deadline=args.deadline, processes=True)
    runner.prestart()  # every worker started and warmed up before the port opens
    logging.getLogger("modelplane.server").info("%d worker processes, %gs step deadline",
                                                runner.workers, runner.deadline)
    runtime.serve(runner, args.address, creds=creds, insecure=args.insecure,
                  options=server.SERVER_OPTIONS)
    return 0


def _render(args: argparse.Namespace) -> int:
    from modelplane.render import render_command

    return render_command(args.paths, args.output, args.max_rounds,
                          fail_on_unready=args.fail_on_unready,
                          concurrency=args.concurrency, seed=args.seed)


def _render_xr(args: argparse.Namespace) -> int:
    from modelplane.render.classic import classic_command

    return classic_command(args)


def _trace(args: argparse.Namespace) -> int:
    from modelplane.render import trace_command

    return trace_command(args.paths, args.resource, args.namespace, args.max_rounds)


def _validate(args: argparse.Namespace) -> int:
    from modelplane.validate import validate_command

    return validate_command(args.paths, output=args.output, strict=args.strict)


def _cel_eval(args: argparse.Namespace) -> int:
    from modelplane.cel.cli import eval_command

    return eval_command(args.expr, args.device)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="modelplane", description=__doc__)
    p.add_argument("--version", action="version", version=f"modelplane {version()}",
                   help="print the version and exit")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = sub.add_parser("serve", help="run the composition function server (what the package runs)")
    s.add_argument("--insecure", action="store_true", help="serve without TLS")
    s.add_argument("--address", default="0.0.0.0:9443", help="listen address (default %(default)s)")
    s.add_argument("--tls-certs-dir", default=None,
                   help="directory with tls.crt, tls.key, ca.crt (default $TLS_SERVER_CERTS_DIR)")
    s.add_argument("--debug", action="store_true", help="debug logging")
    s.add_argument("--metrics-address", metavar="HOST:PORT",
                   default=os.environ.get("MODELPLANE_METRICS_ADDRESS", ""),
                   help="serve Prometheus /metrics here (default $MODELPLANE_METRICS_ADDRESS, "
                        "which the image sets to 0.0.0.0:8080, the port Crossplane's function "
                        "Deployment names 'metrics'; empty: off)")
    s.add_argument("--log-format", choices=["text", "json"], default="text",
                   help="text, or one JSON object per line (default %(default)s)")
    s.add_argument("--workers", type=int, default=None,
                   help="requests served at once, each in a worker process (default "
                        "$MODELPLANE_WORKERS or 3 per core)")
    s.add_argument("--deadline", type=float, default=None,
                   help="seconds before a request ends as a Fatal result (default "
                        "$MODELPLANE_STEP_DEADLINE or 60)")
    s.set_defaults(func=_serve)

    r = sub.add_parser(
        "render", help="reconcile a whole fleet locally through the real function server",
        description="Reconciles every manifest given (a fleet: platform and models) to a fixed "
                    "point, the way Crossplane and the providers would, and prints it. Its own "
                    "-o json/yaml output is valid input.",
        epilog=RENDER_EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter)
    r.add_argument("paths", nargs="+", metavar="PATH",
                   help="manifest files or directories (every .yaml/.yml/.json below)")
    r.add_argument("-o", "--output", choices=["summary", "yaml", "json", "tree", "html"],
                   default="summary",
                   help="summary: problems first, then one line per cluster, deployment, cache "
                        "and service; yaml/json: every object; tree: every XR and what it "
                        "composes (as `modelplane trace`); html: one self-contained page of the "
                        "fleet (default %(default)s)")
    r.add_argument("--max-rounds", type=int, default=30, metavar="N",
                   help="give up when nothing settles after N rounds (default %(default)s)")
    r.add_argument("--fail-on-unready", action="store_true",
                   help="exit 3 when a Modelplane object is not Ready after convergence (for CI)")
    r.add_argument("--concurrency", type=int, default=1, metavar="N",
                   help="XRs reconciled at once from one snapshot, none seeing another's writes "
                        "(Crossplane reconciles concurrently from its cache; default %(default)s)")
    r.add_argument("--seed", type=int, default=None, metavar="S",
                   help="shuffle the reconcile and apply order each round with this seed "
                        "(Crossplane promises no order)")
    r.set_defaults(func=_render)

    x = sub.add_parser(
        "render-xr", help="one pipeline run for one XR, like `crossplane render`",
        description="Runs a Composition's pipeline once for one composite resource and prints "
                    "the XR, the desired composed resources and (with -r) the function results "
                    "as a YAML stream, as `crossplane render` does.",
        epilog=RENDER_XR_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    x.add_argument("xr", metavar="COMPOSITE_RESOURCE", help="a YAML file with the XR")
    x.add_argument("composition", metavar="COMPOSITION", help="a YAML file with the Composition")
    x.add_argument("functions", metavar="FUNCTIONS", nargs="?", default=None,
                   help="a YAML file or directory with the Function(s) the pipeline names; "
                        "every step must be function-modelplane's")
    x.add_argument("-r", "--include-function-results", action="store_true",
                   help="include the results (events) the function returned")
    x.add_argument("-x", "--include-full-xr", action="store_true",
                   help="include the XR's spec and metadata, not only its name and status")
    x.add_argument("-o", "--observed-resources", default=None, metavar="PATH",
                   help="YAML file or directory of observed composed resources")
    x.add_argument("-e", "--required-resources", "--extra-resources", default=None,
                   dest="required_resources", metavar="PATH",
                   help="YAML file or directory of resources the function may require")
    x.add_argument("--context-files", action="append", default=None, metavar="KEY=FILE",
                   help="pipeline context: a JSON file under a key (repeatable; "
                        "'k1=f1;k2=f2' also works)")
    x.set_defaults(func=_render_xr)

    t = sub.add_parser(
        "trace", help="an XR and everything it composes, recursively, with Synced/Ready",
        description="Renders the manifests (a rendered -o json/yaml state re-renders to itself) "
                    "and prints each selected XR as a tree of what it composes, with Synced, "
                    "Ready and the first condition that is not True, as `crossplane resource "
                    "trace` does on a control plane.",
        epilog="exit codes: 0 printed; 1 bad input, or nothing matches RESOURCE; 2 the "
               "command line is wrong", formatter_class=argparse.RawDescriptionHelpFormatter)
    t.add_argument("paths", nargs="+", metavar="PATH",
                   help="manifest files or directories, or a rendered state")
    t.add_argument("-r", "--resource", default=None, metavar="KIND[/NAME]",
                   help="what to trace, e.g. modeldeployment/qwen-demo (default: every "
                        "Modelplane object nothing else composes)")
    t.add_argument("-n", "--namespace", default=None,
                   help="only objects in this namespace (cluster-scoped ones always match)")
    t.add_argument("--max-rounds", type=int, default=30, metavar="N",
                   help="give up when nothing settles after N rounds (default %(default)s)")
    t.set_defaults(func=_trace)

    from modelplane.validate.command import EXIT_CODES

    v = sub.add_parser(
        "validate", help="validate manifests like the API server would on create",
        description="Admission offline: the XRD schema and CEL rules, DRA selectors compiled "
                    "by Modelplane's CEL engine, pod templates against Kubernetes' schema, and "
                    "references between the validated objects. One line per problem "
                    "(file:line), then a summary.",
        epilog=EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter)
    v.add_argument("paths", nargs="+", metavar="PATH",
                   help="manifest files or directories (every .yaml/.yml below)")
    v.add_argument("-o", "--output", choices=["text", "json"], default="text",
                   help="text: one line per problem and a summary; json: one document")
    v.add_argument("--strict", action="store_true",
                   help="fail on warnings too (references to objects not validated)")
    v.set_defaults(func=_validate)

    c = sub.add_parser("cel", help="DRA device-selector CEL tools")
    csub = c.add_subparsers(dest="cel_command", required=True, metavar="COMMAND")
    e = csub.add_parser("eval", help="evaluate a selector against one device")
    e.add_argument("--device", default=None, metavar="FILE",
                   help="YAML/JSON file with one InferenceClass device (default: a device "
                        "with no attributes or capacity)")
    e.add_argument("expr", metavar="EXPR",
                   help="the CEL expression, e.g. 'device.capacity[\"gpu.nvidia.com\"]"
                        ".memory.compareTo(quantity(\"20Gi\")) >= 0'")
    e.set_defaults(func=_cel_eval)

    from modelplane.cli_ticket import add_parser as add_ticket

    add_ticket(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    # gRPC's C core logs connection teardown at INFO; keep the CLI's output to what it prints.
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    args = parser().parse_args(argv)
    rc: int = args.func(args)
    return rc


if __name__ == "__main__":
    sys.exit(main())
