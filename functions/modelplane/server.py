"""The gRPC function server: protobuf in, plain data to a step handler, protobuf out.

This is the thin shell around the pure steps (docs/architecture.md). It serves
``FunctionRunnerService`` v1 and v1beta1 (:func:`serve`), picks the handler named by the
pipeline step's ``input.step``, and maps every outcome to a response. Nothing here knows about
any Modelplane kind.

`modelplane serve` takes requests as raw bytes: the event-loop process never decodes a request
(a request protobuf cannot decode would otherwise fail inside gRPC as UNKNOWN, and decoding is
CPU the event loop should not spend); a worker process decodes it, runs the step and answers,
and a request it cannot decode is a Fatal result for that XR.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hashlib
import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
import traceback
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, NamedTuple

import crossplane.function.proto.v1.run_function_pb2 as fnv1
import crossplane.function.proto.v1beta1.run_function_pb2 as fnv1beta1
import grpc
from crossplane.function import resource as sdk_resource
from crossplane.function import response as sdk_response
from crossplane.function.proto.v1 import run_function_pb2_grpc as grpcv1
from google.protobuf import struct_pb2
from grpc_reflection.v1alpha import reflection

from modelplane import metrics
from modelplane.contract.api import INPUT_API_VERSION
from modelplane.contract.podpolicy import MAX_FREE_FORM_DEPTH
from modelplane.step import STEPS, Desired, Readiness, StepRequest, StepResult

log = logging.getLogger("modelplane.server")

# gRPC servers refuse messages over 4 MiB by default. Crossplane ships every required resource
# in full on each call, so a large fleet's ledger can exceed that. We raise the limit to 64 MiB
# explicitly (and the placement step asks for the whole ledger only when it has work to do).
# Responses are another matter: Crossplane's client keeps the 4 MiB default for what it
# receives, so a response must stay under it whatever we allow here (render enforces it).
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
SERVER_OPTIONS: list[tuple[str, Any]] = [
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
]

# The conversion cache's bound, in estimated bytes of converted objects (MODELPLANE_CACHE_BYTES).
DEFAULT_CACHE_BYTES = 256 * 1024 * 1024
# Steps run on a bounded pool of workers (--workers / MODELPLANE_WORKERS): a few per core, so a
# core is never idle while requests wait and a few slow reconciles leave room for the rest.
DEFAULT_WORKERS = 3 * (os.cpu_count() or 1)
# Extra places for requests that turned out slow (MODELPLANE_SLOW_WORKERS; see FunctionRunner):
# one per core, as more slow reconciles at a lower priority would only share the same cores.
DEFAULT_SLOW_WORKERS = os.cpu_count() or 1
# A request that takes longer than this (--deadline / MODELPLANE_STEP_DEADLINE, seconds) ends
# as a Fatal result for its XR; Crossplane retries it later, and nothing is deleted.
DEFAULT_DEADLINE_SECONDS = 60.0
# A request still running after this slice (MODELPLANE_SLOW_AFTER, seconds) is a slow one: it
# gives up its place among the --workers (a new request takes it) and moves to one of the
# MODELPLANE_SLOW_WORKERS extra places, and once it has used a slice of CPU its thread drops to
# a lower CPU priority (SLOW_NICE), so small requests are neither queued behind slow ones nor
# starved of CPU by them.
DEFAULT_SLOW_AFTER_SECONDS = 0.05
# Linux niceness 10 weighs about a tenth of niceness 0 in the CPU scheduler. It is per thread:
# each request runs on a thread of its own, so the lower priority ends with the request.
SLOW_NICE = 10
# How long a stopping server lets requests in flight finish (as the SDK runtime does).
SHUTDOWN_GRACE_SECONDS = 5.0
# The services Crossplane dials (v1, and v1beta1 which older Crossplane versions use; the two
# are the same wire format), and server reflection as the SDK runtime offers it.
SERVICE_NAMES = (
    fnv1.DESCRIPTOR.services_by_name["FunctionRunnerService"].full_name,
    fnv1beta1.DESCRIPTOR.services_by_name["FunctionRunnerService"].full_name,
)
# With worker threads (tests), a short interpreter switch interval lets a small request's
# thread run between the bytecodes of a long one (the default is 5 ms).
SWITCH_INTERVAL_SECONDS = 0.001

_READY = {
    "True": fnv1.READY_TRUE,
    "False": fnv1.READY_FALSE,
    "Unspecified": fnv1.READY_UNSPECIFIED,
}
_READY_BACK: dict[int, Readiness] = {
    fnv1.READY_TRUE: "True", fnv1.READY_FALSE: "False", fnv1.READY_UNSPECIFIED: "Unspecified",
}
_SEVERITY = {
    "Normal": fnv1.SEVERITY_NORMAL,
    "Warning": fnv1.SEVERITY_WARNING,
    "Fatal": fnv1.SEVERITY_FATAL,
}


def dict_to_struct(d: Mapping[str, Any]) -> struct_pb2.Struct:
    """Plain data as a Struct: what the SDK's dict_to_struct does (json_format.ParseDict, same
    result and the same refusal of values JSON cannot carry), through protobuf's own
    ``Struct.update``, about 4x faster. The desired state is most of a response: converting
    it was about half of an InferenceCluster reconcile (docs/placement.md, cost model)."""
    out = struct_pb2.Struct()
    out.update(d)
    return out


def struct_to_dict(s: struct_pb2.Struct) -> dict[str, Any]:
    """Convert a Struct to plain data, keeping integral numbers as ints (Struct stores floats).

    Hand-written rather than json_format.MessageToDict: this is the hot path of a placing
    reconcile (thousands of fleet objects per request) and a direct walk is about twice as fast.
    """
    return {key: _value(v) for key, v in s.fields.items()}


def _value(v: struct_pb2.Value) -> Any:
    kind = v.WhichOneof("kind")
    if kind == "struct_value":
        return {key: _value(x) for key, x in v.struct_value.fields.items()}
    if kind == "list_value":
        return [_value(x) for x in v.list_value.values]
    if kind == "string_value":
        return v.string_value
    if kind == "number_value":
        n = v.number_value
        return int(n) if n.is_integer() else n
    if kind == "bool_value":
        return v.bool_value
    return None


class _RequiredCache:
    """Converted required resources, shared by content across requests and objects.

    Crossplane sends every required resource in full on every call, and a fleet repeats itself:
    during a burst of placements every deployment's request carries the same InferenceClusters,
    and within one request a thousand clusters publish the same few device shapes. Serializing
    and hashing in C is far cheaper than converting in Python, so every object, and every
    sizeable nested object, is converted once per process and then shared. Steps therefore treat
    required resources as read-only (tests verify it: MODELPLANE_VERIFY_REQUIRED_CACHE=1).
    """

    # Nested objects smaller than this are cheaper to convert than to look up.
    SHARE_MIN_BYTES = 128
    # Converted Python objects take several times their wire size; the bound is on that estimate.
    PY_BYTES_PER_WIRE_BYTE = 8

    def __init__(self, max_bytes: int = DEFAULT_CACHE_BYTES) -> None:
        # digest -> (object, estimated bytes); least recently used first.
        self._entries: OrderedDict[bytes, tuple[dict[str, Any], int]] = OrderedDict()
        self.max_bytes = max_bytes
        self.bytes = 0
        self._lock = threading.Lock()
        # Tests set MODELPLANE_VERIFY_REQUIRED_CACHE=1: every hit is checked against a fresh
        # conversion, so a step that mutates a shared required resource fails loudly.
        self.verify = os.environ.get("MODELPLANE_VERIFY_REQUIRED_CACHE") == "1"
        self.hits = 0
        self.misses = 0

    def convert(self, s: struct_pb2.Struct) -> dict[str, Any]:
        with self._lock:
            return self._struct(s)

    def _struct(self, s: struct_pb2.Struct) -> dict[str, Any]:
        wire = s.SerializeToString(deterministic=True)
        digest = hashlib.blake2b(wire, digest_size=16).digest()
        entry = self._entries.get(digest)
        if entry is not None:
            self._entries.move_to_end(digest)
            self.hits += 1
            if self.verify and entry[0] != struct_to_dict(s):
                raise AssertionError("a step mutated a required resource it was given")
            return entry[0]
        obj = {key: self._value(v) for key, v in s.fields.items()}
        self.misses += 1
        size = len(wire) * self.PY_BYTES_PER_WIRE_BYTE
        if size > self.max_bytes:
            return obj  # larger than the whole cache: converted, not kept
        self._entries[digest] = (obj, size)
        self.bytes += size
        while self.bytes > self.max_bytes and self._entries:
            _, (_, freed) = self._entries.popitem(last=False)
            self.bytes -= freed
        return obj

    def _value(self, v: struct_pb2.Value) -> Any:
        kind = v.WhichOneof("kind")
        if kind == "struct_value":
            if v.struct_value.ByteSize() >= self.SHARE_MIN_BYTES:
                return self._struct(v.struct_value)
            return {key: self._value(x) for key, x in v.struct_value.fields.items()}
        if kind == "list_value":
            return [self._value(x) for x in v.list_value.values]
        return _value(v)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self.hits = self.misses = self.bytes = 0


def _env_number(name: str, default: float) -> float:
    raw = os.environ.get(name)
    try:
        return float(raw) if raw else default
    except ValueError:
        log.warning("ignoring %s=%r: not a number", name, raw)
        return default


REQUIRED_CACHE = _RequiredCache(int(_env_number("MODELPLANE_CACHE_BYTES",
                                                DEFAULT_CACHE_BYTES)))


def build_request(
    step: str,
    composite: dict[str, Any],
    observed: dict[str, dict[str, Any]] | None = None,
    context: dict[str, Any] | None = None,
    required: dict[str, list[dict[str, Any]]] | None = None,
    tag: str = "",
) -> fnv1.RunFunctionRequest:
    """A RunFunctionRequest as Crossplane sends it, from plain data (for the CLI, bench, tests).

    ``required`` maps each requirement name to the objects that answer it; a name that is absent
    has not been resolved (as on the first call of the requirements loop).
    """
    req = fnv1.RunFunctionRequest(meta=fnv1.RequestMeta(tag=tag))
    req.input.CopyFrom(dict_to_struct(
        {"apiVersion": INPUT_API_VERSION, "kind": "Input", "step": step}))
    req.observed.composite.resource.CopyFrom(dict_to_struct(composite))
    for name, obj in (observed or {}).items():
        req.observed.resources[name].resource.CopyFrom(dict_to_struct(obj))
    req.context.CopyFrom(dict_to_struct(context or {}))
    for name, objs in (required or {}).items():
        req.required_resources[name].SetInParent()
        for obj in objs:
            req.required_resources[name].items.add().resource.CopyFrom(
                dict_to_struct(obj))
    return req


def to_request(req: fnv1.RunFunctionRequest) -> StepRequest:
    """Translate a RunFunctionRequest into the plain-data StepRequest."""
    inp = struct_to_dict(req.input) if req.HasField("input") else {}
    desired = {
        name: Desired(struct_to_dict(r.resource), _READY_BACK[r.ready])
        for name, r in req.desired.resources.items()
    }
    desired_composite = struct_to_dict(req.desired.composite.resource)
    return StepRequest(
        step=str(inp.get("step", "")),
        input=inp,
        composite=struct_to_dict(req.observed.composite.resource),
        observed={n: struct_to_dict(r.resource) for n, r in req.observed.resources.items()},
        desired=desired,
        desired_composite_status=dict(desired_composite.get("status") or {}),
        context=struct_to_dict(req.context) if req.HasField("context") else {},
        required={n: [REQUIRED_CACHE.convert(i.resource) for i in rs.items]
                  for n, rs in req.required_resources.items()},
    )


def fill_response(
    rsp: fnv1.RunFunctionResponse, req: fnv1.RunFunctionRequest, result: StepResult
) -> None:
    """Write a StepResult into a response that ``response.to(req)`` started."""
    desired_xr = struct_to_dict(req.desired.composite.resource)
    if result.status:
        status = dict(desired_xr.get("status") or {})
        status.update(result.status)
        desired_xr["status"] = status
    rsp.desired.composite.resource.CopyFrom(dict_to_struct(desired_xr))
    if result.composite_ready != "Unspecified":
        rsp.desired.composite.ready = _READY[result.composite_ready]
    rsp.desired.ClearField("resources")
    for name in sorted(result.desired):
        d = result.desired[name]
        rsp.desired.resources[name].resource.CopyFrom(dict_to_struct(d.resource))
        rsp.desired.resources[name].ready = _READY[d.ready]
    for c in result.conditions:
        sdk_response.set_conditions(
            rsp, sdk_resource.Condition(typ=c.type, status=c.status, reason=c.reason,
                                        message=c.message or None)
        )
    for r in result.results:
        res = fnv1.Result(severity=_SEVERITY[r.severity], message=r.message)
        if r.reason:
            res.reason = r.reason
        rsp.results.append(res)
    for name in sorted(result.requirements):
        sel = result.requirements[name]
        pb = fnv1.ResourceSelector(api_version=sel.api_version, kind=sel.kind)
        if sel.match_name is not None:
            pb.match_name = sel.match_name
        else:
            # Always set the match oneof: an empty label set is how to select every object of
            # the kind. (Crossplane v2.3 lists everything for a selector with no match set
            # too, but saying so explicitly keeps the request meaning one thing.)
            pb.match_labels.SetInParent()
            pb.match_labels.labels.update(dict(sel.match_labels or ()))
        if sel.namespace is not None:
            pb.namespace = sel.namespace
        rsp.requirements.resources[name].CopyFrom(pb)
    if result.context:
        ctx = struct_to_dict(req.context) if req.HasField("context") else {}
        ctx.update(result.context)
        rsp.context.CopyFrom(dict_to_struct(ctx))


def run(req: fnv1.RunFunctionRequest) -> fnv1.RunFunctionResponse:
    """Run one pipeline step. Never raises: every failure is a Fatal result."""
    start = time.perf_counter()
    seen: dict[str, Any] = {}  # what _run learnt of the request, for the metrics
    try:
        return _run(req, seen)
    finally:
        metrics.observe(str(seen.get("step", "")), str(seen.get("kind", "")),
                        seen.get("namespace"), str(seen.get("name", "")),
                        str(seen.get("outcome", "error")), time.perf_counter() - start,
                        seen.get("result"))


def _run(req: fnv1.RunFunctionRequest, out: dict[str, Any]) -> fnv1.RunFunctionResponse:
    rsp = sdk_response.to(req)
    out["outcome"] = "fatal"
    try:
        sreq = to_request(req)
        out.update(step=sreq.step, kind=sreq.kind, namespace=sreq.namespace, name=sreq.name)
        reg = STEPS.get(sreq.step)
        if reg is None:
            known = ", ".join(sorted(STEPS)) or "none"
            sdk_response.fatal(
                rsp, f"unknown pipeline step {sreq.step!r} in input.step (known steps: {known})"
            )
            return rsp
        if sreq.kind not in reg.kinds:
            sdk_response.fatal(
                rsp,
                f"step {sreq.step!r} does not handle XR kind {sreq.kind!r} "
                f"(it handles {', '.join(sorted(reg.kinds))})",
            )
            return rsp
        result = reg.handler(sreq)
        fill_response(rsp, req, result)
        out.update(outcome="ok", result=result)
    except Exception as exc:  # the server must keep answering whatever a handler does
        out["outcome"] = "error"
        log.error("step failed: %s", traceback.format_exc())
        rsp = sdk_response.to(req)
        sdk_response.fatal(rsp, f"internal error in step: {type(exc).__name__}: {exc}")
    return rsp


class _Glimpse(NamedTuple):
    """What a request says about itself, read without decoding all of it."""

    meta: fnv1.RequestMeta
    step: str
    kind: str
    namespace: str | None
    name: str

    @property
    def what(self) -> str:
        name = f"{self.namespace}/{self.name}" if self.namespace else self.name
        return f"step {self.step!r} for {self.kind} {name!r}"


def _varint(data: bytes, i: int) -> tuple[int, int]:
    shift = value = 0
    while True:
        byte = data[i]  # IndexError when truncated: the caller treats the part as unreadable
        i += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, i
        shift += 7
        if shift > 63:
            raise ValueError("malformed varint")


def _fields(data: bytes) -> dict[int, list[bytes]]:
    """The length-delimited fields of one message's wire encoding, by field number.

    Only this level is read (never what the fields contain), so no nesting can defeat it.
    """
    out: dict[int, list[bytes]] = {}
    i, n = 0, len(data)
    while i < n:
        key, i = _varint(data, i)
        wire = key & 7
        if wire == 0:
            _, i = _varint(data, i)
        elif wire in (1, 5):
            i += 8 if wire == 1 else 4
        elif wire == 2:
            size, i = _varint(data, i)
            if i + size > n:
                raise ValueError("truncated field")
            out.setdefault(key >> 3, []).append(data[i:i + size])
            i += size
        else:
            raise ValueError(f"unexpected wire type {wire}")
    return out


def _field(data: bytes, *path: int) -> bytes:
    """The embedded message at a path of field numbers (its last occurrence); empty if absent."""
    for number in path:
        found = _fields(data).get(number)
        if not found:
            return b""
        data = found[-1]
    return data


_REQUEST_FIELDS = fnv1.RunFunctionRequest.DESCRIPTOR.fields_by_name
_META, _OBSERVED, _INPUT = (_REQUEST_FIELDS[f].number for f in ("meta", "observed", "input"))
_COMPOSITE = fnv1.State.DESCRIPTOR.fields_by_name["composite"].number
_RESOURCE = fnv1.Resource.DESCRIPTOR.fields_by_name["resource"].number
_STRUCT_FIELDS = struct_pb2.Struct.DESCRIPTOR.fields_by_name["fields"].number
_STRUCT_VALUE = struct_pb2.Value.DESCRIPTOR.fields_by_name["struct_value"].number


def _strings(struct: bytes, keys: set[str]) -> dict[str, bytes]:
    """The wire-encoded Values of some keys of a wire-encoded Struct, the rest left unread."""
    out: dict[str, bytes] = {}
    for entry in _fields(struct).get(_STRUCT_FIELDS, []):
        parts = _fields(entry)  # a map entry: key = 1, value = 2
        key = parts.get(1, [b""])[-1].decode("utf-8", "replace")
        if key in keys:
            out[key] = parts.get(2, [b""])[-1]
    return out


def _string(value: bytes) -> str | None:
    v = struct_pb2.Value.FromString(value)
    return v.string_value if v.WhichOneof("kind") == "string_value" else None


def _glimpse(data: bytes) -> _Glimpse:
    """The request's meta, step and XR, each read on its own from the wire format.

    For a request that cannot be decoded whole (or that the event-loop process never decodes):
    a part that cannot be read is left out, so this never fails.
    """
    meta = fnv1.RequestMeta()
    step = kind = name = "?"
    namespace: str | None = None
    # Each part on its own: one that cannot be read is left out (answered without the tag, ...).
    with contextlib.suppress(Exception):
        meta = fnv1.RequestMeta.FromString(_field(data, _META))
    with contextlib.suppress(Exception):
        step = _string(_strings(_field(data, _INPUT), {"step"})["step"]) or "?"
    with contextlib.suppress(Exception):
        xr = _strings(_field(data, _OBSERVED, _COMPOSITE, _RESOURCE), {"kind", "metadata"})
        kind = _string(xr["kind"]) or "?"
        md = _strings(_field(xr["metadata"], _STRUCT_VALUE), {"name", "namespace"})
        name = _string(md["name"]) or "?"
        namespace = _string(md["namespace"]) if "namespace" in md else None
    return _Glimpse(meta, step, kind, namespace, name)


def _fatal_bytes(meta: fnv1.RequestMeta, message: str) -> bytes:
    """A wire-encoded response to the request with ``meta``: one Fatal result."""
    rsp = sdk_response.to(fnv1.RunFunctionRequest(meta=meta))
    sdk_response.fatal(rsp, message)
    return bytes(rsp.SerializeToString())


def _undecodable(data: bytes, exc: Exception) -> bytes:
    """The Fatal answer to a request protobuf cannot decode (e.g. nested beyond its limit)."""
    start = time.perf_counter()
    g = _glimpse(data)
    hint = ""
    if "depth" in str(exc).lower():
        hint = (f" (it nests deeper than protobuf decodes; free-form fields may nest at most "
                f"{MAX_FREE_FORM_DEPTH} levels)")
    message = f"cannot decode the request ({g.what}): {type(exc).__name__}: {exc}{hint}"
    log.error("%s", message)
    metrics.observe(g.step, g.kind, g.namespace, g.name, "fatal", time.perf_counter() - start)
    return _fatal_bytes(g.meta, message)


def _init_worker() -> None:
    """A worker process: every step registered and warmed up, ready to serve."""
    load_steps()
    warm_up()


# Young-generation threshold of the cyclic garbage collector in a serving process. A placing
# reconcile allocates hundreds of thousands of small objects next to large, long-lived caches;
# at Python's default (700) the collector runs thousands of times per reconcile and its older
# generations walk those caches again and again (measured: about half of a large placing
# reconcile's CPU). Our data has few reference cycles, so collecting less often costs little.
GC_YOUNG_THRESHOLD = 50_000


def warm_up() -> None:
    """Run the warm-up requests once (``steps.warmup``), so the first reconcile after a start
    costs about what later ones do, then tune the garbage collector for serving. Not counted in
    the metrics; failures are only logged."""
    from modelplane.steps import warmup

    for step_name, composite, context, required in warmup.requests():
        rsp = _run(build_request(step_name, composite, {}, context, required), {})
        if any(r.severity == fnv1.SEVERITY_FATAL for r in rsp.results):
            log.warning("warm-up of step %r failed: %s", step_name, rsp.results[0].message)
    REQUIRED_CACHE.clear()
    gc.collect()
    gc.freeze()  # what is alive now (modules, compiled CEL) is never scanned again
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, older, oldest)


def _worker_pid() -> int:
    time.sleep(0.1)  # long enough for another idle worker to take the next one
    return os.getpid()


def run_bytes(data: bytes) -> bytes:
    """:func:`run` over the wire format (what a worker process is sent and answers)."""
    try:
        req = fnv1.RunFunctionRequest.FromString(data)
    except Exception as exc:  # e.g. nesting beyond the decoder's limit
        return _undecodable(data, exc)
    return bytes(run(req).SerializeToString())


def _work(data: bytes, slow_after: float) -> bytes:
    """In a worker process: :func:`run_bytes` on a thread of its own, whose CPU priority drops
    by SLOW_NICE once it has used ``slow_after`` seconds of CPU (and ends with the thread).

    CPU time, not wall time: on a busy machine a small request can wait longer than a slice for
    a core, and lowering its priority then would only make it wait longer.
    """
    out: list[bytes] = []
    thread = threading.Thread(target=lambda: out.append(run_bytes(data)),
                              name="modelplane-request", daemon=True)
    thread.start()
    used = _cpu_clock(thread)
    while thread.is_alive():
        thread.join(slow_after / 2)
        if thread.is_alive() and used() >= slow_after:
            _lower_priority(thread.native_id)
            thread.join()
    if not out:  # run_bytes never raises an Exception; this is a BaseException's trace
        return _fatal_bytes(_glimpse(data).meta, f"{_glimpse(data).what} ended without an answer")
    return out[0]


def _cpu_clock(thread: threading.Thread) -> Callable[[], float]:
    """Seconds of CPU the thread has used (where the platform cannot say: wall time)."""
    try:
        clock = time.pthread_getcpuclockid(thread.ident or 0)
        start = time.clock_gettime(clock)
    except (AttributeError, OSError):
        began = time.monotonic()
        return lambda: time.monotonic() - began

    def used() -> float:
        try:
            return time.clock_gettime(clock) - start
        except OSError:  # the thread has just ended
            return 0.0
    return used


def _lower_priority(thread_id: int | None) -> None:
    # Linux keeps a niceness per thread (setpriority on a thread id); elsewhere PRIO_PROCESS
    # would name a process, so the request keeps its priority there.
    if thread_id is None or sys.platform != "linux":
        return
    try:
        now = os.getpriority(os.PRIO_PROCESS, thread_id)
        os.setpriority(os.PRIO_PROCESS, thread_id, min(19, now + SLOW_NICE))
    except OSError:  # it ended meanwhile, or a policy forbids it: it runs at normal priority
        pass


class FunctionRunner(grpcv1.FunctionRunnerServiceServicer):
    """The FunctionRunnerService implementation Crossplane calls.

    Crossplane reconciles many XRs concurrently against one function, so each request runs on
    a bounded pool of workers and the event loop stays free to accept the next. `modelplane
    serve` uses worker *processes*: a step is mostly Python, and threads would share one
    interpreter lock, so a long CPU-bound reconcile would still slow every other thread down.
    (Each process keeps its own conversion cache.) ``processes=False`` runs steps on threads of
    this process instead, which tests use to register steps of their own.

    Up to ``workers`` requests run at once. A request still running after ``slow_after``
    seconds is slow: it moves to one of ``slow_workers`` extra places (the pool has
    ``workers + slow_workers`` workers, so every admitted request has one of its own) and
    frees its place for the next request, and in a worker process its thread runs at a lower
    CPU priority from then on. So slow reconciles never queue a small one behind them, and
    take the CPU only when small ones leave it idle. (With every extra place taken, a further
    slow request keeps its place until one frees.)

    A request still running after ``deadline`` seconds is answered with a Fatal result for its
    XR; its worker finishes in the background (it cannot be stopped midway) and its answer is
    dropped.
    """

    def __init__(self, workers: int | None = None, deadline: float | None = None,
                 processes: bool = False, slow_workers: int | None = None,
                 slow_after: float | None = None) -> None:
        self.workers = max(1, int(workers if workers is not None else _env_number(
            "MODELPLANE_WORKERS", DEFAULT_WORKERS)))
        self.slow_workers = max(0, int(slow_workers if slow_workers is not None else _env_number(
            "MODELPLANE_SLOW_WORKERS", DEFAULT_SLOW_WORKERS)))
        self.slow_after = float(slow_after if slow_after is not None else _env_number(
            "MODELPLANE_SLOW_AFTER", DEFAULT_SLOW_AFTER_SECONDS))
        self.deadline = float(deadline if deadline is not None else _env_number(
            "MODELPLANE_STEP_DEADLINE", DEFAULT_DEADLINE_SECONDS))
        self.processes = processes
        self.slow_in_flight = 0  # requests in the slow places now
        self._places: asyncio.Semaphore | None = None  # made on the serving event loop
        if not processes:
            sys.setswitchinterval(min(sys.getswitchinterval(), SWITCH_INTERVAL_SECONDS))
        self._pool = self._new_pool()

    def _new_pool(self) -> Executor:
        size = self.workers + self.slow_workers
        if self.processes:
            # spawn, not fork: the gRPC runtime's threads must not be forked.
            return ProcessPoolExecutor(max_workers=size,
                                       mp_context=multiprocessing.get_context("spawn"),
                                       initializer=_init_worker)
        return ThreadPoolExecutor(max_workers=size, thread_name_prefix="modelplane-step")

    def warm(self, timeout: float = 120.0) -> None:
        """Start every worker process (normal and slow places) now rather than on the first
        requests, and return once each has imported every step and run the warm-up requests
        (:func:`warm_up`), so the first reconcile after a restart is not a cold one. Bounded by
        ``timeout``: a worker that is not up by then is left to start on demand."""
        if not self.processes:
            return
        size = self.workers + self.slow_workers
        seen: set[int] = set()
        end = time.monotonic() + timeout
        while len(seen) < size and time.monotonic() < end:
            seen |= {f.result() for f in [self._pool.submit(_worker_pid) for _ in range(size)]}

    async def _dispatch(self, data: bytes) -> bytes:
        loop = asyncio.get_running_loop()
        if self._places is None:
            self._places = asyncio.Semaphore(self.workers)
        places = self._places
        await places.acquire()
        slow = False
        timer: asyncio.TimerHandle | None = None

        def promote() -> None:
            nonlocal slow, timer
            if self.slow_in_flight < self.slow_workers:
                self.slow_in_flight += 1
                slow = True
                places.release()
            else:  # every slow place is taken: try again a slice later
                timer = loop.call_later(self.slow_after, promote)

        timer = loop.call_later(self.slow_after, promote)
        pool = self._pool
        try:
            if self.processes:
                return await loop.run_in_executor(pool, _work, data, self.slow_after)
            return await loop.run_in_executor(pool, run_bytes, data)
        except BrokenProcessPool:  # a worker was killed (e.g. out of memory) under this request
            self._replace(pool)
            g = _glimpse(data)
            log.error("%s: its worker process exited", g.what)
            return _fatal_bytes(g.meta, f"{g.what}: the worker process running it exited "
                                        "(out of memory?); nothing was changed")
        finally:
            if timer is not None:
                timer.cancel()
            if slow:
                self.slow_in_flight -= 1
            else:
                places.release()

    def _replace(self, broken: Executor) -> None:
        """A pool with a dead worker refuses all work: start a new one (once per broken pool)."""
        if self._pool is not broken:
            return
        for pid in list(getattr(broken, "_processes", None) or {}):
            metrics.worker_exited(pid)
        self._pool = self._new_pool()
        broken.shutdown(wait=False, cancel_futures=True)
        self.warm()

    async def run_function_bytes(self, data: bytes,
                                 _: grpc.aio.ServicerContext | None = None) -> bytes:
        """RunFunction on the wire format: a RunFunctionRequest in, a RunFunctionResponse out.

        Nothing is decoded here unless the deadline passes (then only the request's meta and
        the XR's name, read field by field)."""
        work = asyncio.ensure_future(self._dispatch(data))
        try:
            return await asyncio.wait_for(asyncio.shield(work), self.deadline)
        except TimeoutError:
            g = _glimpse(data)
            log.error("%s exceeded the %gs deadline", g.what, self.deadline)
            return _fatal_bytes(g.meta, f"{g.what} exceeded the step deadline of "
                                        f"{self.deadline:g}s (MODELPLANE_STEP_DEADLINE); "
                                        "nothing was changed")

    async def RunFunction(
        self, req: fnv1.RunFunctionRequest, _: grpc.aio.ServicerContext | None = None
    ) -> fnv1.RunFunctionResponse:
        """RunFunction on messages (the generated servicer's signature, for tests and embedding)."""
        data = await self.run_function_bytes(req.SerializeToString())
        return fnv1.RunFunctionResponse.FromString(data)

    def shutdown(self) -> None:
        """Stop taking work; worker processes are terminated (a slow one is not waited for)."""
        children = multiprocessing.active_children() if self.processes else []
        self._pool.shutdown(wait=False, cancel_futures=True)
        for child in children:
            child.terminate()
            if child.pid is not None:
                metrics.worker_exited(child.pid)


def add_to_server(runner: FunctionRunner, srv: grpc.aio.Server) -> None:
    """Serve RunFunction under every service name Crossplane dials, and server reflection.

    No (de)serializers: the handler takes and answers the raw bytes (see the module doc), so a
    request gRPC would fail to decode reaches a worker, which answers a Fatal result.
    """
    handler = grpc.unary_unary_rpc_method_handler(runner.run_function_bytes)
    srv.add_generic_rpc_handlers([
        grpc.method_handlers_generic_handler(name, {"RunFunction": handler})
        for name in SERVICE_NAMES])
    reflection.enable_server_reflection((*SERVICE_NAMES, reflection.SERVICE_NAME), srv)


async def serve_async(runner: FunctionRunner, address: str, *,
                      creds: grpc.ServerCredentials | None, insecure: bool,
                      options: Sequence[tuple[str, Any]] = SERVER_OPTIONS) -> None:
    """Serve on ``address`` until SIGTERM or SIGINT, then stop gracefully.

    What crossplane.function.runtime.serve does (the same services, reflection, credentials:
    ``creds`` is Crossplane's mTLS from runtime.load_credentials, ``insecure`` adds a
    plaintext port; gRPC options such as the message size limits), with requests as bytes.
    """
    if creds is None and not insecure:
        raise ValueError("no credentials were provided: pass TLS credentials or insecure=True")
    srv = grpc.aio.server(options=list(options))
    add_to_server(runner, srv)
    if creds is not None:
        srv.add_secure_port(address, creds)
    if insecure:
        srv.add_insecure_port(address)
    runner.warm()  # every worker up and warmed before the port opens
    await srv.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await srv.stop(SHUTDOWN_GRACE_SECONDS)
        runner.shutdown()


def serve(runner: FunctionRunner, address: str, *, creds: grpc.ServerCredentials | None,
          insecure: bool, options: Sequence[tuple[str, Any]] = SERVER_OPTIONS) -> None:
    """:func:`serve_async` on a new event loop (what `modelplane serve` runs)."""
    asyncio.run(serve_async(runner, address, creds=creds, insecure=insecure, options=options))


def load_steps() -> None:
    """Import every module that registers steps (the registry fills on import)."""
    import modelplane.steps  # noqa: F401  (registers all handlers)
