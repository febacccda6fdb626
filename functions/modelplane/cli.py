"""The `modelplane` command: serve the function, render a fleet, validate manifests, eval CEL."""

from __future__ import annotations

import argparse
import logging
import os
import sys


def _serve(args: argparse.Namespace) -> int:
    from crossplane.function import runtime

    from modelplane import server

    logging.basicConfig(level=logging.DEBUG if args.debug else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    server.load_steps()
    tls_dir = args.tls_certs_dir or os.environ.get("TLS_SERVER_CERTS_DIR")
    creds = None if args.insecure else runtime.load_credentials(tls_dir) if tls_dir else None
    if creds is None and not args.insecure:
        print("error: no TLS certificates (--tls-certs-dir or TLS_SERVER_CERTS_DIR); "
              "pass --insecure to serve without TLS", file=sys.stderr)
        return 2
    logging.getLogger("modelplane.server").info("serving on %s", args.address)
    runner = server.FunctionRunner(workers=args.workers, deadline=args.deadline, processes=True)
    logging.getLogger("modelplane.server").info("%d worker processes, %gs step deadline",
                                                runner.workers, runner.deadline)
    runtime.serve(runner, args.address, creds=creds, insecure=args.insecure,
                  options=server.SERVER_OPTIONS)
    return 0


def _render(args: argparse.Namespace) -> int:
    if args.composition is not None:
        from modelplane.render.classic import classic_command

        return classic_command(args)
    from modelplane.render import render_command

    return render_command(args.paths, args.output, args.max_rounds)


def _validate(args: argparse.Namespace) -> int:
    from modelplane.validate import validate_command

    return validate_command(args.paths)


def _cel_eval(args: argparse.Namespace) -> int:
    from modelplane.cel.cli import eval_command

    return eval_command(args.expr, args.device)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="modelplane", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("serve", help="run the composition function server (what the package runs)")
    s.add_argument("--insecure", action="store_true", help="serve without TLS")
    s.add_argument("--address", default="0.0.0.0:9443", help="listen address (default %(default)s)")
    s.add_argument("--tls-certs-dir", default=None,
                   help="directory with tls.crt, tls.key, ca.crt (default $TLS_SERVER_CERTS_DIR)")
    s.add_argument("--debug", action="store_true", help="debug logging")
    s.add_argument("--workers", type=int, default=None,
                   help="requests served at once, each in a worker process (default "
                        "$MODELPLANE_WORKERS or 3 per core)")
    s.add_argument("--deadline", type=float, default=None,
                   help="seconds before a request ends as a Fatal result (default "
                        "$MODELPLANE_STEP_DEADLINE or 60)")
    s.set_defaults(func=_serve)

    r = sub.add_parser(
        "render",
        help="reconcile manifests locally through the real function server",
        description="modelplane render DIR... reconciles a whole fleet to a fixed point. "
                    "With --composition it behaves like `crossplane render XR COMPOSITION`.")
    r.add_argument("paths", nargs="+", help="manifest files or directories (or XR file in "
                                            "single-XR mode)")
    r.add_argument("-o", "--output", choices=["summary", "yaml", "json"], default="summary")
    r.add_argument("--max-rounds", type=int, default=30)
    r.add_argument("--composition", default=None,
                   help="single-XR mode: the Composition file (positional 2 works too)")
    r.add_argument("--observed-resources", "-r", default=None)
    r.add_argument("--required-resources", "-e", "--extra-resources", default=None)
    r.add_argument("--context-files", default=None, help="key=file[,key=file]")
    r.add_argument("--include-function-results", "-x", action="store_true")
    r.add_argument("--include-full-xr", action="store_true")
    r.set_defaults(func=_render)

    v = sub.add_parser("validate", help="validate manifests like the API server would on create")
    v.add_argument("paths", nargs="+")
    v.set_defaults(func=_validate)

    c = sub.add_parser("cel", help="DRA device-selector CEL tools")
    csub = c.add_subparsers(dest="cel_command", required=True)
    e = csub.add_parser("eval", help="evaluate a selector against one device")
    e.add_argument("--device", default=None, help="YAML/JSON file with one InferenceClass device")
    e.add_argument("expr")
    e.set_defaults(func=_cel_eval)
    return p


def main(argv: list[str] | None = None) -> int:
    # gRPC's C core logs connection teardown at INFO; keep the CLI's output to what it prints.
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    args = parser().parse_args(argv)
    # `modelplane render xr.yaml composition.yaml` (classic two-positional form).
    if args.command == "render" and args.composition is None and len(args.paths) == 2 and (
            args.observed_resources or args.required_resources or args.context_files
            or args.include_function_results or args.include_full_xr
            or _looks_like_composition(args.paths[1])):
        args.composition = args.paths[1]
        args.paths = args.paths[:1]
    rc: int = args.func(args)
    return rc


def _looks_like_composition(path: str) -> bool:
    try:
        with open(path) as f:
            head = f.read(4096)
    except OSError:
        return False
    return "kind: Composition\n" in head and "kind: CompositeResourceDefinition" not in head


if __name__ == "__main__":
    sys.exit(main())
