"""The local control plane: Crossplane's composite reconciler, offline, over real gRPC.

For each composite resource (XR) of a kind an XRD defines, ``reconcile`` does what Crossplane's
XR reconciler does: run the Composition's pipeline step by step (desired state and context
threaded through, required resources answered from the store in a requirements-until-stable
loop), apply the desired composed resources with Crossplane's metadata, delete what is no longer
desired, and write the XR's status and conditions. ``Engine.run`` repeats over every XR, with the
provider simulation in between, until nothing changes.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Callable, Iterable
from concurrent import futures
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import crossplane.function.proto.v1.run_function_pb2 as fnv1
import grpc
from crossplane.function import resource as sdk_resource
from crossplane.function.proto.v1 import run_function_pb2_grpc as grpcv1

from modelplane import server
from modelplane.contract import context as context_keys
from modelplane.render import providers
from modelplane.render.store import Key, Obj, Store, describe, group_of, key_of

COMPOSITE_LABEL = "crossplane.io/composite"
RESOURCE_NAME_ANNOTATION = "crossplane.io/composition-resource-name"
MAX_REQUIREMENT_ITERATIONS = 5  # Crossplane's limit on extra calls for required resources
# Render's logical clock: fixed start, fixed step per round, so output is byte-identical.
EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
ROUND = timedelta(seconds=30)

# Reconcile order within a round: platform kinds first, so one round carries a change through.
KIND_ORDER = ["InferenceClass", "InferenceCluster", "InferenceGateway", "ModelCache",
              "ModelDeployment", "ModelReplica", "ModelEndpoint", "ModelService"]


class RenderError(Exception):
    """The fleet could not be rendered (non-convergence, an unusable Composition, ...)."""


def uid_for(key: Key) -> str:
    """A deterministic UID (an API server would assign a random one)."""
    h = hashlib.sha256("/".join(key).encode()).hexdigest()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


@dataclass
class Event:
    object: str
    severity: str
    reason: str
    message: str


@dataclass
class FunctionClient:
    """A gRPC client to the function server (started on a free localhost port)."""

    target: str
    _channel: grpc.Channel = field(init=False)
    _stub: grpcv1.FunctionRunnerServiceStub = field(init=False)

    def __post_init__(self) -> None:
        self._channel = grpc.insecure_channel(self.target, options=server.SERVER_OPTIONS)
        self._stub = grpcv1.FunctionRunnerServiceStub(self._channel)

    def run(self, req: fnv1.RunFunctionRequest) -> fnv1.RunFunctionResponse:
        rsp: fnv1.RunFunctionResponse = self._stub.RunFunction(req, timeout=120)
        return rsp

    def close(self) -> None:
        self._channel.close()


class _SyncRunner(grpcv1.FunctionRunnerServiceServicer):
    def RunFunction(self, request: Any, context: Any) -> Any:
        return server.run(request)


class LocalFunctionServer:
    """The real function server on 127.0.0.1:<free port>, in a background thread pool."""

    def __init__(self) -> None:
        server.load_steps()
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=2),
                                   options=server.SERVER_OPTIONS)
        grpcv1.add_FunctionRunnerServiceServicer_to_server(_SyncRunner(), self._server)
        self.port = self._server.add_insecure_port("127.0.0.1:0")
        self._server.start()

    def client(self) -> FunctionClient:
        return FunctionClient(f"127.0.0.1:{self.port}")

    def stop(self) -> None:
        self._server.stop(grace=None)


def _merge_conditions(old: list[dict[str, Any]], new: Iterable[dict[str, Any]],
                      now: str) -> list[dict[str, Any]]:
    """Set conditions by type, keeping lastTransitionTime unless the status changed."""
    by_type = {c.get("type"): dict(c) for c in old}
    for c in new:
        prev = by_type.get(c["type"])
        c = dict(c)
        if prev is not None and prev.get("status") == c.get("status"):
            c["lastTransitionTime"] = prev.get("lastTransitionTime", now)
        else:
            c["lastTransitionTime"] = now
        by_type[c["type"]] = c
    return [by_type[t] for t in sorted(by_type, key=str)]


def _fmt_names(names: list[str]) -> str:
    """Crossplane's list formatting: "a", "a and b", "a, b, and c"."""
    quoted = [repr(n).replace("'", '"') for n in names]
    if len(quoted) <= 2:
        return " and ".join(quoted)
    return ", ".join(quoted[:-1]) + ", and " + quoted[-1]


class Engine:
    """Reconciles every XR in a store through its Composition until a fixed point."""

    def __init__(self, store: Store, xrds: list[Obj], compositions: list[Obj],
                 client: FunctionClient) -> None:
        self.store = store
        self.client = client
        # The events of each object's latest reconcile (older ones are superseded, as a user
        # reading `kubectl describe` after convergence would see them).
        self.events_by_object: dict[str, list[Event]] = {}
        self.round = 0
        self.xr_kinds: dict[tuple[str, str], Obj] = {}
        for xrd in xrds:
            spec = xrd.get("spec") or {}
            self.xr_kinds[(spec.get("group", ""), (spec.get("names") or {}).get("kind", ""))] = xrd
        self.compositions: dict[tuple[str, str], list[Obj]] = {}
        for comp in sorted(compositions, key=lambda c: c["metadata"]["name"]):
            ref = (comp.get("spec") or {}).get("compositeTypeRef") or {}
            k = (group_of(str(ref.get("apiVersion", ""))), str(ref.get("kind", "")))
            self.compositions.setdefault(k, []).append(comp)

    # -- time ---------------------------------------------------------------------------------
    @property
    def now(self) -> str:
        """The logical time of the current round (RFC 3339)."""
        return (EPOCH + ROUND * self.round).strftime("%Y-%m-%dT%H:%M:%SZ")

    @property
    def events(self) -> list[Event]:
        return [e for k in sorted(self.events_by_object) for e in self.events_by_object[k]]

    # -- the fixed-point loop -------------------------------------------------------------------
    def xr_keys(self) -> list[Key]:
        order = {k: i for i, k in enumerate(KIND_ORDER)}
        keys = [k for k in self.store.all_keys() if (k[0], k[1]) in self.xr_kinds]
        return sorted(keys, key=lambda k: (order.get(k[1], len(order)), k))

    def run(self, max_rounds: int = 30,
            progress: Callable[[int, int, list[str]], None] | None = None) -> int:
        """Reconcile until nothing changes; return the number of rounds taken.

        ``progress(round, objects, changed)`` is called after each round that changed something.
        """
        last_changed: list[str] = []
        for self.round in range(1, max_rounds + 1):
            before = {k: self.store.get(k) for k in self.store.all_keys()}
            for key in self.xr_keys():
                if key in self.store:
                    self.reconcile(key)
            providers.simulate(self.store)
            after = {k: self.store.get(k) for k in self.store.all_keys()}
            last_changed = sorted(
                describe(k) for k in set(before) | set(after) if before.get(k) != after.get(k)
            )
            if not last_changed:
                return self.round
            if progress is not None:
                progress(self.round, len(after), last_changed)
        shown = ", ".join(last_changed[:20]) + (" ..." if len(last_changed) > 20 else "")
        raise RenderError(
            f"no fixed point after {max_rounds} rounds; still changing: {shown}"
        )

    # -- one XR ---------------------------------------------------------------------------------
    def composition_for(self, xr: Obj) -> Obj:
        group, kind = group_of(str(xr.get("apiVersion", ""))), str(xr.get("kind", ""))
        comps = self.compositions.get((group, kind), [])
        ref = ((xr.get("spec") or {}).get("crossplane") or {}).get("compositionRef") or {}
        if ref.get("name"):
            comps = [c for c in comps if c["metadata"]["name"] == ref["name"]]
        if not comps:
            raise RenderError(f"{describe(key_of(xr))}: no Composition for {kind}.{group}")
        return comps[0]

    def reconcile(self, key: Key) -> None:
        xr = copy.deepcopy(self.store.get(key))
        assert xr is not None
        meta = xr.setdefault("metadata", {})
        meta.setdefault("uid", uid_for(key))
        comp = self.composition_for(xr)
        uid = meta["uid"]
        owned = {
            (o.get("metadata") or {}).get("annotations", {}).get(RESOURCE_NAME_ANNOTATION, ""): o
            for o in self.store.owned_by(uid)
        }
        observed = {n: o for n, o in owned.items() if n}

        desired_xr: dict[str, Any] = {}
        desired: dict[str, fnv1.Resource] = {}
        context: dict[str, Any] = {context_keys.NOW: self.now}
        conditions: list[dict[str, Any]] = []
        ready_override = fnv1.READY_UNSPECIFIED
        events = self.events_by_object.setdefault(describe(key), [])
        events.clear()
        for step in (comp.get("spec") or {}).get("pipeline") or []:
            rsp = self._run_step(xr, observed, desired_xr, desired, context, step)
            fatal = [r for r in rsp.results if r.severity == fnv1.SEVERITY_FATAL]
            for r in rsp.results:
                sev = {fnv1.SEVERITY_FATAL: "Warning", fnv1.SEVERITY_WARNING: "Warning"}.get(
                    r.severity, "Normal")
                events.append(Event(describe(key), sev, r.reason or "ComposeResources",
                                    r.message))
            if fatal:
                # Crossplane aborts the reconcile: nothing applied, nothing deleted.
                xr.setdefault("status", {})
                xr["status"]["conditions"] = _merge_conditions(
                    xr["status"].get("conditions") or [],
                    [{"type": "Synced", "status": "False", "reason": "ReconcileError",
                      "message": f"cannot compose resources: pipeline step "
                                 f"{step.get('step')!r} returned a fatal result: "
                                 f"{fatal[0].message}"}], self.now)
                self.store.put(xr)
                return
            desired_xr = server.struct_to_dict(rsp.desired.composite.resource)
            if rsp.desired.composite.ready != fnv1.READY_UNSPECIFIED:
                ready_override = rsp.desired.composite.ready
            desired = {n: r for n, r in rsp.desired.resources.items()}
            context = server.struct_to_dict(rsp.context) if rsp.HasField("context") else {}
            for c in rsp.conditions:
                cond = {"type": c.type, "reason": c.reason,
                        "status": {fnv1.STATUS_CONDITION_TRUE: "True",
                                   fnv1.STATUS_CONDITION_FALSE: "False"}.get(c.status, "Unknown")}
                if c.message:
                    cond["message"] = c.message
                conditions.append(cond)

        # Apply desired composed resources, then garbage-collect what is no longer desired.
        unready: list[str] = []
        for rname in sorted(desired):
            res = desired[rname]
            obj = server.struct_to_dict(res.resource)
            self._apply_composed(xr, rname, obj, observed.get(rname))
            if res.ready != fnv1.READY_TRUE:
                unready.append(rname)
        for rname, obj in sorted(observed.items()):
            if rname not in desired:
                self.delete(key_of(obj))

        # XR status: the pipeline's desired status, its conditions, Synced and Ready.
        status = dict(xr.get("status") or {})
        for k, v in (desired_xr.get("status") or {}).items():
            if k != "conditions":
                status[k] = v
        if ready_override == fnv1.READY_TRUE or (ready_override == fnv1.READY_UNSPECIFIED
                                                 and not unready):
            ready = {"type": "Ready", "status": "True", "reason": "Available"}
        elif unready:
            ready = {"type": "Ready", "status": "False", "reason": "Creating",
                     "message": f"Unready resources: {_fmt_names(unready)}"}
        else:
            ready = {"type": "Ready", "status": "False", "reason": "Creating"}
        system = [{"type": "Synced", "status": "True", "reason": "ReconcileSuccess"}, ready]
        user = [c for c in conditions if c["type"] not in ("Ready", "Synced")]
        status["conditions"] = _merge_conditions(status.get("conditions") or [],
                                                 system + user, self.now)
        xr["status"] = status
        self.store.put(xr)

    def _run_step(self, xr: Obj, observed: dict[str, Obj], desired_xr: dict[str, Any],
                  desired: dict[str, fnv1.Resource], context: dict[str, Any],
                  step: dict[str, Any]) -> fnv1.RunFunctionResponse:
        req = fnv1.RunFunctionRequest(
            meta=fnv1.RequestMeta(tag=f"{describe(key_of(xr))}/{step.get('step')}",
                                  capabilities=[fnv1.CAPABILITY_CAPABILITIES,
                                                fnv1.CAPABILITY_REQUIRED_RESOURCES,
                                                fnv1.CAPABILITY_CONDITIONS]),
        )
        req.observed.composite.resource.CopyFrom(sdk_resource.dict_to_struct(xr))
        for n, o in observed.items():
            req.observed.resources[n].resource.CopyFrom(sdk_resource.dict_to_struct(o))
        req.desired.composite.resource.CopyFrom(sdk_resource.dict_to_struct(desired_xr))
        for n, r in desired.items():
            req.desired.resources[n].CopyFrom(r)
        if step.get("input") is not None:
            req.input.CopyFrom(sdk_resource.dict_to_struct(step["input"]))
        req.context.CopyFrom(sdk_resource.dict_to_struct(context))

        requirements: dict[str, Any] = {}
        rsp = fnv1.RunFunctionResponse()
        for attempt in range(MAX_REQUIREMENT_ITERATIONS + 1):
            rsp = self.client.run(req)
            if any(r.severity == fnv1.SEVERITY_FATAL for r in rsp.results):
                return rsp
            new = {n: s.SerializeToString(deterministic=True)
                   for n, s in rsp.requirements.resources.items()}
            if new == requirements:
                return rsp
            if attempt == MAX_REQUIREMENT_ITERATIONS:
                break
            requirements = new
            req.ClearField("required_resources")
            for n, sel in rsp.requirements.resources.items():
                req.required_resources[n].SetInParent()
                for obj in self._resolve(sel, xr):
                    item = req.required_resources[n].items.add()
                    item.resource.CopyFrom(sdk_resource.dict_to_struct(obj))
        raise RenderError(
            f"{describe(key_of(xr))}: step {step.get('step')!r}: requirements did not "
            f"stabilize after {MAX_REQUIREMENT_ITERATIONS} iterations"
        )

    def _resolve(self, sel: fnv1.ResourceSelector, xr: Obj) -> list[Obj]:
        which = sel.WhichOneof("match")
        ns = sel.namespace if sel.HasField("namespace") else None
        if which == "match_name":
            return self.store.select(sel.api_version, sel.kind, name=sel.match_name,
                                     namespace=ns if ns is not None else "")
        labels = dict(sel.match_labels.labels) if which == "match_labels" else None
        return self.store.select(sel.api_version, sel.kind, labels=labels, namespace=ns)

    def _apply_composed(self, xr: Obj, rname: str, obj: Obj, existing: Obj | None) -> None:
        xmeta = xr["metadata"]
        meta = obj.setdefault("metadata", {})
        if not meta.get("name"):
            meta["name"] = (existing or {}).get("metadata", {}).get("name") or (
                f"{xmeta['name']}-{hashlib.sha256(rname.encode()).hexdigest()[:5]}")
        if xmeta.get("namespace"):
            meta["namespace"] = xmeta["namespace"]  # v2 namespaced XRs compose into their namespace
        meta.setdefault("labels", {})[COMPOSITE_LABEL] = xmeta["name"]
        meta.setdefault("annotations", {})[RESOURCE_NAME_ANNOTATION] = rname
        meta["ownerReferences"] = [{
            "apiVersion": xr["apiVersion"], "kind": xr["kind"], "name": xmeta["name"],
            "uid": xmeta["uid"], "controller": True, "blockOwnerDeletion": True,
        }]
        key = key_of(obj)
        meta["uid"] = uid_for(key)
        current = self.store.get(key)
        # The API server stamps creation time once; render's logical clock stands in. It orders
        # first-come decisions in the simulation (DRA admission) like a real cluster's queue.
        meta["creationTimestamp"] = (((current or {}).get("metadata") or {})
                                     .get("creationTimestamp") or self.now)
        if current is not None:
            owner = next((r for r in current.get("metadata", {}).get("ownerReferences") or []
                          if r.get("controller")), None)
            if owner is not None and owner.get("uid") != xmeta["uid"]:
                raise RenderError(
                    f"{describe(key_of(xr))}: cannot apply composed resource {rname!r}: "
                    f"{describe(key)} is controlled by {owner.get('kind')} {owner.get('name')}"
                )
            if "status" in current:
                obj["status"] = current["status"]
        self.store.put(obj)

    def delete(self, key: Key) -> None:
        """Delete an object and, like Kubernetes' garbage collector, everything it controls."""
        obj = self.store.get(key)
        if obj is None:
            return
        uid = (obj.get("metadata") or {}).get("uid")
        self.store.delete(key)
        if uid:
            for child in self.store.owned_by(str(uid)):
                self.delete(key_of(child))
