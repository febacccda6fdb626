"""The fault matrix: every step of every XR of the example fleets, one fault at a time.

Crossplane deletes whatever a function stops returning, so the rule pinned here is DESIGN §5's
safety model: with an input unresolved, missing, empty or semantically invalid, a step keeps
every composed resource that runs, reports the cause, and never returns a Fatal result.

Dimensions (see docs/reliability.md):

- fleets: the five converged example fleets below, rendered once per test module;
- XRs: every Modelplane XR of every kind in them;
- steps: every pipeline step of each XR's Composition (the fault reaches that step only);
- faults: ``unresolved`` (every set, then each set on its own, never answered: the first call of
  Crossplane's requirements loop), ``missing`` (one set answered empty, for each set name),
  ``empty`` (every set answered empty), and the ``invalid`` table (spec edits and altered
  answers that the schema accepts but that are semantically wrong).

Recovery (apply a fault to a rendered fleet's JSON output, render, remove it, render again:
the fleet returns to where it was) is at the end of the module.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from modelplane.common.output import to_json
from modelplane.render import Fleet, render_fleet
from modelplane.render.providers import HEALTH_ANNOTATION
from modelplane.step import Selector

from tests.reliability.harness import (
    Outcome,
    Resolver,
    replay,
    requirements_of,
    steps_of,
    store_resolver,
    xrs,
)

REPO = Path(__file__).resolve().parents[2]
FLEETS = ["quickstart", "multi-cloud", "canary-fallback", "multi-node", "disaggregated"]
Obj = dict[str, Any]
ALL_KINDS = {"InferenceClass", "InferenceCluster", "InferenceGateway", "ModelCache",
             "ModelDeployment", "ModelReplica", "ModelEndpoint", "ModelService", "Secret"}

# -- exceptions: drops the spec (or the fault's meaning) asks for ---------------------------------
#
# (kind, step, fault prefix, composed resource name) -> why dropping it is what the spec asks.
# A fault name matches when it starts with the prefix; the resource name is matched exactly.
EXPECTED_DROPS: dict[tuple[str, str, str, str], str] = {
    ("InferenceCluster", "compose-cluster", "missing:replicas", "protect-hosted-replicas"):
        "the ClusterUsage only guards deleting a cluster that hosts replicas; an answer of no "
        "replicas is indistinguishable from 'none run here', and removing the guard stops "
        "nothing that serves (the replicas themselves are untouched)",
    ("InferenceCluster", "compose-cluster", "empty", "protect-hosted-replicas"):
        "as above: the deletion guard follows the replica list; nothing that serves is dropped",
}


def allowed_drop(kind: str, step: str, fault: str, rname: str) -> bool:
    return any(k == kind and s == step and fault.startswith(f) and r == rname
               for (k, s, f, r) in EXPECTED_DROPS)


# -- the converged fleets -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fleets() -> dict[str, Fleet]:
    return {name: render_fleet([REPO / "examples" / name]) for name in FLEETS}


def describe_xr(xr: Obj) -> str:
    meta = xr["metadata"]
    ns = f"{meta['namespace']}/" if meta.get("namespace") else ""
    return f"{xr['kind']} {ns}{meta['name']}"


# -- faults ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One fault injected into one step of one XR."""

    fault: str
    xr: Obj
    step: str
    resolve: Resolver
    # Text one of which a condition or warning must contain (empty: only no-drop is required).
    causes: tuple[str, ...] = ()


def answer_empty(names: set[str] | None, base: Resolver) -> Resolver:
    def resolve(name: str, sel: Selector) -> list[Obj] | None:
        return [] if names is None or name in names else base(name, sel)
    return resolve


def answer_never(names: set[str] | None, base: Resolver) -> Resolver:
    def resolve(name: str, sel: Selector) -> list[Obj] | None:
        return None if names is None or name in names else base(name, sel)
    return resolve


def answer_altered(kind: str, alter: Callable[[Obj], Obj | None], base: Resolver) -> Resolver:
    """Answer from the store, with every object of ``kind`` altered (None: left out)."""
    def resolve(name: str, sel: Selector) -> list[Obj] | None:
        got = base(name, sel)
        if got is None or sel.kind != kind:
            return got
        return [a for a in (alter(copy.deepcopy(o)) for o in got) if a is not None]
    return resolve


def not_ready(obj: Obj) -> Obj:
    """The object with its Ready condition turned False (a cluster that went NotReady)."""
    conds = [c for c in (obj.get("status") or {}).get("conditions") or []
             if c.get("type") != "Ready"]
    conds.append({"type": "Ready", "status": "False", "reason": "Unavailable",
                  "message": "injected: cluster unreachable"})
    obj.setdefault("status", {})["conditions"] = conds
    for pool in obj["status"].get("pools") or []:
        pool["ready"] = False
    return obj


def set_path(obj: Obj, path: list[Any], value: Any) -> bool:
    """Set obj[path] = value when every parent on the path exists; True when it did."""
    cur: Any = obj
    for key in path[:-1]:
        try:
            cur = cur[key]
        except (KeyError, IndexError, TypeError):
            return False
    if isinstance(cur, dict) or (isinstance(cur, list) and path[-1] < len(cur)):
        cur[path[-1]] = value
        return True
    return False


SpecEdit = tuple[str, list[Any], Any, tuple[str, ...]]  # (name, path in xr, value, causes)

# Schema-valid, semantically wrong spec edits, per kind. The causes are the texts a reported
# condition or warning must contain (the bad value, or the field named).
SPEC_EDITS: dict[str, list[SpecEdit]] = {
    "InferenceCluster": [
        ("unknown-class", ["spec", "nodePools", 0, "className"], "no-such-class",
         ("no-such-class",)),
    ],
    "ModelDeployment": [
        ("bad-cel", ["spec", "engines", 0, "members", 0, "nodeSelector", "devices", 0,
                     "selectors"], [{"cel": "device.capacity["}], ("device.capacity[",)),
        ("selector-matches-nothing", ["spec", "clusterSelector"],
         {"matchLabels": {"modelplane.ai/region": "nowhere"}}, ("nowhere", "clusterSelector")),
    ],
    "ModelReplica": [
        ("unknown-pool", ["spec", "engines", 0, "members", 0, "pool"], "no-such-pool",
         ("no-such-pool",)),
    ],
    "ModelCache": [
        ("selector-matches-nothing", ["spec", "clusterSelector"],
         {"matchLabels": {"modelplane.ai/region": "nowhere"}}, ("nowhere", "clusterSelector")),
    ],
    "ModelService": [
        ("unknown-gateway", ["spec", "gatewayRef"], {"name": "no-such-gateway"},
         ("no-such-gateway",)),
        ("endpoints-match-nothing", ["spec", "endpoints", 0, "selector"],
         {"matchLabels": {"modelplane.ai/deployment": "no-such-deployment"}},
         ("no-such-deployment", "endpoints")),
    ],
    "InferenceClass": [
        ("provider-block-missing", ["spec", "provisioning", "provider"], "AKS", ("aks",)),
    ],
    "ModelEndpoint": [
        ("url-not-a-url", ["spec", "url"], "not a url", ("not a url",)),
    ],
}

# Spec edits whose drops the spec asks for: (kind, fault) -> why.
SPEC_ASKS_REMOVAL: dict[tuple[str, str], str] = {
    ("ModelCache", "selector-matches-nothing"):
        "a cache is hydrated on the clusters its clusterSelector matches; narrowing the "
        "selector is how a user removes the cache from a cluster",
}


def cases_for(fleet: Fleet, mode: str) -> Iterator[Case]:
    """Every case of one fault mode over every XR and step of ``fleet``."""
    base = store_resolver(fleet)
    for xr in xrs(fleet):
        for step in steps_of(fleet, xr):
            sets = requirements_of(fleet, xr, step)
            names = sorted(sets)
            if mode == "unresolved":
                if names:
                    yield Case("unresolved", xr, step, answer_never(None, base))
                for n in names:
                    yield Case(f"unresolved:{n}", xr, step, answer_never({n}, base))
            elif mode == "missing":
                for n in names:
                    causes = (n, sets[n].kind, sets[n].match_name or "")
                    yield Case(f"missing:{n}", xr, step, answer_empty({n}, base),
                               tuple(c for c in causes if c))
            elif mode == "empty":
                if names:
                    # Every input is gone: naming any one of them names the cause.
                    kinds = tuple(sorted({s.kind for s in sets.values()} | ALL_KINDS))
                    yield Case("empty", xr, step, answer_empty(None, base), kinds + tuple(names))
            elif mode == "invalid":
                yield from invalid_cases(fleet, xr, step, sets, base)


def invalid_cases(fleet: Fleet, xr: Obj, step: str, sets: dict[str, Selector],
                  base: Resolver) -> Iterator[Case]:
    for fault, path, value, causes in SPEC_EDITS.get(xr["kind"], []):
        edited = copy.deepcopy(xr)
        if set_path(edited, path, value):
            yield Case(f"invalid:{fault}", edited, step, base, causes)
    kinds = {s.kind for s in sets.values()}
    if "InferenceCluster" in kinds:
        yield Case("invalid:cluster-not-ready", xr, step,
                   answer_altered("InferenceCluster", not_ready, base),
                   ("NotReady", "not ready", "Ready"))
    if "Secret" in kinds:
        yield Case("invalid:deleted-secret", xr, step,
                   answer_altered("Secret", lambda _: None, base), ("Secret", "secret"))
    if "InferenceClass" in kinds:
        yield Case("invalid:class-deleted", xr, step,
                   answer_altered("InferenceClass", lambda _: None, base),
                   ("InferenceClass", "class"))


# Faults the `place` step survives (nothing dropped) but does not report yet. The placement
# code belongs to another change in flight; each gap is pinned by an xfail regression test in
# test_regressions.py, and the matrix still asserts no Fatal and no drop for these cases.
PLACEMENT_GAPS = ("missing:classes", "invalid:class-deleted", "missing:cluster.",
                  "invalid:cluster-not-ready")


def known_placement_gap(case: Case) -> bool:
    return case.step == "place" and case.fault.startswith(PLACEMENT_GAPS)


def check(case: Case, fleet: Fleet) -> list[str]:
    """The rule violations of one case (empty when the step behaved)."""
    where = f"{describe_xr(case.xr)} step {case.step} fault {case.fault}"
    out: Outcome = replay(fleet, case.xr, case.resolve, only_step=case.step)
    if out.fatal is not None:
        return [f"{where}: Fatal: {out.fatal}"]
    bad: list[str] = []
    fault = case.fault.removeprefix("invalid:")
    if (case.xr["kind"], fault) not in SPEC_ASKS_REMOVAL:
        dropped = [r for r in out.dropped
                   if not allowed_drop(case.xr["kind"], case.step, case.fault, r)]
        if dropped:
            bad.append(f"{where}: dropped running resources {dropped}")
    if case.causes and not known_placement_gap(case):
        text = "\n".join(out.problems())
        if not any(c.lower() in text.lower() for c in case.causes):
            bad.append(f"{where}: no condition or warning names the cause (any of "
                       f"{list(case.causes)}); reported: {out.problems() or 'nothing'}")
    return bad


# -- the matrix -----------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["unresolved", "missing", "empty", "invalid"])
@pytest.mark.parametrize("fleet_name", FLEETS)
def test_a_fault_never_drops_what_runs_and_names_its_cause(
        fleets: dict[str, Fleet], fleet_name: str, mode: str) -> None:
    fleet = fleets[fleet_name]
    cases = list(cases_for(fleet, mode))
    problems = [p for c in cases for p in check(c, fleet)]
    assert problems == [], "\n".join(problems)


def test_the_matrix_reaches_every_kind_and_step(fleets: dict[str, Fleet]) -> None:
    """Guards the matrix itself: every kind and step of the examples is exercised."""
    kinds: set[str] = set()
    steps: set[str] = set()
    for fleet in fleets.values():
        for xr in xrs(fleet):
            kinds.add(xr["kind"])
            steps.update(steps_of(fleet, xr))
    assert kinds >= {"InferenceClass", "InferenceCluster", "InferenceGateway", "ModelCache",
                     "ModelDeployment", "ModelReplica", "ModelEndpoint", "ModelService"}
    assert steps >= {"compose-class", "compose-cluster", "compose-gateway", "compose-cache",
                     "place", "compose-deployment", "compose-replica", "compose-endpoint",
                     "compose-service"}


def count_cases(fleets: dict[str, Fleet]) -> dict[str, int]:
    """How many cases each mode runs (reported in docs/reliability.md)."""
    return {mode: sum(len(list(cases_for(f, mode))) for f in fleets.values())
            for mode in ("unresolved", "missing", "empty", "invalid")}


# -- recovery: fault, render, heal, render: the same fleet ----------------------------------------


def state(objs: list[Obj]) -> dict[str, Any]:
    """What must come back after a fault heals: every object's identity, labels and spec, and
    every condition's type/status/reason (timestamps and messages ignored)."""
    out: dict[str, Any] = {}
    for o in objs:
        meta = o.get("metadata") or {}
        key = f"{o.get('apiVersion')}/{o.get('kind')}/{meta.get('namespace', '')}/{meta['name']}"
        conds = sorted((c.get("type"), c.get("status"), c.get("reason"))
                       for c in (o.get("status") or {}).get("conditions") or [])
        out[key] = {"labels": meta.get("labels"), "spec": o.get("spec"),
                    "data": o.get("data"), "conditions": conds}
    return out


Edit = Callable[[list[Obj]], list[Obj]]


def find(objs: list[Obj], kind: str, name: str | None = None) -> Obj:
    return next(o for o in objs if o.get("kind") == kind
                and (name is None or o["metadata"]["name"] == name))


def spec_edit(kind: str, path: list[Any], value: Any) -> Edit:
    def edit(objs: list[Obj]) -> list[Obj]:
        assert set_path(find(objs, kind), path, value)
        return objs
    return edit


def delete(kind: str, name: str | None = None) -> Edit:
    def edit(objs: list[Obj]) -> list[Obj]:
        gone = find(objs, kind, name)
        return [o for o in objs if o is not gone]
    return edit


def unhealthy(kind: str) -> Edit:
    def edit(objs: list[Obj]) -> list[Obj]:
        find(objs, kind)["metadata"].setdefault("annotations", {})[HEALTH_ANNOTATION] = \
            "Unhealthy"
        return objs
    return edit


# (fleet, fault name, edit). The heal is "put the original objects back" (the fault edits one
# object; every other object keeps what the faulted render made of it).
RECOVERY: list[tuple[str, str, Edit]] = [
    ("quickstart", "InferenceClass deleted", delete("InferenceClass")),
    ("quickstart", "InferenceCluster pool class unknown",
     spec_edit("InferenceCluster", ["spec", "nodePools", 0, "className"], "no-such-class")),
    ("quickstart", "InferenceCluster NotReady (provider unhealthy)", unhealthy("InferenceCluster")),
    ("quickstart", "ModelDeployment bad CEL",
     spec_edit("ModelDeployment", ["spec", "engines", 0, "members", 0, "nodeSelector",
                                   "devices", 0, "selectors"], [{"cel": "device.capacity["}])),
    ("quickstart", "ModelReplica unknown pool",
     spec_edit("ModelReplica", ["spec", "engines", 0, "members", 0, "pool"], "no-such-pool")),
    ("quickstart", "InferenceGateway unhealthy", unhealthy("InferenceGateway")),
    ("quickstart", "ModelService unknown gateway",
     spec_edit("ModelService", ["spec", "gatewayRef"], {"name": "no-such-gateway"})),
    ("canary-fallback", "ModelEndpoint Secret deleted", delete("Secret", "together-api-key")),
    ("canary-fallback", "ModelEndpoint unhealthy", unhealthy("ModelEndpoint")),
    ("multi-node", "ModelCache token Secret deleted", delete("Secret", "hf-token")),
]


@pytest.mark.parametrize(("fleet_name", "fault", "edit"), RECOVERY,
                         ids=[f"{f}:{n}" for f, n, _ in RECOVERY])
def test_a_fleet_returns_to_its_state_once_the_fault_is_removed(
        fleets: dict[str, Fleet], tmp_path: Path, fleet_name: str, fault: str,
        edit: Edit) -> None:
    before: list[Obj] = json.loads(to_json(fleets[fleet_name].objects()))
    faulted_in = edit(copy.deepcopy(before))
    (tmp_path / "faulted.json").write_text(json.dumps(faulted_in))
    faulted = json.loads(to_json(render_fleet([tmp_path / "faulted.json"]).objects()))

    assert state(faulted) != state(before), f"{fault}: the fault changed nothing visible"

    # Heal: the objects the user edited or deleted come back as they were.
    def key(o: Obj) -> tuple[str, str, str]:
        return (str(o.get("kind")), o["metadata"].get("namespace", ""), o["metadata"]["name"])
    edited = {key(o) for o in before} - {key(o) for o in faulted_in} | {
        key(o) for o in faulted_in if o != next((b for b in before if key(b) == key(o)), None)}
    originals = {key(o): o for o in before}
    healed_in = [o for o in faulted if key(o) not in edited] + [
        copy.deepcopy(originals[k]) for k in sorted(edited) if k in originals]
    (tmp_path / "healed.json").write_text(json.dumps(healed_in))
    healed = json.loads(to_json(render_fleet([tmp_path / "healed.json"]).objects()))

    want, got = state(before), state(healed)
    assert sorted(got) == sorted(want), f"{fault}: objects differ after healing"
    diff = [k for k in sorted(want) if want[k] != got[k]]
    assert diff == [], f"{fault}: not back to the converged state: " + "; ".join(
        f"{k}: {want[k]} != {got[k]}" for k in diff[:3])
