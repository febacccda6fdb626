"""A ModelEndpoint's upstream, parsed once, and the backend the gateway reaches it through.

Two shapes, chosen by what the upstream needs:

- **direct** (plain ``http`` to an IP address without an API key, e.g. a replica behind its
  cluster's gateway): a selector-less Service plus an EndpointSlice carrying the IP. The gateway
  connects to the upstream itself.
- **proxy** (``https``, a DNS name, or an API key): a small nginx Deployment on the control plane
  resolves the name, originates TLS (certificate and SNI verified unless
  ``tls.insecureSkipVerify``) and adds the ``Authorization`` header from the referenced Secret
  through an environment variable, so the key never appears in any object's spec. The gateway
  talks plain HTTP to it. Gateway API implementations SHOULD NOT follow ExternalName Services
  (Traefik refuses them) and EndpointSlice's FQDN address type is deprecated, so names are
  resolved by the proxy rather than by the gateway.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from modelplane.steps.routing.names import endpoint_object_name

PROXY_PORT = 8080  # the unprivileged nginx image listens here
PROXY_SERVICE_PORT = 80
DEFAULT_API_KEY_KEY = "api-key"
_DNS_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_PATH = re.compile(r"^/[-A-Za-z0-9/._~!$&'()*+,;=:@%]*$")


class UpstreamError(ValueError):
    """An endpoint spec that cannot be routed to; ``field`` names the offending spec field."""

    def __init__(self, field: str, value: Any, why: str) -> None:
        super().__init__(f"{field} {value!r}: {why}")
        self.field = field
        self.value = value
        self.why = why


@dataclass(frozen=True)
class Upstream:
    """What the gateway needs to reach one ModelEndpoint."""

    scheme: str  # http | https
    host: str  # DNS name or IP literal (no brackets)
    address_type: str  # IPv4 | IPv6 | FQDN
    port: int  # the upstream's port
    path: str  # the prefix OpenAI paths (/v1/...) live below upstream, "/" for none
    api_key_secret: str | None
    api_key_key: str
    insecure_skip_verify: bool
    service: str  # the backend Service's name

    @property
    def proxied(self) -> bool:
        return (self.scheme == "https" or self.api_key_secret is not None
                or self.address_type == "FQDN")

    @property
    def service_port(self) -> int:
        return PROXY_SERVICE_PORT if self.proxied else self.port

    @property
    def route_path(self) -> str:
        """What the route rewrites ``/<namespace>/<service>`` to for this backend.

        A proxy already forwards to the upstream's path, so the route sends it ``/``.
        """
        return "/" if self.proxied else self.path

    @property
    def host_port(self) -> str:
        host = f"[{self.host}]" if self.address_type == "IPv6" else self.host
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"


def parse_upstream(name: str, spec: dict[str, Any]) -> Upstream:
    """Parse a ModelEndpoint spec; raise UpstreamError naming the field on bad input."""
    url = spec.get("url")
    if not isinstance(url, str) or not url:
        raise UpstreamError("spec.url", url, "is required (an http or https URL)")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UpstreamError("spec.url", url, f"is not a valid URL ({exc})") from exc
    if parts.scheme not in ("http", "https"):
        raise UpstreamError("spec.url", url, "must start with http:// or https://")
    if parts.username or parts.password:
        raise UpstreamError("spec.url", url, "must not carry credentials; use apiKeySecretRef")
    host = (parts.hostname or "").lower()
    if not host:
        raise UpstreamError("spec.url", url, "has no host")
    try:
        ip = ipaddress.ip_address(host)
        address_type = "IPv4" if ip.version == 4 else "IPv6"
    except ValueError:
        if not _DNS_NAME.match(host) or len(host) > 253:
            raise UpstreamError(
                "spec.url", url, f"host {host!r} is not a DNS name or IP address") from None
        address_type = "FQDN"
    if parts.query or parts.fragment:
        raise UpstreamError("spec.url", url, "must not have a query or fragment")

    rewrite = spec.get("rewritePath")
    path = rewrite if rewrite else (parts.path or "/")
    field = "spec.rewritePath" if rewrite else "spec.url"
    if not isinstance(path, str) or not _PATH.match(path) or "//" in path or "/../" in path \
            or "/./" in path or path.endswith(("/..", "/.")):
        raise UpstreamError(field, rewrite or url, "path is not a clean absolute URL path")
    if len(path) > 1:
        path = path.rstrip("/")

    ref = spec.get("apiKeySecretRef")
    secret: str | None = None
    key = DEFAULT_API_KEY_KEY
    if ref is not None:
        if not isinstance(ref, dict) or not ref.get("name"):
            raise UpstreamError("spec.apiKeySecretRef.name", (ref or {}).get("name")
                                if isinstance(ref, dict) else ref, "is required")
        secret = str(ref["name"])
        key = str(ref.get("key") or DEFAULT_API_KEY_KEY)
    tls = spec.get("tls") or {}
    if tls and parts.scheme != "https":
        raise UpstreamError("spec.tls", tls, "only applies to an https url")
    return Upstream(
        scheme=parts.scheme, host=host, address_type=address_type,
        port=port or (443 if parts.scheme == "https" else 80), path=path,
        api_key_secret=secret, api_key_key=key,
        insecure_skip_verify=bool(tls.get("insecureSkipVerify")),
        service=endpoint_object_name(name),
    )
