"""End to end: examples/canary-fallback rendered through the real function server.

The 90/10 canary is visible in the render; marking the primaries unhealthy (the simulation's
fault injection) moves all traffic to the fallback inside the data boundary, and healing them
moves it back. Each state is re-rendered from the previous render's JSON, as a user would.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from modelplane.render import Fleet, render_fleet
from modelplane.render.providers import HEALTH_ANNOTATION

from tests.conformance import problems

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "canary-fallback"
ROUTING_OWNERS = {"InferenceGateway", "ModelEndpoint", "ModelService"}


def _rerender(tmp: Path, fleet: Fleet, name: str, health: str | None) -> Fleet:
    state = fleet.objects()
    for obj in state:
        if obj["kind"] == "ModelDeployment":
            notes = obj["metadata"].setdefault("annotations", {})
            if health is None:
                notes.pop(HEALTH_ANNOTATION, None)
            else:
                notes[HEALTH_ANNOTATION] = health
    path = tmp / f"{name}.json"
    path.write_text(json.dumps(state))
    return render_fleet([path])


@pytest.fixture(scope="module")
def fleets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Fleet]:
    tmp = tmp_path_factory.mktemp("canary-fallback")
    healthy = render_fleet([EXAMPLE])
    broken = _rerender(tmp, healthy, "broken", "Unhealthy")
    healed = _rerender(tmp, broken, "healed", None)
    return {"healthy": healthy, "broken": broken, "healed": healed}


def _service(fleet: Fleet) -> dict[str, Any]:
    svc = fleet.get("ModelService", "qwen", "ml-team")
    assert svc is not None
    return svc


def _weights(fleet: Fleet) -> dict[str, int]:
    """Traffic share per deployment (or provider), from the ModelService status."""
    out: dict[str, int] = {}
    for b in _service(fleet)["status"]["backends"]:
        ep = fleet.get("ModelEndpoint", b["endpoint"], "ml-team")
        assert ep is not None
        labels = ep["metadata"].get("labels") or {}
        owner = labels.get("modelplane.ai/deployment") or labels["llm.example.com/provider"]
        out[owner] = out.get(owner, 0) + b["weight"]
    return out


def _routing(fleet: Fleet) -> tuple[str, str]:
    c = next(c for c in _service(fleet)["status"]["conditions"] if c["type"] == "Routing")
    return c["status"], c["reason"]


def _route_backends(fleet: Fleet) -> dict[str, int]:
    route = fleet.get("HTTPRoute", "msvc-qwen", "ml-team")
    assert route is not None
    return {r["name"]: r["weight"] for r in route["spec"]["rules"][0]["backendRefs"]}


def test_render_shows_the_90_10_canary(fleets: dict[str, Fleet]) -> None:
    fleet = fleets["healthy"]
    assert _weights(fleet) == {"qwen-stable": 90, "qwen-canary": 10, "together": 0}
    assert _routing(fleet) == ("True", "ServingFromPrimary")
    assert _service(fleet)["status"]["address"].endswith("/ml-team/qwen")
    assert "mep-together" not in _route_backends(fleet)


def test_unhealthy_primaries_move_traffic_to_the_fallback(fleets: dict[str, Fleet]) -> None:
    fleet = fleets["broken"]
    assert _weights(fleet) == {"together": 1}
    assert _route_backends(fleet) == {"mep-together": 1}
    assert _routing(fleet) == ("False", "ServingFromFallback")


def test_healed_primaries_take_the_traffic_back(fleets: dict[str, Fleet]) -> None:
    fleet = fleets["healed"]
    assert _weights(fleet) == {"qwen-stable": 90, "qwen-canary": 10, "together": 0}
    assert _routing(fleet) == ("True", "ServingFromPrimary")


@pytest.mark.parametrize("state", ["healthy", "broken", "healed"])
def test_the_provider_outside_the_boundary_is_never_routed_to(fleets: dict[str, Fleet],
                                                             state: str) -> None:
    fleet = fleets[state]
    assert "groq" not in {b["endpoint"] for b in _service(fleet)["status"]["backends"]}
    assert "mep-groq" not in _route_backends(fleet)
    excluded = _service(fleet)["status"]["excluded"]
    assert [x["endpoint"] for x in excluded] == ["groq"]
    assert excluded[0]["reason"].startswith("outside the data boundary")


def test_every_routing_object_conforms_to_its_upstream_schema(fleets: dict[str, Fleet]) -> None:
    fleet = fleets["healthy"]
    by_uid = {o["metadata"].get("uid"): o for o in fleet.objects()}
    checked: set[str] = set()
    for obj in fleet.objects():
        owner = next((r for r in obj["metadata"].get("ownerReferences") or []
                      if r.get("controller")), None)
        if owner is None or owner.get("kind") not in ROUTING_OWNERS:
            continue
        assert by_uid.get(owner["uid"]) is not None
        body = {k: v for k, v in obj.items() if k != "status"}
        assert problems(body) == []
        checked.add(obj["kind"])
    assert checked >= {"HTTPRoute", "Gateway", "GatewayClass", "Release", "Service",
                       "EndpointSlice", "Deployment", "ConfigMap", "Namespace",
                       "ClusterProviderConfig"}


def test_no_api_key_value_appears_outside_its_secret(fleets: dict[str, Fleet]) -> None:
    for obj in fleets["healthy"].objects():
        if obj["kind"] != "Secret":
            assert "REPLACE-ME" not in json.dumps(obj)
