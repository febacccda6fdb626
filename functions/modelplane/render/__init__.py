"""`modelplane render`: the whole fleet reconciled locally through the real function server."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any, TextIO

from modelplane.common.output import to_json, yaml_stream
from modelplane.contract.api import GROUP
from modelplane.render import views
from modelplane.render.engine import Engine, LocalFunctionServer, RenderError
from modelplane.render.loader import InputError, load
from modelplane.render.store import Obj, Store, describe, key_of
from modelplane.render.summary import summarize

__all__ = ["Fleet", "InputError", "Progress", "RenderError", "render_command", "render_fleet",
           "trace_command"]


def package_dirs() -> tuple[Path, Path]:
    """The project's own apis/ and compositions/ (repo checkout, else installed package data)."""
    root = Path(__file__).resolve().parents[3]
    if (root / "apis").is_dir() and (root / "compositions").is_dir():
        return root / "apis", root / "compositions"
    data = Path(__file__).resolve().parents[1] / "_package"
    return data / "apis", data / "compositions"


class Fleet:
    """A rendered fleet: the store after convergence, plus what happened on the way."""

    def __init__(self, store: Store, engine: Engine, rounds: int) -> None:
        self.store = store
        self.engine = engine
        self.rounds = rounds

    def objects(self) -> list[Obj]:
        return [o for _, o in self.store.items()]

    def get(self, kind: str, name: str, namespace: str = "") -> Obj | None:
        for (_, k, ns, n), obj in self.store.items():
            if k == kind and n == name and ns == namespace:
                return obj
        return None

    def of_kind(self, kind: str) -> list[Obj]:
        return [o for (_, k, _, _), o in self.store.items() if k == kind]


def _admit(objects: list[tuple[str, Obj]], our_kinds: set[tuple[str, str]]) -> list[Obj]:
    """Apply XRD defaults and admission rules to our kinds, as the API server would on create."""
    from modelplane import validate

    registry = validate.default_registry()
    out: list[Obj] = []
    errors: list[str] = []
    for where, obj in objects:
        group = str(obj.get("apiVersion", "")).split("/", 1)[0]
        if (group, obj.get("kind")) in our_kinds and registry.xrd_for(
                str(obj["apiVersion"]), str(obj["kind"])) is not None:
            admitted, errs = validate.admit(obj, registry)
            errors.extend(f"{where}: {obj['kind']}/{obj['metadata']['name']}: {e.path}: "
                          f"{e.message}" for e in errs)
            out.append(admitted)
        else:
            out.append(obj)
    if errors:
        raise InputError("\n".join(errors))
    return out


class Progress:
    """Progress on stderr once a render has taken longer than a second (quiet before, so
    quick renders and tests print nothing): the round, the object count, what still changes."""

    DELAY = 1.0

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.start = time.monotonic()
        self.shown = False

    def __call__(self, rnd: int, objects: int, changed: list[str]) -> None:
        if time.monotonic() - self.start < self.DELAY:
            return
        self.shown = True
        first = changed[0] if changed else ""
        more = f" and {len(changed) - 1} more" if len(changed) > 1 else ""
        print(f"render: round {rnd}: {objects} objects, {len(changed)} changed "
              f"({first}{more})", file=self.stream, flush=True)

    def done(self, rounds: int) -> None:
        if self.shown:
            print(f"render: converged after {rounds} rounds in "
                  f"{time.monotonic() - self.start:.1f}s", file=self.stream, flush=True)


def render_fleet(paths: list[Path], max_rounds: int = 30,
                 extra: list[Path] | None = None,
                 progress: Progress | None = None, concurrency: int = 1,
                 seed: int | None = None) -> Fleet:
    """Load manifests, reconcile to a fixed point, and return the fleet. Raises on bad input."""
    apis, comps = package_dirs()
    base = load([apis, comps], frozenset({GROUP}))
    user = load(list(paths) + list(extra or []), frozenset({GROUP}))
    xrds = base.xrds + user.xrds
    our_kinds = {((x.get("spec") or {}).get("group", ""),
                  ((x.get("spec") or {}).get("names") or {}).get("kind", "")) for x in xrds}
    store = Store()
    seen: dict[Any, str] = {}
    for where, obj in user.objects:
        key = key_of(obj)
        if key in seen:
            raise InputError(f"{where}: {describe(key)} is already defined in {seen[key]}")
        seen[key] = where
    for obj in _admit(user.objects, our_kinds):
        store.put(obj)
    fn = LocalFunctionServer()
    client = fn.client()
    try:
        engine = Engine(store, xrds, base.compositions + user.compositions, client,
                        concurrency=concurrency, seed=seed)
        rounds = engine.run(max_rounds, progress)
        if progress is not None:
            progress.done(rounds)
    finally:
        client.close()
        fn.stop()
    return Fleet(store, engine, rounds)


def render_command(paths: list[str], output: str = "summary", max_rounds: int = 30,
                   fail_on_unready: bool = False, concurrency: int = 1,
                   seed: int | None = None) -> int:
    """Render a directory of manifests and print it; exit codes as in the CLI's epilog."""
    from modelplane.render.summary import is_ready, ours

    try:
        fleet = render_fleet([Path(p) for p in paths], max_rounds, progress=Progress(),
                             concurrency=concurrency, seed=seed)
    except (InputError, RenderError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    # Everything is computed before the first byte is written: nothing half-written on error.
    if output == "json":
        text = to_json(fleet.objects())
    elif output == "yaml":
        text = yaml_stream(fleet.objects())
    elif output == "tree":
        text = views.tree(fleet)
    elif output == "html":
        text = views.page(fleet, f"Modelplane fleet: {', '.join(paths)}")
    else:
        text = summarize(fleet)
    sys.stdout.write(text)
    unready = [o for o in ours(fleet) if not is_ready(o)]
    if fail_on_unready and unready:
        print(f"error: {len(unready)} Modelplane object(s) not Ready: "
              + ", ".join(f"{o['kind']}/{o['metadata']['name']}" for o in unready[:5])
              + (" ..." if len(unready) > 5 else ""), file=sys.stderr)
        return 3
    return 0


def trace_command(paths: list[str], resource: str | None, namespace: str | None,
                  max_rounds: int = 30) -> int:
    """Print the tree of each selected XR (every root when none is named)."""
    try:
        fleet = render_fleet([Path(p) for p in paths], max_rounds, progress=Progress())
    except (InputError, RenderError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    start = None
    if resource is not None:
        start = views.find(fleet, resource, namespace)
        if not start:
            print(f"error: no Modelplane object matches {resource!r}"
                  + (f" in namespace {namespace}" if namespace else ""), file=sys.stderr)
            return 1
    elif namespace is not None:
        start = [o for o in views.roots(fleet)
                 if (o.get("metadata") or {}).get("namespace") in (namespace, None)]
    sys.stdout.write(views.tree(fleet, start))
    return 0
