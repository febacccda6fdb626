"""The pod-template policy: what a tenant's engine pod template may ask of a shared GPU node.

A ModelDeployment's member templates pass through to inference clusters that many namespaces
share, applied with the platform's credentials. This module is the one statement of what such a
template may contain; the ModelDeployment step (before it composes replicas), the ModelReplica
step (before it composes workloads, with the hosting cluster's settings) and the remote
Namespace's Pod Security labels all read it. docs/security.md explains it for users.

Three layers, each stricter than the one before it may relax:

- **The floor** (always, every cluster, also enforced by the XRDs' CEL rules at admission): what
  Kubernetes Pod Security *baseline* forbids (host network/PID, privileged, hostPath, host
  ports, ``procMount``, SELinux types and users, unsafe sysctls, Unconfined seccomp/AppArmor,
  Windows host processes), and everything that would override placement or identity
  (``nodeName``, ``nodeSelector``, ``affinity``, ``tolerations``, ``schedulerName``,
  ``priorityClassName``, ``serviceAccountName``): Modelplane sets those.
- **Modelplane's default** (per cluster; a platform team may grant exceptions per namespace in
  ``InferenceCluster.spec.podSecurity.exceptions``): no added capabilities, no
  ``allowPrivilegeEscalation: true``, no ``hostIPC`` (multi-node engines over RDMA sometimes need
  ``IPC_LOCK`` and ``hostIPC``: those are the exceptions worth granting, by name).
- **restricted** (``InferenceCluster.spec.podSecurity.level: restricted``): Pod Security's
  restricted profile on top (non-root, seccomp set, capabilities dropped, volume types).

A violation is reported as the field path and value; nothing here raises.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from modelplane.common.fields import mapping, sequence

BASELINE = "baseline"
RESTRICTED = "restricted"
PRIVILEGED = "privileged"
LEVELS = (BASELINE, RESTRICTED)
#: The Pod Security Standards version the labels name; Modelplane's own checks follow the
#: baseline and restricted lists of Kubernetes v1.33.
PSA_VERSION = "latest"
PSA_PREFIX = "pod-security.kubernetes.io/"

#: Capabilities Pod Security baseline lets a container add (Kubernetes' published list).
BASELINE_CAPABILITIES = frozenset({
    "AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
    "NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT"})
#: The sysctls Pod Security baseline calls safe.
SAFE_SYSCTLS = frozenset({
    "kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies", "net.ipv4.ping_group_range", "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes"})
SELINUX_TYPES = frozenset({"", "container_t", "container_init_t", "container_kvm_t",
                           "container_engine_t"})
#: Volume sources Pod Security restricted allows.
RESTRICTED_VOLUMES = frozenset({"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral",
                                "persistentVolumeClaim", "projected", "secret"})
APPARMOR_ANNOTATION = "container.apparmor.security.beta.kubernetes.io/"
#: PodSpec fields that would override where placement put the pods or whose identity they run as.
PLACEMENT_FIELDS = ("nodeName", "nodeSelector", "affinity", "tolerations", "schedulerName",
                    "priorityClassName")
CONTAINER_LISTS = ("initContainers", "containers", "ephemeralContainers")
#: How deep a free-form value (a template's PodSpec) may nest, counting maps and lists. Every
#: request carrying it (the ModelReplica inside an InferenceCluster's required resources, the
#: workload Object observed by the replica) must stay within protobuf's decoding limit of 100
#: nested messages; tests/security/test_depth.py shows the pipeline decodes this depth.
MAX_FREE_FORM_DEPTH = 16


@dataclass(frozen=True)
class Violation:
    """One forbidden field: its path, its value and why."""

    path: str
    value: Any
    why: str

    def __str__(self) -> str:
        return f"{self.path} {self.value!r}: {self.why}"


@dataclass(frozen=True)
class Grant:
    """Exceptions a platform team granted one namespace on one cluster."""

    capabilities: frozenset[str] = frozenset()
    host_ipc: bool = False
    allow_privilege_escalation: bool = False

    @property
    def empty(self) -> bool:
        return not (self.capabilities or self.host_ipc or self.allow_privilege_escalation)


NO_GRANT = Grant()


@dataclass(frozen=True)
class PodPolicy:
    """A cluster's pod policy (``InferenceCluster.spec.podSecurity``)."""

    level: str = BASELINE
    service_account: str | None = None  # the platform's default; None: the namespace default
    exceptions: Mapping[str, Grant] = field(default_factory=dict)

    def grant(self, namespace: str) -> Grant:
        return self.exceptions.get(namespace, NO_GRANT)

    def enforce_level(self, namespace: str) -> str:
        """The Pod Security level the remote namespace enforces.

        The cluster's level, unless an exception granted there is something that level forbids:
        then Pod Security admission cannot tell the granted field from any other, so it only
        warns and audits at the level while Modelplane's own check (this module) enforces.
        """
        g = self.grant(namespace)
        if g.host_ipc or (g.capabilities - BASELINE_CAPABILITIES):
            return PRIVILEGED
        if self.level == RESTRICTED and (g.allow_privilege_escalation
                                         or g.capabilities - {"NET_BIND_SERVICE"}):
            return PRIVILEGED
        return self.level


DEFAULT = PodPolicy()


def policy_from(cluster: Mapping[str, Any] | None) -> PodPolicy:
    """The pod policy an InferenceCluster declares; the default (baseline, no exceptions) when
    it declares none. Admission validates the block; a malformed one reads as the default."""
    raw = mapping(mapping(mapping(cluster).get("spec")).get("podSecurity"))
    level = raw.get("level") if raw.get("level") in LEVELS else BASELINE
    sa = raw.get("serviceAccountName")
    grants: dict[str, Grant] = {}
    for e in sequence(raw.get("exceptions")):
        e = mapping(e)
        ns = e.get("namespace")
        if not isinstance(ns, str) or not ns:
            continue
        prev = grants.get(ns, NO_GRANT)
        caps = frozenset(str(c) for c in sequence(e.get("capabilities")) if isinstance(c, str))
        grants[ns] = Grant(prev.capabilities | caps,
                           prev.host_ipc or e.get("hostIPC") is True,
                           prev.allow_privilege_escalation
                           or e.get("allowPrivilegeEscalation") is True)
    return PodPolicy(level=str(level), service_account=str(sa) if isinstance(sa, str) and sa
                     else None, exceptions=grants)


def namespace_labels(policy: PodPolicy, namespace: str) -> dict[str, str]:
    """Pod Security admission labels for a remote namespace Modelplane creates for workloads."""
    enforce = policy.enforce_level(namespace)
    return {
        f"{PSA_PREFIX}enforce": enforce, f"{PSA_PREFIX}enforce-version": PSA_VERSION,
        f"{PSA_PREFIX}warn": policy.level, f"{PSA_PREFIX}warn-version": PSA_VERSION,
        f"{PSA_PREFIX}audit": policy.level, f"{PSA_PREFIX}audit-version": PSA_VERSION,
    }


def namespace_manifest(namespace: str, policy: PodPolicy) -> dict[str, Any]:
    """The remote Namespace every composite of ``namespace`` ensures on a cluster (identical for
    all of them: a ModelReplica's and a ModelCache's must not fight over its labels)."""
    return {"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": namespace,
                         "labels": namespace_labels(policy, namespace)}}


# -- the checks --------------------------------------------------------------------------------

def too_deep(value: Any, path: str, limit: int) -> str | None:
    """The path of the first value nested more than ``limit`` maps/lists below ``value``."""
    stack: list[tuple[Any, str, int]] = [(value, path, 0)]
    while stack:
        v, p, d = stack.pop()
        if isinstance(v, dict):
            items: list[tuple[Any, str]] = [(x, f"{p}.{k}") for k, x in v.items()]
        elif isinstance(v, list):
            items = [(x, f"{p}[{i}]") for i, x in enumerate(v)]
        else:
            continue
        if d >= limit and items:
            return p
        stack.extend((x, q, d + 1) for x, q in items)
    return None


def _true(v: Any) -> bool:
    return v is True


def _set(v: Any) -> bool:
    """Present with a value Kubernetes would act on (null and absent are the same)."""
    return v is not None


def _security_common(sc: dict[str, Any], path: str, out: list[Violation]) -> None:
    """The baseline checks shared by pod and container securityContext."""
    win = mapping(sc.get("windowsOptions"))
    if _true(win.get("hostProcess")):
        out.append(Violation(f"{path}.windowsOptions.hostProcess", True,
                             "Windows host processes are not allowed (Pod Security baseline)"))
    se = mapping(sc.get("seLinuxOptions"))
    if se.get("type") not in (None, *SELINUX_TYPES):
        out.append(Violation(f"{path}.seLinuxOptions.type", se.get("type"),
                             f"only {', '.join(sorted(t for t in SELINUX_TYPES if t))} are "
                             "allowed (Pod Security baseline)"))
    for k in ("user", "role"):
        if se.get(k) not in (None, ""):
            out.append(Violation(f"{path}.seLinuxOptions.{k}", se.get(k),
                                 "custom SELinux users and roles are not allowed "
                                 "(Pod Security baseline)"))
    for prof in ("seccompProfile", "appArmorProfile"):
        t = mapping(sc.get(prof)).get("type")
        if t == "Unconfined":
            out.append(Violation(f"{path}.{prof}.type", t,
                                 "Unconfined is not allowed (Pod Security baseline)"))


def floor(template: Any, path: str) -> list[Violation]:
    """What no cluster allows: the baseline floor and the placement/identity overrides.

    The same rules run at admission (the ModelDeployment and ModelReplica XRDs' CEL), so this
    only finds objects admitted before them or written around the API server.
    """
    out: list[Violation] = []
    tmpl = mapping(template)
    spec = mapping(tmpl.get("spec"))
    sp = f"{path}.spec"
    deep = too_deep(spec, sp, MAX_FREE_FORM_DEPTH)
    if deep is not None:
        out.append(Violation(deep, "...", f"nests deeper than {MAX_FREE_FORM_DEPTH} levels, more "
                             "than every request carrying it can decode"))
    for f in ("hostNetwork", "hostPID"):
        if _true(spec.get(f)):
            out.append(Violation(f"{sp}.{f}", True, "host namespaces are not allowed "
                                 "(Pod Security baseline)"))
    for f in PLACEMENT_FIELDS:
        if _set(spec.get(f)):
            out.append(Violation(f"{sp}.{f}", spec.get(f), "is set by Modelplane from placement "
                                 "(the cluster's node pool and taints); remove it"))
    for f in ("serviceAccountName", "serviceAccount"):
        if _set(spec.get(f)):
            out.append(Violation(f"{sp}.{f}", spec.get(f), "pods run as the service account the "
                                 "platform sets for the cluster; remove it"))
    psc = mapping(spec.get("securityContext"))
    _security_common(psc, f"{sp}.securityContext", out)
    for i, s in enumerate(sequence(psc.get("sysctls"))):
        name = mapping(s).get("name")
        if name not in SAFE_SYSCTLS:
            out.append(Violation(f"{sp}.securityContext.sysctls[{i}].name", name,
                                 "only the sysctls Pod Security baseline calls safe are allowed"))
    for i, v in enumerate(sequence(spec.get("volumes"))):
        if _set(mapping(v).get("hostPath")):
            out.append(Violation(f"{sp}.volumes[{i}].hostPath", mapping(v).get("hostPath"),
                                 "hostPath volumes are not allowed (Pod Security baseline)"))
    for lst in CONTAINER_LISTS:
        for i, c in enumerate(sequence(spec.get(lst))):
            c = mapping(c)
            cp = f"{sp}.{lst}[{i}]"
            sc = mapping(c.get("securityContext"))
            if _true(sc.get("privileged")):
                out.append(Violation(f"{cp}.securityContext.privileged", True,
                                     "privileged containers are not allowed "
                                     "(Pod Security baseline)"))
            if sc.get("procMount") not in (None, "Default"):
                out.append(Violation(f"{cp}.securityContext.procMount", sc.get("procMount"),
                                     "only the Default /proc mount is allowed "
                                     "(Pod Security baseline)"))
            _security_common(sc, f"{cp}.securityContext", out)
            for j, p in enumerate(sequence(c.get("ports"))):
                hp = mapping(p).get("hostPort")
                if hp not in (None, 0):
                    out.append(Violation(f"{cp}.ports[{j}].hostPort", hp,
                                         "host ports are not allowed (Pod Security baseline)"))
    annotations = mapping(mapping(tmpl.get("metadata")).get("annotations"))
    for k, v in sorted(annotations.items()):
        if str(k).startswith(APPARMOR_ANNOTATION) and not (
                v == "runtime/default" or str(v).startswith("localhost/")):
            out.append(Violation(f"{path}.metadata.annotations[{k}]", v,
                                 "only runtime/default and localhost/ AppArmor profiles are "
                                 "allowed (Pod Security baseline)"))
    return out


def _restricted(spec: dict[str, Any], sp: str, grant: Grant, out: list[Violation]) -> None:
    for i, v in enumerate(sequence(spec.get("volumes"))):
        kinds = sorted(k for k in mapping(v) if k != "name")
        bad = [k for k in kinds if k not in RESTRICTED_VOLUMES]
        if bad:
            out.append(Violation(f"{sp}.volumes[{i}].{bad[0]}", mapping(v).get(bad[0]),
                                 f"restricted allows only {', '.join(sorted(RESTRICTED_VOLUMES))} "
                                 "volumes"))
    psc = mapping(spec.get("securityContext"))
    pod_nonroot = psc.get("runAsNonRoot") is True
    pod_seccomp = mapping(psc.get("seccompProfile")).get("type")
    if psc.get("runAsUser") == 0:
        out.append(Violation(f"{sp}.securityContext.runAsUser", 0,
                             "restricted forbids running as root"))
    for lst in CONTAINER_LISTS:
        for i, c in enumerate(sequence(spec.get(lst))):
            c = mapping(c)
            cp = f"{sp}.{lst}[{i}].securityContext"
            sc = mapping(c.get("securityContext"))
            if sc.get("allowPrivilegeEscalation") is not False \
                    and not grant.allow_privilege_escalation:
                out.append(Violation(f"{cp}.allowPrivilegeEscalation",
                                     sc.get("allowPrivilegeEscalation"),
                                     "restricted needs it set to false"))
            nonroot = sc.get("runAsNonRoot")
            if nonroot is False or (nonroot is None and not pod_nonroot):
                out.append(Violation(f"{cp}.runAsNonRoot", nonroot,
                                     "restricted needs true (here or on the pod)"))
            if sc.get("runAsUser") == 0:
                out.append(Violation(f"{cp}.runAsUser", 0, "restricted forbids running as root"))
            seccomp = mapping(sc.get("seccompProfile")).get("type") or pod_seccomp
            if seccomp not in ("RuntimeDefault", "Localhost"):
                out.append(Violation(f"{cp}.seccompProfile.type", seccomp,
                                     "restricted needs RuntimeDefault or Localhost (here or on "
                                     "the pod)"))
            drop = [str(x) for x in sequence(mapping(sc.get("capabilities")).get("drop"))]
            if "ALL" not in drop:
                out.append(Violation(f"{cp}.capabilities.drop", drop or None,
                                     "restricted needs ALL dropped"))


def check(template: Any, path: str, policy: PodPolicy | None = None,
          namespace: str = "") -> list[Violation]:
    """Every violation of ``template`` (a member's pod template at ``path``).

    With ``policy`` None only :func:`floor` runs (the ModelDeployment step does not know the
    hosting cluster yet); with a cluster's policy, Modelplane's default and the level run too,
    relaxed by what the cluster granted ``namespace``.
    """
    out = floor(template, path)
    if policy is None:
        return out
    grant = policy.grant(namespace)
    spec = mapping(mapping(template).get("spec"))
    sp = f"{path}.spec"
    if _true(spec.get("hostIPC")) and not grant.host_ipc:
        out.append(Violation(f"{sp}.hostIPC", True, "host namespaces are not allowed (Pod "
                             "Security baseline) unless the cluster grants this namespace hostIPC"))
    for lst in CONTAINER_LISTS:
        for i, c in enumerate(sequence(spec.get(lst))):
            sc = mapping(mapping(c).get("securityContext"))
            cp = f"{sp}.{lst}[{i}].securityContext"
            for j, cap in enumerate(sequence(mapping(sc.get("capabilities")).get("add"))):
                if cap not in grant.capabilities:
                    out.append(Violation(f"{cp}.capabilities.add[{j}]", cap,
                                         "added capabilities are not allowed unless the cluster "
                                         "grants them to this namespace "
                                         "(spec.podSecurity.exceptions)"))
            if _true(sc.get("allowPrivilegeEscalation")) and not grant.allow_privilege_escalation:
                out.append(Violation(f"{cp}.allowPrivilegeEscalation", True,
                                     "privilege escalation is not allowed unless the cluster "
                                     "grants it to this namespace (spec.podSecurity.exceptions)"))
    if policy.level == RESTRICTED:
        _restricted(spec, sp, grant, out)
    return out


def describe(violations: list[Violation], limit: int = 3) -> str:
    """A condition message: the first few violations, and how many more."""
    shown = "; ".join(str(v) for v in violations[:limit])
    more = len(violations) - limit
    return shown + (f" (and {more} more)" if more > 0 else "")
