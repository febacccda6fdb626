"""Names: valid DNS labels for long names; replicas of one deployment never collide."""

from __future__ import annotations

import re
from typing import Any

from modelplane.steps.modelreplica.compose import compose

from tests.conformance import problems
from tests.workloads.fixtures import cluster, leader_worker, replica, request, standalone

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
LONG_DEPLOYMENT = "a-very-long-model-deployment-name-for-the-research-team." + "x" * 120
LONG_ENGINE = "e" * 40


def _xr(name: str, multi: bool = False) -> dict[str, Any]:
    members = leader_worker() if multi else [standalone()]
    return replica(name=name, deployment=LONG_DEPLOYMENT,
                   engines=[{"name": LONG_ENGINE, "members": members}])


def _names(xr: dict[str, Any]) -> dict[tuple[str, str], str]:
    """(kind, composition resource) -> name, for Objects and the manifests inside them."""
    out: dict[tuple[str, str], str] = {}
    for rname, d in compose(request(xr, clusters=[cluster()])).desired.items():
        out[("Object", rname)] = d.resource["metadata"]["name"]
        m = d.resource["spec"]["forProvider"]["manifest"]
        out[(m["kind"], rname)] = m["metadata"]["name"]
    return out


def test_long_deployment_and_engine_names_stay_valid_dns_labels() -> None:
    for multi in (False, True):
        names = _names(_xr(f"{LONG_DEPLOYMENT[:200]}-0", multi))
        for (kind, _), name in names.items():
            if kind == "Namespace":
                continue
            assert DNS_LABEL.match(name) and len(name) <= 63, (kind, name)
        # LeaderWorkerSet derives StatefulSet/pod names and revision labels from its name.
        assert all(len(n) <= 45 for (k, _), n in names.items()
                   if k in ("LeaderWorkerSet", "Deployment"))
        # Services need a DNS-1035 label (a letter first).
        assert all(n[0].isalpha() for (k, _), n in names.items() if k == "Service")


def test_two_replicas_of_one_deployment_on_one_cluster_never_collide() -> None:
    a = _names(_xr(f"{LONG_DEPLOYMENT[:200]}-0"))
    b = _names(_xr(f"{LONG_DEPLOYMENT[:200]}-1"))
    for key, name in a.items():
        if key[0] == "Namespace":
            assert b[key] == name  # the one shared namespace
        else:
            assert b[key] != name, key


def test_long_label_values_are_shortened_validly() -> None:
    for name, d in compose(request(_xr("r-0"), clusters=[cluster()])).desired.items():
        assert problems(d.resource) == [], name


def test_replica_name_starting_with_a_digit_gives_a_valid_service_name() -> None:
    names = _names(replica(name="0abc", engines=[{"name": "e", "members": [standalone()]}]))
    assert names[("Service", "service")][0].isalpha()
