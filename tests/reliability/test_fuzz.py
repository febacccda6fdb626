"""Fuzzing every step through the gRPC translation layer (``modelplane.server.run``).

XRs are generated from the XRD schemas in apis/ (types, enums, bounds, required fields), with
mutations outside them at any node (wrong types, nulls, negative numbers, huge and non-ASCII
strings, empty lists and maps, required fields removed). Observed composed resources and the
answers to required resources are real objects of a converged fleet, sometimes mutated,
sometimes empty or never answered.

The rules pinned (DESIGN §5 "Safety model"):

- ``server.run`` never raises, and bad input never becomes a Fatal result (a Fatal result is
  reserved for an unexpected internal error; bad input is a condition naming the field);
- the same request twice gives byte-identical responses;
- each call finishes within a generous ceiling (5 s; machines running this are shared, so this
  only catches runaway work such as an unbounded CEL evaluation, never a slowdown).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import crossplane.function.proto.v1.run_function_pb2 as fnv1
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from modelplane import server
from modelplane.render import Fleet, render_fleet
from modelplane.render.engine import RESOURCE_NAME_ANNOTATION
from modelplane.step import STEPS

REPO = Path(__file__).resolve().parents[2]
Obj = dict[str, Any]

server.load_steps()

# -- schemas -> strategies -------------------------------------------------------------------------


def xrd_schemas() -> dict[str, tuple[Obj, bool]]:
    """kind -> (openAPIV3Schema of the served version, namespaced)."""
    out: dict[str, tuple[Obj, bool]] = {}
    for path in sorted((REPO / "apis").glob("*/definition.yaml")):
        xrd = yaml.safe_load(path.read_text())
        spec = xrd["spec"]
        version = next(v for v in spec["versions"] if v.get("served", True))
        namespaced = spec.get("scope", "Namespaced") == "Namespaced"
        out[spec["names"]["kind"]] = (version["schema"]["openAPIV3Schema"], namespaced)
    return out


SCHEMAS = xrd_schemas()

JUNK: st.SearchStrategy[Any] = st.one_of(
    st.none(),
    st.integers(min_value=-(2**53), max_value=-1),
    st.booleans(),
    st.just(""),
    st.just("x" * 70_000),
    st.text(alphabet=st.characters(min_codepoint=0x80, max_codepoint=0x2FFF), max_size=8),
    st.just([]),
    st.just({}),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.just("device.capacity["),
)


def mutated(valid: st.SearchStrategy[Any], rate: int = 14) -> st.SearchStrategy[Any]:
    """``valid`` most of the time, a value outside the schema about once in ``rate`` draws."""
    return st.integers(0, rate - 1).flatmap(lambda i: JUNK if i == 0 else valid)


def _string(schema: Obj) -> st.SearchStrategy[Any]:
    lo = int(schema.get("minLength", 0))
    hi = min(int(schema.get("maxLength", 24)), max(lo, 24))
    alphabet = st.sampled_from("abcdefghijklmnopqrstuvwxyz0123456789-./=:\"[]() ")
    text = st.text(alphabet=alphabet, min_size=lo, max_size=hi)
    if schema.get("format") == "int-or-string" or schema.get("x-kubernetes-int-or-string"):
        return st.one_of(text, st.integers(0, 1000))
    # A few realistic values keep deeper code reachable (quantities, CEL, URLs, names).
    return st.one_of(text, st.sampled_from([
        "10Gi", "1", "gpu.nvidia.com", "https://example.com", "default", "main",
        'device.driver == "gpu.nvidia.com"', "device.capacity[\"gpu.nvidia.com\"].memory",
    ]).filter(lambda s: lo <= len(s) <= hi))


def from_schema(schema: Obj, depth: int = 0) -> st.SearchStrategy[Any]:
    """A strategy for values valid under an OpenAPI v3 (structural) schema, with mutations."""
    if "enum" in schema:
        return mutated(st.sampled_from(schema["enum"]))
    if schema.get("x-kubernetes-int-or-string"):
        return mutated(st.one_of(st.integers(0, 100), _string(schema)))
    typ = schema.get("type")
    if depth > 7:
        return st.just({} if typ == "object" else None)
    if typ == "object":
        props: Obj = schema.get("properties") or {}
        if not props:
            extra = schema.get("additionalProperties")
            if isinstance(extra, dict):
                return mutated(st.dictionaries(st.text(min_size=1, max_size=12),
                                               from_schema(extra, depth + 1), max_size=3))
            return mutated(st.dictionaries(st.text(min_size=1, max_size=8),
                                           st.one_of(st.text(max_size=8), st.integers()),
                                           max_size=2))
        required = [k for k in schema.get("required") or [] if k in props]
        base = st.fixed_dictionaries(
            {k: from_schema(props[k], depth + 1) for k in required},
            optional={k: from_schema(v, depth + 1) for k, v in props.items()
                      if k not in required},
        )
        # Outside the schema: a required field removed.
        dropped = base.flatmap(lambda d: st.sampled_from(sorted(d) or [""]).map(
            lambda k: {x: v for x, v in d.items() if x != k}))
        return mutated(st.integers(0, 19).flatmap(lambda i: dropped if i == 0 else base))
    if typ == "array":
        lo = int(schema.get("minItems", 0))
        hi = min(int(schema.get("maxItems", 3)), max(lo, 3))
        return mutated(st.lists(from_schema(schema.get("items") or {}, depth + 1),
                                min_size=lo, max_size=hi))
    if typ == "string":
        return mutated(_string(schema))
    if typ == "integer":
        lo, hi = schema.get("minimum", -5), schema.get("maximum", 1000)
        return mutated(st.integers(int(lo), int(min(hi, 10**6))))
    if typ == "number":
        return mutated(st.floats(schema.get("minimum", -5.0), schema.get("maximum", 1e6),
                                 allow_nan=False, width=32))
    if typ == "boolean":
        return mutated(st.booleans())
    # x-kubernetes-preserve-unknown-fields or untyped: small free-form data.
    return mutated(st.dictionaries(st.text(max_size=6), st.text(max_size=6), max_size=2))


def xr_strategy(kind: str) -> st.SearchStrategy[Obj]:
    schema, namespaced = SCHEMAS[kind]
    spec = from_schema((schema.get("properties") or {}).get("spec") or {"type": "object"})
    name = mutated(st.from_regex(r"[a-z][a-z0-9-]{0,20}[a-z0-9]", fullmatch=True), rate=20)

    def build(parts: tuple[Any, Any, Any]) -> Obj:
        n, s, labels = parts
        meta: Obj = {"name": n, "uid": "00000000-0000-0000-0000-000000000001",
                     "labels": labels}
        if namespaced:
            meta["namespace"] = "ml-team"
        return {"apiVersion": "modelplane.ai/v1alpha1", "kind": kind, "metadata": meta,
                "spec": s}
    labels = st.dictionaries(st.sampled_from(["modelplane.ai/region", "modelplane.ai/cluster",
                                              "modelplane.ai/deployment", "team"]),
                             st.sampled_from(["us-central", "eu", "x", ""]), max_size=2)
    return st.tuples(name, spec, labels).map(build)


# -- real inputs, mutated --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fleet() -> Fleet:
    """One converged fleet with every kind (multi-cloud's shapes plus multi-node's cache)."""
    return render_fleet([REPO / "examples" / "multi-node"],
                        extra=[REPO / "examples" / "canary-fallback" / "fallback.yaml"])


@st.composite
def mutate_obj(draw: st.DrawFn, obj: Obj) -> Obj:
    """The object, or the object with one node of its spec replaced by junk or removed.

    Only the spec is mutated: an API server validates what it stores against the kind's
    schema, and status and metadata are written by controllers, not users. A spec of a
    required or observed object can still be anything its author wrote (preserve-unknown
    manifests, older versions), so it is fair game.
    """
    out = copy.deepcopy(obj)
    if draw(st.integers(0, 2)) > 0 or not isinstance(out.get("spec"), dict):
        return out
    cur: Any = out["spec"]
    for _ in range(draw(st.integers(1, 6))):
        if isinstance(cur, dict) and cur:
            key = draw(st.sampled_from(sorted(cur)))
            if draw(st.booleans()) or not isinstance(cur[key], (dict, list)) or not cur[key]:
                if draw(st.booleans()):
                    del cur[key]
                else:
                    cur[key] = draw(JUNK)
                return out
            cur = cur[key]
        elif isinstance(cur, list) and cur:
            i = draw(st.integers(0, len(cur) - 1))
            if not isinstance(cur[i], (dict, list)) or not cur[i]:
                cur[i] = draw(JUNK)
                return out
            cur = cur[i]
        else:
            break
    return out


def answer(draw: Any, fleet: Fleet, sel: fnv1.ResourceSelector) -> list[Obj] | None:
    """An answer to one required-resource selector: never, empty, or real objects (mutated)."""
    mode = draw(st.sampled_from(["never", "empty", "match", "match", "match", "any"]))
    if mode == "never":
        return None
    if mode == "empty":
        return []
    which = sel.WhichOneof("match")
    ns = sel.namespace if sel.HasField("namespace") else None
    if mode == "match" and which == "match_name":
        objs = fleet.store.select(sel.api_version, sel.kind, name=sel.match_name,
                                  namespace=ns if ns is not None else "")
    elif mode == "match":
        objs = fleet.store.select(sel.api_version, sel.kind,
                                  labels=dict(sel.match_labels.labels), namespace=ns)
    else:
        objs = fleet.store.select(sel.api_version, sel.kind)
    return [draw(mutate_obj(o)) for o in objs[:6]]


def observed_of(fleet: Fleet, kind: str) -> dict[str, Obj]:
    """The composed resources of the fleet's first XR of ``kind``, by resource name."""
    xrs = fleet.of_kind(kind)
    if not xrs:
        return {}
    uid = xrs[0]["metadata"]["uid"]
    return {o["metadata"]["annotations"][RESOURCE_NAME_ANNOTATION]: o
            for o in fleet.store.owned_by(uid)}


def request(step: str, xr: Obj, observed: dict[str, Obj], context: Obj,
            required: dict[str, list[Obj]]) -> fnv1.RunFunctionRequest:
    return server.build_request(step, xr, observed, context, required)


def timed_run(req: fnv1.RunFunctionRequest) -> fnv1.RunFunctionResponse:
    """One call. Never raises: an exception here fails the test as it should.

    Time per call is bounded by construction, not asserted here (tests never assert timings on
    shared machines): CEL evaluation has a deterministic cost budget, every loop is over the
    request's own data, and `make bench` measures the cost of the largest fleets.
    """
    return server.run(req)


def fatal(rsp: fnv1.RunFunctionResponse) -> list[str]:
    return [r.message for r in rsp.results if r.severity == fnv1.SEVERITY_FATAL]




@pytest.mark.parametrize("step_name", sorted(STEPS))
@settings(max_examples=50, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                 HealthCheck.function_scoped_fixture,
                                 HealthCheck.filter_too_much])
@given(data=st.data())
def test_no_input_crashes_a_step_and_output_is_deterministic(
        fleet: Fleet, step_name: str, data: st.DataObject) -> None:
    kind = sorted(STEPS[step_name].kinds)[0]
    xr = data.draw(xr_strategy(kind), label="xr")
    observed = {n: data.draw(mutate_obj(o)) for n, o in sorted(observed_of(fleet, kind).items())}
    context: Obj = {"modelplane.ai/now": "2026-01-01T00:05:00Z"}
    required: dict[str, list[Obj]] = {}
    rsp = timed_run(request(step_name, xr, observed, context, required))
    # Crossplane's requirements loop: answer what the step asks for, until it is stable.
    asked: bytes = b""
    for _ in range(4):
        if fatal(rsp) or not rsp.requirements.resources:
            break
        now = rsp.requirements.SerializeToString(deterministic=True)
        if now == asked:
            break
        asked = now
        required = {}
        for n in sorted(rsp.requirements.resources):
            got = answer(data.draw, fleet, rsp.requirements.resources[n])
            if got is not None:
                required[n] = got
        rsp = timed_run(request(step_name, xr, observed, context, required))
    final = request(step_name, xr, observed, context, required)
    again = timed_run(final)
    assert again.SerializeToString(deterministic=True) == timed_run(final).SerializeToString(
        deterministic=True), "the same request gave different responses"
    fatals = fatal(rsp)
    assert fatals == [], f"bad input crashed {step_name}: {fatals[0]}"
