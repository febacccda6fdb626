"""The endpoint policy: where a hand-made ModelEndpoint may send the shared gateway's traffic.

The gateway (and the endpoint proxy beside it) run on the control plane with its network
position, so an upstream is a server-side request: a tenant's URL must point outside every
cluster and the control plane. Refused, whatever the allowlist says:

- loopback (127.0.0.0/8, ::1), unspecified (0.0.0.0, ::), link-local (169.254.0.0/16,
  fe80::/10), multicast, and the cloud metadata services (169.254.169.254, fd00:ec2::254,
  100.100.100.200, metadata.google.internal, metadata);
- names that resolve inside a cluster: ``localhost``, ``kubernetes``, ``kubernetes.default``,
  anything under ``.svc``, ``.cluster.local``, ``.local``, ``.internal``, ``.localhost``;
- IPv4 addresses written any other way than a dotted quad (``2130706433``, ``0x7f.1``,
  ``0177.0.0.1``): resolvers decode those; and IPv6 forms embedding an IPv4 address
  (``::ffff:127.0.0.1``, 6to4, NAT64, IPv4-compatible) are judged by the address they embed.

Refused unless the platform's allowlist (``InferenceGateway.spec.endpointPolicy.allow``) names
them: every other non-global address (private 10/8, 172.16/12, 192.168/16, fc00::/7, shared
100.64/10, reserved ranges) and the cluster service ranges (10.96.0.0/12 and
``spec.endpointPolicy.serviceCIDRs``). Names outside the refused suffixes are allowed: the proxy
resolves them as absolute names (no search domains), see ``modelendpoint.proxy_config``.

Endpoints composed by a ModelDeployment for its replicas are not hand-made: their URL is the
replica's address behind its cluster's gateway (see :func:`is_replica_address`).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from modelplane.common.fields import mapping, sequence

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: Kubernetes' default Service CIDR (kube-apiserver --service-cluster-ip-range).
DEFAULT_SERVICE_CIDRS: tuple[IPNetwork, ...] = (ipaddress.ip_network("10.96.0.0/12"),)
METADATA_ADDRESSES = frozenset(ipaddress.ip_address(a) for a in (
    "169.254.169.254", "fd00:ec2::254", "100.100.100.200"))
REFUSED_NAMES = frozenset({"localhost", "kubernetes", "kubernetes.default", "metadata",
                           "metadata.google.internal", "instance-data"})
REFUSED_SUFFIXES = (".svc", ".cluster.local", ".local", ".internal", ".localhost",
                    ".localdomain", ".home.arpa")
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
_V4_COMPAT = ipaddress.ip_network("::/96")


@dataclass(frozen=True)
class EndpointPolicy:
    """The platform's allowlist and service ranges (union over the InferenceGateways)."""

    allow_networks: tuple[IPNetwork, ...] = ()
    allow_names: frozenset[str] = frozenset()
    service_cidrs: tuple[IPNetwork, ...] = DEFAULT_SERVICE_CIDRS
    problems: tuple[str, ...] = field(default=(), compare=False)


DEFAULT = EndpointPolicy()


def policy_from(gateways: Iterable[Mapping[str, Any]]) -> EndpointPolicy:
    """The policy of every InferenceGateway's ``spec.endpointPolicy``, combined."""
    nets: list[IPNetwork] = []
    names: set[str] = set()
    cidrs: list[IPNetwork] = list(DEFAULT_SERVICE_CIDRS)
    problems: list[str] = []
    for gw in gateways:
        gname = mapping(gw.get("metadata")).get("name")
        raw = mapping(mapping(gw.get("spec")).get("endpointPolicy"))
        for entry in sequence(raw.get("allow")):
            text = str(entry).strip().lower().rstrip(".")
            try:
                nets.append(ipaddress.ip_network(text, strict=False))
            except ValueError:
                if text:
                    names.add(text)
        for i, entry in enumerate(sequence(raw.get("serviceCIDRs"))):
            try:
                cidrs.append(ipaddress.ip_network(str(entry), strict=False))
            except ValueError:
                problems.append(f"InferenceGateway {gname} spec.endpointPolicy.serviceCIDRs[{i}] "
                                f"{entry!r} is not a CIDR")
    return EndpointPolicy(tuple(nets), frozenset(names), tuple(cidrs), tuple(problems))


def _embedded_v4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    if not isinstance(ip, ipaddress.IPv6Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if any(ip in n for n in _NAT64) or (ip in _V4_COMPAT and int(ip) > 1):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def _never(ip: IPAddress) -> str | None:
    if ip in METADATA_ADDRESSES:
        return "is a cloud metadata service"
    if ip.is_loopback:
        return "is a loopback address"
    if ip.is_unspecified:
        return "is the unspecified address"
    if ip.is_link_local:
        return "is a link-local address"
    if ip.is_multicast:
        return "is a multicast address"
    return None


def _ip_refusal(ip: IPAddress, policy: EndpointPolicy) -> str | None:
    for candidate in (ip, _embedded_v4(ip)):
        if candidate is None:
            continue
        which = "" if candidate is ip else f" (it embeds IPv4 {candidate})"
        why = _never(candidate)
        if why:
            return why + which
        allowed = any(candidate in n for n in policy.allow_networks
                      if n.version == candidate.version)
        if not allowed and any(candidate in n for n in policy.service_cidrs
                               if n.version == candidate.version):
            return ("is in a cluster service range" + which +
                    "; allow it in InferenceGateway spec.endpointPolicy.allow if intended")
        if not allowed and not candidate.is_global:
            return ("is not a public address (private, shared or reserved)" + which +
                    "; allow it in InferenceGateway spec.endpointPolicy.allow if intended")
    return None


def _inet_aton(host: str) -> ipaddress.IPv4Address | None:
    """The address a resolver reads into ``host`` when it is an IPv4 address in another
    encoding (``2130706433``, ``0x7f.1``, ``0177.0.0.1``), else None."""
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except (OSError, ValueError):
        return None


def refusal(host: str, policy: EndpointPolicy = DEFAULT) -> str | None:
    """Why a hand-made endpoint may not point at ``host`` (a URL's hostname), or None."""
    h = host.lower().strip("[]")
    try:
        ip = ipaddress.ip_address(h)
    except ValueError:
        ip = None
    if ip is not None:
        return _ip_refusal(ip, policy)
    decoded = _inet_aton(h)
    if decoded is not None:
        return (f"is IPv4 address {decoded} in a non-standard encoding; write a dotted-quad "
                "public address")
    name = h.rstrip(".")
    if name in policy.allow_names:
        return None
    if name in REFUSED_NAMES or "." not in name or name.endswith(REFUSED_SUFFIXES):
        return ("names a cluster-internal or metadata host (in-cluster Services, localhost, "
                "single-label names and .svc/.cluster.local/.local/.internal are refused)")
    return None


def is_replica_address(url: str, namespace: str, gateway_address: str | None) -> bool:
    """Whether ``url`` is a replica's address of ``namespace`` behind a cluster gateway
    (``<gateway>/<namespace>/<replica>``): what a composed endpoint carries."""
    if not gateway_address:
        return False
    base = gateway_address.rstrip("/")
    if "://" not in base:
        base = f"http://{base}"
    prefix = f"{base}/{namespace}/"
    rest = url[len(prefix):] if url.startswith(prefix) else ""
    return bool(rest) and "/" not in rest.rstrip("/") and ".." not in rest
