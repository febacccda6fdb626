"""ModelEndpoint composition (step `compose-endpoint`): a routable backend on the control plane.

A ModelEndpoint is either composed by a ModelDeployment (one per Ready replica, ``spec.url`` the
replica's address behind its cluster's gateway) or hand-made for an external provider. Either
way it becomes a Service in its own namespace that the ModelService's HTTPRoute can reference
without a ReferenceGrant:

- an ``http`` IP upstream without a key: a selector-less Service + an EndpointSlice with the IP;
- anything that needs DNS, TLS or an API key: a Service in front of a small nginx Deployment
  (``routing.upstream`` explains why) whose config comes from a ConfigMap. The API key reaches
  nginx only as an environment variable read from the referenced Secret (``secretKeyRef``): the
  key is never copied into any spec, and this function never reads the Secret.

``status.ready`` is True when every composed object is ready (the proxy Deployment Available)
and the endpoint is not marked ``modelplane.ai/ready: "False"`` (an annotation its composer may
set to take an endpoint out of rotation without deleting it).
"""

from __future__ import annotations

from typing import Any

from modelplane.common import conditions
from modelplane.common.names import dns_label, short_hash
from modelplane.contract.api import (
    API_VERSION,
    GROUP,
    INFERENCE_CLUSTER,
    INFERENCE_GATEWAY,
    MODEL_DEPLOYMENT,
    MODEL_ENDPOINT,
)
from modelplane.contract.metadata import (
    CLUSTER_LABEL,
    CONFIG_HASH_ANNOTATION,
    ENDPOINT_LABEL,
    READY_ANNOTATION,
)
from modelplane.contract.ownership import not_composed_by
from modelplane.step import Desired, Resource, Selector, StepRequest, StepResult, require, step
from modelplane.steps.routing import Upstream, UpstreamError, endpointpolicy, parse_upstream
from modelplane.steps.routing.upstream import PROXY_PORT, PROXY_SERVICE_PORT

PROXY_IMAGE = "nginxinc/nginx-unprivileged:1.27-alpine"
PROXY_REPLICAS = 2  # the fallback path must survive a node drain
API_KEY_ENV = "MODELPLANE_UPSTREAM_API_KEY"
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
TEMPLATE_FILE = "default.conf.template"  # the image renders templates/X.template to conf.d/X


def proxy_config(up: Upstream) -> str:
    """nginx config template for a proxied upstream.

    The image's entrypoint substitutes only environment variables that are defined, so the
    key placeholder is filled from the Secret-backed variable at container start and nowhere
    else. Buffering is off so streamed completions (server-sent events) flow token by token.
    """
    # A name is resolved as an absolute name (trailing dot): the proxy pod's resolver would
    # otherwise try its search domains first, and "svc.other-namespace" would reach a Service
    # inside the control plane. Host header and SNI keep the name as written.
    target = f"{up.scheme}://{_absolute(up)}{up.path.rstrip('/')}/"
    lines = [
        "# Composed by Modelplane for a ModelEndpoint. ${" + API_KEY_ENV + "} is filled from",
        "# the referenced Secret by the image's entrypoint at container start.",
        "server {",
        f"    listen {PROXY_PORT};",
        "    location = /healthz {",
        "        access_log off;",
        "        return 200 \"ok\\n\";",
        "    }",
        "    location / {",
        f"        proxy_pass {target};",
        "        proxy_http_version 1.1;",
        f"        proxy_set_header Host {up.host_port};",
        "        proxy_set_header Connection \"\";",
        "        proxy_buffering off;",
        "        proxy_request_buffering off;",
        "        proxy_read_timeout 600s;",
        "        proxy_send_timeout 600s;",
    ]
    if up.scheme == "https":
        lines += [
            "        proxy_ssl_server_name on;",
            f"        proxy_ssl_name {up.host};",
            "        proxy_ssl_protocols TLSv1.2 TLSv1.3;",
            f"        proxy_ssl_verify {'off' if up.insecure_skip_verify else 'on'};",
            "        proxy_ssl_verify_depth 4;",
            f"        proxy_ssl_trusted_certificate {CA_BUNDLE};",
        ]
    if up.api_key_secret:
        lines.append(f"        proxy_set_header Authorization \"Bearer ${{{API_KEY_ENV}}}\";")
    lines += ["    }", "}", ""]
    return "\n".join(lines)


def _absolute(up: Upstream) -> str:
    if up.address_type != "FQDN":
        return up.host_port
    default = 443 if up.scheme == "https" else 80
    return f"{up.host}." + ("" if up.port == default else f":{up.port}")


def _labels(name: str) -> dict[str, str]:
    return {ENDPOINT_LABEL: dns_label(name)}


def _direct(name: str, up: Upstream) -> dict[str, Resource]:
    port = {"name": "http", "port": up.port, "protocol": "TCP", "appProtocol": "http"}
    return {
        "service": {
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": up.service, "labels": _labels(name)},
            "spec": {"type": "ClusterIP",
                     "ports": [{**port, "targetPort": up.port}]},
        },
        "endpointslice": {
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": up.service, "labels": {
                **_labels(name),
                "kubernetes.io/service-name": up.service,
                # Keeps Kubernetes' EndpointSlice controllers from adopting the slice.
                "endpointslice.kubernetes.io/managed-by": GROUP,
            }},
            "addressType": up.address_type,
            "ports": [port],
            "endpoints": [{"addresses": [up.host], "conditions": {"ready": True}}],
        },
    }


def _proxied(name: str, up: Upstream) -> dict[str, Resource]:
    config = proxy_config(up)
    selector = {**_labels(name), "app.kubernetes.io/name": "modelplane-endpoint-proxy"}
    container: dict[str, Any] = {
        "name": "proxy",
        "image": PROXY_IMAGE,
        "ports": [{"name": "http", "containerPort": PROXY_PORT, "protocol": "TCP"}],
        "volumeMounts": [{"name": "config", "mountPath": "/etc/nginx/templates",
                          "readOnly": True}],
        "readinessProbe": {"httpGet": {"path": "/healthz", "port": "http"},
                           "periodSeconds": 10},
        "livenessProbe": {"httpGet": {"path": "/healthz", "port": "http"},
                          "periodSeconds": 20},
        "resources": {"requests": {"cpu": "50m", "memory": "32Mi"},
                      "limits": {"memory": "128Mi"}},
        "securityContext": {"allowPrivilegeEscalation": False, "runAsNonRoot": True,
                            "capabilities": {"drop": ["ALL"]},
                            "seccompProfile": {"type": "RuntimeDefault"}},
    }
    if up.api_key_secret:
        container["env"] = [{"name": API_KEY_ENV, "valueFrom": {"secretKeyRef": {
            "name": up.api_key_secret, "key": up.api_key_key}}}]
    return {
        "proxy-config": {
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": up.service, "labels": _labels(name)},
            "data": {TEMPLATE_FILE: config},
        },
        "proxy": {
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": up.service, "labels": dict(selector)},
            "spec": {
                "replicas": PROXY_REPLICAS,
                "selector": {"matchLabels": dict(selector)},
                "template": {
                    # A config change rolls the pods (nginx reads its config at start).
                    "metadata": {"labels": dict(selector),
                                 "annotations": {CONFIG_HASH_ANNOTATION:
                                                 short_hash(config, length=12)}},
                    "spec": {
                        "automountServiceAccountToken": False,
                        "containers": [container],
                        "volumes": [{"name": "config",
                                     "configMap": {"name": up.service}}],
                    },
                },
            },
        },
        "service": {
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": up.service, "labels": _labels(name)},
            "spec": {"type": "ClusterIP", "selector": dict(selector),
                     "ports": [{"name": "http", "port": PROXY_SERVICE_PORT,
                                "targetPort": "http", "protocol": "TCP",
                                "appProtocol": "http"}]},
        },
    }


def _ready(req: StepRequest, rname: str) -> bool:
    obs = req.observed.get(rname)
    if obs is None:
        return False
    if obs.get("kind") == "Deployment":
        return conditions.is_true(obs, "Available")
    return True  # Services, EndpointSlices and ConfigMaps are ready once they exist


REFUSED_REASON = "EndpointRefused"


def _refused(req: StepRequest, res: StepResult, up: Upstream) -> tuple[str | None, str]:
    """Why the endpoint policy refuses this endpoint (None: it does not), and what it still
    waits for ("" when nothing).

    Only a host the default policy refuses needs more inputs (the requirements depend on the
    spec alone, so they are stable across the loop's calls). An endpoint composed for a replica
    (controlled by a ModelDeployment) is exempt when its URL is a replica address of its own
    namespace behind the gateway of the cluster it names; any other endpoint, including one
    that merely claims to be composed, is judged as hand-made against the platform allowlist.
    """
    if endpointpolicy.refusal(up.host) is None:
        return None, ""
    hint = ""
    if not_composed_by(req.composite, MODEL_DEPLOYMENT) is None:
        cname = ((req.composite.get("metadata") or {}).get("labels") or {}).get(CLUSTER_LABEL)
        if cname:
            clusters = require(req, res, "cluster", Selector(
                API_VERSION, INFERENCE_CLUSTER, match_name=str(cname)))
            if clusters is None:
                return None, f"InferenceCluster {cname!r} (label {CLUSTER_LABEL})"
            address = ((clusters[0].get("status") or {}).get("gateway") or {}).get(
                "address") if clusters else None
            if endpointpolicy.is_replica_address(str(req.spec.get("url")), req.namespace or "",
                                                 str(address) if address else None):
                return None, ""
            hint = (f" (nor is it a replica address of namespace {req.namespace!r} behind "
                    f"InferenceCluster {cname!r}'s gateway {address!r})")
    gateways = require(req, res, "gateways", Selector.labels(API_VERSION, INFERENCE_GATEWAY, {}))
    if gateways is None:
        return None, "the InferenceGateways' spec.endpointPolicy"
    why = endpointpolicy.refusal(up.host, endpointpolicy.policy_from(gateways))
    return (why + hint if why else None), ""


@step("compose-endpoint", kinds=[MODEL_ENDPOINT])
def compose(req: StepRequest) -> StepResult:
    res = StepResult()
    try:
        up = parse_upstream(req.name, req.spec)
    except UpstreamError as exc:
        res.desired = req.keep_observed()
        for rname in res.desired:
            res.desired[rname].ready = "True" if _ready(req, rname) else "False"
        res.status["ready"] = False
        msg = f"{exc}; keeping what exists, not routable until fixed"
        res.condition("Routable", "False", "InvalidSpec", msg)
        res.event("Warning", msg, "InvalidSpec")
        res.composite_ready = "False"
        return res

    why, waiting = _refused(req, res, up)
    if why is not None or waiting:
        res.desired = req.keep_observed()
        for rname in res.desired:
            res.desired[rname].ready = "True" if _ready(req, rname) else "False"
        res.status["ready"] = False
        if waiting:
            res.condition("Routable", "Unknown", "Resolving", f"waiting for {waiting}")
            return res
        msg = f"spec.url {req.spec.get('url')!r}: host {up.host!r} {why}; not routed"
        res.condition("Routable", "False", REFUSED_REASON, msg)
        res.event("Warning", msg, REFUSED_REASON)
        return res

    objs = _proxied(req.name, up) if up.proxied else _direct(req.name, up)
    for rname, obj in sorted(objs.items()):
        res.desired[rname] = Desired(obj, "True" if _ready(req, rname) else "False")
    if up.api_key_secret and up.scheme != "https":
        res.event("Warning", f"spec.url {req.spec.get('url')!r} is plain http: the API key from "
                             f"Secret {up.api_key_secret} crosses the network unencrypted",
                  "InsecureCredentials")

    marked = str(((req.composite.get("metadata") or {}).get("annotations") or {}).get(
        READY_ANNOTATION, "")).lower() == "false"
    pending = sorted(n for n, d in res.desired.items() if d.ready != "True")
    ready = not pending and not marked
    res.status["ready"] = ready
    res.composite_ready = "True" if ready else "False"  # marked out of rotation is not Ready
    how = (f"through proxy Deployment {up.service}" if up.proxied
           else f"directly at {up.host_port}")
    if marked:
        res.condition("Routable", "False", "MarkedNotReady",
                      f"annotation {READY_ANNOTATION}=False takes this endpoint out of rotation")
    elif pending:
        res.condition("Routable", "False", "BackendPending",
                      f"waiting for {', '.join(pending)} (Service {up.service}, {how})")
    else:
        res.condition("Routable", "True", "BackendReady", f"Service {up.service} routes {how}")
    return res
