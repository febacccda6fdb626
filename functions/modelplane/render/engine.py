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
import random
from collections.abc import Callable, Iterable
from concurrent import futures
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import crossplane.function.proto.v1.run_function_pb2 as fnv1
import grpc
from crossplane.function.proto.v1 import run_function_pb2_grpc as grpcv1

from modelplane import server
from modelplane.contract import context as context_keys
from modelplane.render import apiserver, providers
from modelplane.render.store import Key, Obj, Store, describe, group_of, key_of

COMPOSITE_LABEL = "crossplane.io/composite"
RESOURCE_NAME_ANNOTATION = "crossplane.io/composition-resource-name"
MAX_REQUIREMENT_ITERATIONS = 5  # Crossplane's limit on extra calls for required resources
# Crossplane's function client keeps gRPC's default receive limit: a response over 4 MiB fails.
MAX_RESPONSE_BYTES = 4 * 1024 * 1024
CLIENT_OPTIONS: list[tuple[str, Any]] = [
    ("grpc.max_receive_message_length", MAX_RESPONSE_BYTES),
    ("grpc.max_send_message_length", -1),  # gRPC-Go's default: requests are not limited
]
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
        self._channel = grpc.insecure_channel(self.target, options=CLIENT_OPTIONS)
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
    """crossplane-runtime's StableNAndSomeMore(3, names): sorted, unquoted, "a, b", "a, b, and c",
    "a, b, c, and 2 more" (what Crossplane writes in ``Unready resources: ...``)."""
    shown = sorted(names)
    if len(shown) > 3:
        return f"{', '.join(shown[:3])}, and {len(shown) - 3} more"
    if len(shown) == 3:
        return f"{', '.join(shown[:2])}, and {shown[2]}"
    return ", ".join(shown)


class Engine:
    """Reconciles every XR in a store through its Composition until a fixed point."""

    def __init__(self, store: Store, xrds: list[Obj], compositions: list[Obj],
                 client: FunctionClient, concurrency: int = 1, seed: int | None = None) -> None:
        self.store = store
        self.client = client
        # XRs reconciled at once: each wave of `concurrency` XRs reads one snapshot (Crossplane's
        # informer cache) and none sees another's writes; `seed` shuffles the order each round.
        self.concurrency = max(1, concurrency)
        self.seed = seed
        # The last intent applied to each composed object (its field ownership, for SSA).
        self.applied: dict[Key, Obj] = {}
        # Namespaces that exist before render applies anything: the control plane's own and
        # those of the objects given as input (the API server accepted them).
        self.namespaces = set(apiserver.BUILTIN_NAMESPACES) | {k[2] for k in store.all_keys()
                                                               if k[2]}
        self.xrd_scopes: dict[tuple[str, str], str] = {}
        # The events of each object's latest reconcile (older ones are superseded, as a user
        # reading `kubectl describe` after convergence would see them).
        self.events_by_object: dict[str, list[Event]] = {}
        # Usage -> the uid of its ``by`` once found (the owner reference the Usage controller
        # adds), so a Usage whose ``by`` is deleted is garbage-collected with it.
        self.usage_by: dict[Key, str] = {}
        self.round = 0
        self.retry_rounds = 0  # this round: rounds a failed pass needs to try every order
        self.xr_kinds: dict[tuple[str, str], Obj] = {}
        for xrd in xrds:
            spec = xrd.get("spec") or {}
            gk = (str(spec.get("group", "")), str((spec.get("names") or {}).get("kind", "")))
            self.xr_kinds[gk] = xrd
            self.xrd_scopes[gk] = str(spec.get("scope") or "Namespaced")
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
        quiet = 0  # consecutive rounds that changed nothing
        for self.round in range(1, max_rounds + 1):
            self.retry_rounds = 0
            before = {k: self.store.get(k) for k in self.store.all_keys()}
            keys = self.xr_keys()
            if self.seed is not None:
                random.Random(f"{self.seed}/{self.round}").shuffle(keys)
            for i in range(0, len(keys), self.concurrency):
                wave = keys[i:i + self.concurrency]
                view = self.store if self.concurrency == 1 else self.store.copy()
                for key in wave:
                    if key in self.store:
                        self.reconcile(key, view)
            self.collect_orphans()
            providers.simulate(self.store)
            after = {k: self.store.get(k) for k in self.store.all_keys()}
            last_changed = sorted(
                describe(k) for k in set(before) | set(after) if before.get(k) != after.get(k)
            )
            quiet = 0 if last_changed else quiet + 1
            # A reconcile that failed is requeued, and its next pass may take another order:
            # the fleet is at a fixed point only once every order had its turn without change.
            if quiet >= max(1, self.retry_rounds):
                return self.round
            if progress is not None and last_changed:
                progress(self.round, len(after), last_changed)
        if not last_changed:
            raise RenderError(f"no fixed point after {max_rounds} rounds: failed reconciles were "
                              f"still being retried in other orders (raise --max-rounds)")
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

    @staticmethod
    def _stamped(live: Obj, xr: Obj) -> Obj:
        """The live XR with what this reconcile sets on its metadata (uid, composite label)."""
        out = copy.deepcopy(live)
        meta = out.setdefault("metadata", {})
        meta["uid"] = xr["metadata"]["uid"]
        meta.setdefault("labels", {})[COMPOSITE_LABEL] = xr["metadata"]["labels"][COMPOSITE_LABEL]
        return out

    def _fail(self, key: Key, xr: Obj, message: str) -> None:
        """A reconcile error: Synced=False with the message; nothing else about the XR changes."""
        live = self.store.get(key)
        if live is None:
            return
        live = self._stamped(live, xr)
        status = live.setdefault("status", {})
        status["conditions"] = _merge_conditions(
            status.get("conditions") or [],
            [{"type": "Synced", "status": "False", "reason": "ReconcileError",
              "message": message}], self.now)
        self.store.put(live)

    def _requeue(self, names: list[str]) -> None:
        """A pass failed while going through ``names``: later rounds retry in other orders."""
        self.retry_rounds = max(self.retry_rounds, len(names))

    def _any_order(self, key: Key, names: list[str]) -> list[str]:
        """Crossplane applies and deletes in map order (none in particular) and stops at the
        first error. Render is deterministic: names sorted (shuffled once by --seed), then
        rotated by the round, so each gets its turn first as random order eventually gives it."""
        order = sorted(names)
        if self.seed is not None:
            random.Random(f"{self.seed}/{describe(key)}").shuffle(order)
        if order:
            k = self.round % len(order)
            order = order[k:] + order[:k]
        return order

    def reconcile(self, key: Key, view: Store | None = None) -> None:
        """Reconcile one XR as Crossplane does; ``view`` is the cache it reads (default: live)."""
        view = self.store if view is None else view
        current = view.get(key) or self.store.get(key)
        assert current is not None
        xr = copy.deepcopy(current)
        meta = xr.setdefault("metadata", {})
        meta.setdefault("uid", uid_for(key))
        # Crossplane labels a root XR with its own name; composed resources (nested XRs
        # included) copy the label, so everything beneath a root carries the root's name.
        labels = meta.setdefault("labels", {})
        labels.setdefault(COMPOSITE_LABEL, meta["name"])
        comp = self.composition_for(xr)
        uid = meta["uid"]
        owned = {
            (o.get("metadata") or {}).get("annotations", {}).get(RESOURCE_NAME_ANNOTATION, ""): o
            for o in view.owned_by(uid)
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
            try:
                rsp = self._run_step(xr, observed, desired_xr, desired, context, step, view)
            except grpc.RpcError as rpc_err:
                # Crossplane's client keeps gRPC's 4 MiB receive limit: a larger response is
                # a failed call (ResourceExhausted), and so a failed reconcile.
                self._fail(key, xr, f"cannot compose resources: cannot run pipeline step "
                                    f"{step.get('step')!r}: rpc error: code = "
                                    f"{rpc_err.code().name} desc = {rpc_err.details()}")
                return
            fatal = [r for r in rsp.results if r.severity == fnv1.SEVERITY_FATAL]
            for r in rsp.results:
                sev = {fnv1.SEVERITY_FATAL: "Warning", fnv1.SEVERITY_WARNING: "Warning"}.get(
                    r.severity, "Normal")
                events.append(Event(describe(key), sev, r.reason or "ComposeResources",
                                    r.message))
            if fatal:
                # Crossplane aborts the reconcile: nothing applied, nothing deleted.
                self._fail(key, xr, f"cannot compose resources: pipeline step "
                                    f"{step.get('step')!r} returned a fatal result: "
                                    f"{fatal[0].message}")
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

        # Render every desired composed resource's metadata; a cluster-scoped kind under a
        # namespaced XR fails the whole reconcile before anything is deleted or applied.
        objs: dict[str, Obj] = {}
        for rname in sorted(desired):
            obj = server.struct_to_dict(desired[rname].resource)
            err = self._render_metadata(xr, rname, obj, observed.get(rname))
            if err:
                self._fail(key, xr, f"cannot compose resources: {err}")
                return
            objs[rname] = obj

        # Garbage-collect what is no longer desired; a refused delete (a Usage) fails the
        # reconcile, and Crossplane stops there: the XR's status is not applied.
        garbage = [n for n in observed if n not in desired]
        for rname in self._any_order(key, garbage):
            obj = observed[rname]
            refusal = self.delete(key_of(obj))
            if refusal:
                self._requeue(garbage)
                self._fail(key, xr, f"cannot compose resources: cannot garbage collect "
                                    f"composed resources: cannot delete composed resource "
                                    f"{rname!r} (a {obj.get('kind')} named "
                                    f"{obj['metadata'].get('name')}): {refusal}")
                return

        # XR status: server-side applied as the pipeline's full intent, so a field no step
        # returns any more is gone. Conditions are Crossplane's own, set by type below.
        live = self._stamped(self.store.get(key) or xr, xr)
        old_conditions = (live.get("status") or {}).get("conditions") or []
        status = {k: v for k, v in (desired_xr.get("status") or {}).items() if k != "conditions"}
        status["conditions"] = old_conditions
        live["status"] = status
        self.store.put(live)

        # Apply the composed resources in no particular order; the first error fails the
        # reconcile (the rest are applied on the requeue).
        for rname in self._any_order(key, list(objs)):
            err = self._apply_composed(xr, rname, objs[rname])
            if err:
                self._requeue(list(objs))
                self._fail(key, xr, f"cannot compose resources: cannot apply composed "
                                    f"resource {rname!r}: {err}")
                return
        unready = [n for n in sorted(desired) if desired[n].ready != fnv1.READY_TRUE]

        if ready_override == fnv1.READY_TRUE or (ready_override == fnv1.READY_UNSPECIFIED
                                                 and not unready):
            ready = {"type": "Ready", "status": "True", "reason": "Available"}
        elif unready and ready_override != fnv1.READY_FALSE:
            # A function that says "not ready" itself gets no resource list (Crossplane v2.3).
            ready = {"type": "Ready", "status": "False", "reason": "Creating",
                     "message": f"Unready resources: {_fmt_names(unready)}"}
        else:
            ready = {"type": "Ready", "status": "False", "reason": "Creating"}
        system = [{"type": "Synced", "status": "True", "reason": "ReconcileSuccess"}, ready]
        user = [c for c in conditions if c["type"] not in ("Ready", "Synced")]
        status["conditions"] = _merge_conditions(old_conditions, system + user, self.now)
        live["status"] = status
        self.store.put(live)

    def _run_step(self, xr: Obj, observed: dict[str, Obj], desired_xr: dict[str, Any],
                  desired: dict[str, fnv1.Resource], context: dict[str, Any],
                  step: dict[str, Any], view: Store) -> fnv1.RunFunctionResponse:
        req = fnv1.RunFunctionRequest(
            meta=fnv1.RequestMeta(tag=f"{describe(key_of(xr))}/{step.get('step')}",
                                  capabilities=[fnv1.CAPABILITY_CAPABILITIES,
                                                fnv1.CAPABILITY_REQUIRED_RESOURCES,
                                                fnv1.CAPABILITY_CONDITIONS]),
        )
        req.observed.composite.resource.CopyFrom(server.dict_to_struct(xr))
        for n, o in observed.items():
            req.observed.resources[n].resource.CopyFrom(server.dict_to_struct(o))
        req.desired.composite.resource.CopyFrom(server.dict_to_struct(desired_xr))
        for n, r in desired.items():
            req.desired.resources[n].CopyFrom(r)
        if step.get("input") is not None:
            req.input.CopyFrom(server.dict_to_struct(step["input"]))
        req.context.CopyFrom(server.dict_to_struct(context))

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
                for obj in self._resolve(sel, view):
                    item = req.required_resources[n].items.add()
                    item.resource.CopyFrom(server.dict_to_struct(obj))
        raise RenderError(
            f"{describe(key_of(xr))}: step {step.get('step')!r}: requirements did not "
            f"stabilize after {MAX_REQUIREMENT_ITERATIONS} iterations"
        )

    def _resolve(self, sel: fnv1.ResourceSelector, view: Store) -> list[Obj]:
        which = sel.WhichOneof("match")
        ns = sel.namespace if sel.HasField("namespace") else None
        if which == "match_name":
            return view.select(sel.api_version, sel.kind, name=sel.match_name,
                               namespace=ns if ns is not None else "")
        labels = dict(sel.match_labels.labels) if which == "match_labels" else None
        return view.select(sel.api_version, sel.kind, labels=labels, namespace=ns)

    def _render_metadata(self, xr: Obj, rname: str, obj: Obj, existing: Obj | None) -> str:
        """Crossplane's composed metadata on ``obj`` (in place); an error message, or ""."""
        xmeta = xr["metadata"]
        meta = obj.setdefault("metadata", {})
        if existing is not None:  # an existing composed resource keeps its name and namespace
            meta["name"] = existing["metadata"]["name"]
            if existing["metadata"].get("namespace"):
                meta["namespace"] = existing["metadata"]["namespace"]
        if not meta.get("name"):
            # Crossplane's generateName is the root's name; the suffix is random there and a
            # hash of the composing XR and resource name here.
            seed = f"{describe(key_of(xr))}/{rname}"
            meta["name"] = (f"{xmeta['labels'][COMPOSITE_LABEL]}-"
                            f"{hashlib.sha256(seed.encode()).hexdigest()[:5]}")
        if xmeta.get("namespace"):
            if not meta.get("namespace") and apiserver.cluster_scoped(
                    str(obj.get("apiVersion", "")), str(obj.get("kind", "")), self.xrd_scopes):
                return (f"cannot apply cluster scoped composed resource {rname!r} (a "
                        f"{obj.get('kind')} named {meta['name']}) for a namespaced composite "
                        f"resource")
            meta["namespace"] = xmeta["namespace"]  # v2 namespaced XRs compose into their namespace
        meta.setdefault("labels", {})[COMPOSITE_LABEL] = xmeta["labels"][COMPOSITE_LABEL]
        meta.setdefault("annotations", {})[RESOURCE_NAME_ANNOTATION] = rname
        meta["ownerReferences"] = [{
            "apiVersion": xr["apiVersion"], "kind": xr["kind"], "name": xmeta["name"],
            "uid": xmeta["uid"], "controller": True, "blockOwnerDeletion": True,
        }]
        return ""

    def _apply_composed(self, xr: Obj, rname: str, obj: Obj) -> str:
        """Server-side apply one composed resource; an error message, or "" when applied."""
        xmeta = xr["metadata"]
        key = key_of(obj)
        current = self.store.get(key)
        ns = key[2]
        if current is None and ns and not apiserver.namespace_exists(self.store, ns,
                                                                     self.namespaces):
            return f'namespaces "{ns}" not found'
        if current is not None:
            owner = next((r for r in current.get("metadata", {}).get("ownerReferences") or []
                          if r.get("controller")), None)
            if owner is not None and owner.get("uid") != xmeta["uid"]:
                return (f"{describe(key)} is controlled by {owner.get('kind')} "
                        f"{owner.get('name')} (uid {owner.get('uid')}), not by this composite")
            # Others' owner references (not controllers) survive, as SSA merges them by uid.
            others = [r for r in current.get("metadata", {}).get("ownerReferences") or []
                      if r.get("uid") != xmeta["uid"]]
            obj["metadata"]["ownerReferences"] = obj["metadata"]["ownerReferences"] + others
        merged = apiserver.server_side_apply(current, self.applied.get(key), obj)
        self.applied[key] = copy.deepcopy(obj)
        mmeta = merged.setdefault("metadata", {})
        # The API server stamps uid and creation time once; render's logical clock stands in.
        # Creation time orders first-come decisions in the simulation (DRA admission).
        mmeta["uid"] = ((current or {}).get("metadata") or {}).get("uid") or uid_for(key)
        mmeta["creationTimestamp"] = (((current or {}).get("metadata") or {})
                                      .get("creationTimestamp") or self.now)
        self.store.put(merged)
        return ""

    def delete(self, key: Key) -> str:
        """Delete an object and, like Kubernetes' garbage collector, everything it controls.

        Returns the admission webhook's refusal when a Usage protects the object (nothing is
        deleted then), else "". A Usage whose ``by`` still exists is held by its finalizer:
        it stays (terminating) until ``by`` is gone. Protected dependents are left for the
        garbage collector's next sweep (``collect_orphans``).
        """
        obj = self.store.get(key)
        if obj is None:
            return ""
        refusal = apiserver.refused_delete(self.store, key)
        if refusal:
            # The webhook records the refused attempt on the object (the policy it used), so a
            # Usage with replayDeletion can delete it once the Usage goes.
            attempted = copy.deepcopy(obj)
            notes = attempted["metadata"].setdefault("annotations", {})
            if notes.get(apiserver.DELETION_ATTEMPT_ANNOTATION) != "Background":
                notes[apiserver.DELETION_ATTEMPT_ANNOTATION] = "Background"
                self.store.put(attempted)
            return refusal
        if apiserver.usage_held(self.store, key):
            held = copy.deepcopy(obj)
            held["metadata"].setdefault("deletionTimestamp", self.now)
            self.store.put(held)
            return ""
        uid = (obj.get("metadata") or {}).get("uid")
        self.store.delete(key)
        self.applied.pop(key, None)
        self.usage_by.pop(key, None)
        if uid:
            for child in self.store.owned_by(str(uid)):
                self.delete(key_of(child))
        self._replay_deletion(key, obj)
        return ""

    def _replay_deletion(self, key: Key, obj: Obj) -> None:
        """A Usage with ``replayDeletion`` that is gone deletes what it protected, if a deletion
        of it was refused before (Crossplane's usage controller; it may be refused again by
        another Usage, which records the attempt again)."""
        if key[0] != apiserver.PROTECTION_GROUP or key[1] not in apiserver.USAGE_KINDS:
            return
        if not (obj.get("spec") or {}).get("replayDeletion"):
            return
        of = apiserver.of_key(key, obj)
        if of is None:
            return
        target = next((k for k in (of, (*of[:2], "", of[3])) if k in self.store), None)
        used = self.store.get(target) if target else None
        notes = ((used or {}).get("metadata") or {}).get("annotations") or {}
        if target is not None and apiserver.DELETION_ATTEMPT_ANNOTATION in notes:
            self.delete(target)

    def collect_orphans(self) -> None:
        """Kubernetes' garbage collector: retry deleting what lost its controller, release
        terminating Usages whose ``by`` is gone, and delete Usages whose ``by`` was found and
        is gone now (the Usage controller made ``by`` their owner)."""
        uids = {str((o.get("metadata") or {}).get("uid")) for _, o in self.store.items()}
        for key, obj in list(self.store.items()):
            meta = obj.get("metadata") or {}
            owner = next((r for r in meta.get("ownerReferences") or [] if r.get("controller")),
                         None)
            if key[0] == apiserver.PROTECTION_GROUP and key[1] in apiserver.USAGE_KINDS:
                by_uid = apiserver.by_uid(self.store, key)
                if by_uid:
                    # The Usage controller makes ``by`` an owner of the Usage once it finds it.
                    self.usage_by[key] = by_uid
                elif self.usage_by.get(key, "") not in ("", *uids):
                    owner = {"uid": self.usage_by[key]}  # that owner is gone: collected
            if ((owner is not None and str(owner.get("uid")) not in uids)
                    or meta.get("deletionTimestamp")):
                self.delete(key)
