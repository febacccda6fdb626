"""Builders for routing tests: ModelEndpoints and ModelServices as plain dicts."""

from __future__ import annotations

from typing import Any

API = "modelplane.ai/v1alpha1"
NS = "ml-team"


def endpoint(name: str, labels: dict[str, str] | None = None, *, ns: str = NS,
             url: str | None = None, ready: bool = True, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": API, "kind": "ModelEndpoint",
        "metadata": {"name": name, "namespace": ns, "labels": dict(labels or {})},
        "spec": {"url": url or f"http://34.1.2.3/{ns}/{name}", **spec},
        "status": {"ready": ready},
    }


def deployment_endpoint(name: str, deployment: str, *, jurisdiction: str = "us",
                        ready: bool = True, ns: str = NS) -> dict[str, Any]:
    return endpoint(name, {"modelplane.ai/deployment": deployment,
                           "modelplane.ai/jurisdiction": jurisdiction}, ready=ready, ns=ns)


def provider_endpoint(name: str, *, jurisdiction: str = "us", ready: bool = True,
                      ns: str = NS) -> dict[str, Any]:
    return endpoint(name, {"llm.example.com/provider": name,
                           "modelplane.ai/jurisdiction": jurisdiction},
                    url="https://api.together.xyz", ready=ready, ns=ns,
                    apiKeySecretRef={"name": f"{name}-key", "key": "api-key"})


def by_deployment(d: str, weight: int = 1, role: str = "Primary") -> dict[str, Any]:
    return {"selector": {"matchLabels": {"modelplane.ai/deployment": d}}, "weight": weight,
            "role": role}


def providers(role: str = "Fallback", weight: int = 1) -> dict[str, Any]:
    return {"selector": {"matchExpressions": [{"key": "llm.example.com/provider",
                                               "operator": "Exists"}]},
            "weight": weight, "role": role}


US_ONLY = {"selector": {"matchLabels": {"modelplane.ai/jurisdiction": "us"}}}


def canary_spec(boundary: bool = False) -> dict[str, Any]:
    spec: dict[str, Any] = {"endpoints": [by_deployment("qwen-stable", 90),
                                          by_deployment("qwen-canary", 10), providers()]}
    if boundary:
        spec["dataBoundary"] = US_ONLY
    return spec


def select(spec: dict[str, Any], pool: list[dict[str, Any]],
           namespace: str | None = None) -> list[list[dict[str, Any]]]:
    """What Crossplane returns per group: matchLabels only, in the given namespace (or all)."""
    out = []
    for g in spec["endpoints"]:
        want = (g.get("selector") or {}).get("matchLabels") or {}
        out.append([e for e in pool
                    if (namespace is None or e["metadata"]["namespace"] == namespace)
                    and all(e["metadata"]["labels"].get(k) == v for k, v in want.items())])
    return out
