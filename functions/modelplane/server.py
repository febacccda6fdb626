"""The gRPC function server: protobuf in, plain data to a step handler, protobuf out.

This is the thin shell around the pure steps (docs/architecture.md). It serves
``FunctionRunnerService`` v1 (and v1beta1 through the SDK runtime), picks the handler named by
the pipeline step's ``input.step``, and maps every outcome to a response. Nothing here knows
about any Modelplane kind.
"""

from __future__ import annotations

import asyncio
import gc
import hashlib
import logging
import multiprocessing
import os
import sys
import threading
import time
import traceback
from collections import OrderedDict
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from typing import Any

import crossplane.function.proto.v1.run_function_pb2 as fnv1
import grpc
from crossplane.function import resource as sdk_resource
from crossplane.function import response as sdk_response
from crossplane.function.proto.v1 import run_function_pb2_grpc as grpcv1
from google.protobuf import struct_pb2

from modelplane import metrics
from modelplane.contract.api import INPUT_API_VERSION
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
# A request that takes longer than this (--deadline / MODELPLANE_STEP_DEADLINE, seconds) ends
# as a Fatal result for its XR; Crossplane retries it later, and nothing is deleted.
DEFAULT_DEADLINE_SECONDS = 60.0
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
    req.input.CopyFrom(sdk_resource.dict_to_struct(
        {"apiVersion": INPUT_API_VERSION, "kind": "Input", "step": step}))
    req.observed.composite.resource.CopyFrom(sdk_resource.dict_to_struct(composite))
    for name, obj in (observed or {}).items():
        req.observed.resources[name].resource.CopyFrom(sdk_resource.dict_to_struct(obj))
    req.context.CopyFrom(sdk_resource.dict_to_struct(context or {}))
    for name, objs in (required or {}).items():
        req.required_resources[name].SetInParent()
        for obj in objs:
            req.required_resources[name].items.add().resource.CopyFrom(
                sdk_resource.dict_to_struct(obj))
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
    rsp.desired.composite.resource.CopyFrom(sdk_resource.dict_to_struct(desired_xr))
    if result.composite_ready != "Unspecified":
        rsp.desired.composite.ready = _READY[result.composite_ready]
    rsp.desired.ClearField("resources")
    for name in sorted(result.desired):
        d = result.desired[name]
        rsp.desired.resources[name].resource.CopyFrom(sdk_resource.dict_to_struct(d.resource))
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
        rsp.context.CopyFrom(sdk_resource.dict_to_struct(ctx))


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


def _describe(req: fnv1.RunFunctionRequest) -> str:
    xr = req.observed.composite.resource.fields
    kind = xr["kind"].string_value if "kind" in xr else "?"
    meta = xr["metadata"].struct_value.fields if "metadata" in xr else {}
    name = meta["name"].string_value if "name" in meta else "?"
    step = req.input.fields["step"].string_value if "step" in req.input.fields else "?"
    return f"step {step!r} for {kind} {name!r}"


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
        rsp = fnv1.RunFunctionResponse()
        sdk_response.fatal(rsp, f"cannot decode the request: {type(exc).__name__}: {exc}")
        return bytes(rsp.SerializeToString())
    return bytes(run(req).SerializeToString())


class FunctionRunner(grpcv1.FunctionRunnerServiceServicer):
    """The FunctionRunnerService implementation Crossplane calls.

    Crossplane reconciles many XRs concurrently against one function, so each request runs on
    a bounded pool of workers and the event loop stays free to accept the next: a slow request
    never queues an unrelated one behind it (up to ``workers`` at once). `modelplane serve`
    uses worker *processes*: a step is mostly Python, and threads would share one interpreter
    lock, so a long CPU-bound reconcile would still slow every other thread down. (Each
    process keeps its own conversion cache.) ``processes=False`` runs steps on threads of this
    process instead, which tests use to register steps of their own.

    A request still running after ``deadline`` seconds is answered with a Fatal result for its
    XR; its worker finishes in the background (it cannot be stopped midway) and its answer is
    dropped.
    """

    def __init__(self, workers: int | None = None, deadline: float | None = None,
                 processes: bool = False) -> None:
        self.workers = max(1, int(workers if workers is not None else _env_number(
            "MODELPLANE_WORKERS", DEFAULT_WORKERS)))
        self.deadline = float(deadline if deadline is not None else _env_number(
            "MODELPLANE_STEP_DEADLINE", DEFAULT_DEADLINE_SECONDS))
        self.processes = processes
        self._pool: Executor
        if processes:
            # spawn, not fork: the gRPC runtime's threads must not be forked.
            self._pool = ProcessPoolExecutor(max_workers=self.workers,
                                             mp_context=multiprocessing.get_context("spawn"),
                                             initializer=_init_worker)
        else:
            self._pool = ThreadPoolExecutor(max_workers=self.workers,
                                            thread_name_prefix="modelplane-step")
            sys.setswitchinterval(min(sys.getswitchinterval(), SWITCH_INTERVAL_SECONDS))

    async def _run(self, req: fnv1.RunFunctionRequest) -> fnv1.RunFunctionResponse:
        loop = asyncio.get_running_loop()
        if not self.processes:
            return await loop.run_in_executor(self._pool, run, req)
        data = await loop.run_in_executor(self._pool, run_bytes, req.SerializeToString())
        return fnv1.RunFunctionResponse.FromString(data)

    async def RunFunction(
        self, req: fnv1.RunFunctionRequest, _: grpc.aio.ServicerContext | None = None
    ) -> fnv1.RunFunctionResponse:
        work = asyncio.ensure_future(self._run(req))
        try:
            return await asyncio.wait_for(asyncio.shield(work), self.deadline)
        except TimeoutError:
            what = _describe(req)
            log.error("%s exceeded the %.0fs deadline", what, self.deadline)
            rsp = sdk_response.to(req)
            sdk_response.fatal(rsp, f"{what} exceeded the step deadline of {self.deadline:g}s "
                                    "(MODELPLANE_STEP_DEADLINE); nothing was changed")
            return rsp

    def prestart(self, timeout: float = 120.0) -> None:
        """Start every worker process (each warms up, see :func:`warm_up`) before serving."""
        if not self.processes:
            return
        seen: set[int] = set()
        end = time.monotonic() + timeout
        while len(seen) < self.workers and time.monotonic() < end:
            seen |= {f.result() for f in [self._pool.submit(_worker_pid)
                                          for _ in range(self.workers)]}

    def shutdown(self) -> None:
        """Stop taking work; worker processes are terminated (a slow one is not waited for)."""
        self._pool.shutdown(wait=False, cancel_futures=True)
        if self.processes:
            for child in multiprocessing.active_children():
                child.terminate()


def load_steps() -> None:
    """Import every module that registers steps (the registry fills on import)."""
    import modelplane.steps  # noqa: F401  (registers all handlers)

