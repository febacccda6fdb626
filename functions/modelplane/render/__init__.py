"""`modelplane render`: the whole fleet reconciled locally through the real function server."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from modelplane.common.output import to_json, yaml_stream
from modelplane.contract.api import GROUP
from modelplane.render.engine import Engine, LocalFunctionServer, RenderError
from modelplane.render.loader import InputError, load
from modelplane.render.store import Obj, Store, describe, key_of
from modelplane.render.summary import summarize

__all__ = ["Fleet", "InputError", "RenderError", "render_command", "render_fleet"]


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


def render_fleet(paths: list[Path], max_rounds: int = 30,
                 extra: list[Path] | None = None, concurrency: int = 1,
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
        rounds = engine.run(max_rounds)
    finally:
        client.close()
        fn.stop()
    return Fleet(store, engine, rounds)


def render_command(paths: list[str], output: str = "summary", max_rounds: int = 30,
                   concurrency: int = 1, seed: int | None = None) -> int:
    """Render a directory of manifests; print it; exit non-zero on input errors or divergence."""
    try:
        fleet = render_fleet([Path(p) for p in paths], max_rounds, concurrency=concurrency,
                             seed=seed)
    except (InputError, RenderError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    # Everything is computed before the first byte is written: nothing half-written on error.
    if output == "json":
        text = to_json(fleet.objects())
    elif output == "yaml":
        text = yaml_stream(fleet.objects())
    else:
        text = summarize(fleet)
    sys.stdout.write(text)
    return 0
