"""Safety: a missing or unresolved input keeps what exists, says why, and composes nothing new."""

from __future__ import annotations

from typing import Any

import pytest
from modelplane.steps.modelreplica.compose import compose

from tests.results import condition
from tests.workloads.fixtures import (
    cluster,
    engine_container,
    observed_from,
    replica,
    request,
    standalone,
)


def _running() -> dict[str, Any]:
    return observed_from(compose(request(replica())).desired)


CASES: dict[str, tuple[dict[str, Any], str, str]] = {
    "cluster missing": (dict(clusters=[]), "ClusterNotFound", "'starter'"),
    "cluster without provider config": (
        dict(clusters=[cluster(pc={})]), "ProviderConfigUnresolved",
        "status.providerConfigRef.kubernetes"),
    "loop's first call": (dict(resolved=False), "ClusterPending", "'starter'"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_unresolved_cluster_keeps_observed_objects(case: str) -> None:
    kwargs, reason, named = CASES[case]
    observed = _running()
    res = compose(request(replica(), observed=observed, **kwargs))
    assert sorted(res.desired) == sorted(observed)
    for n, d in res.desired.items():
        assert "status" not in d.resource
        assert d.resource["spec"] == observed[n]["spec"]
    status, got_reason, message = condition(res, "Resolved")
    assert (status, got_reason) == ("False", reason)
    assert named in message


def test_unresolved_cluster_with_nothing_running_composes_nothing() -> None:
    res = compose(request(replica(), clusters=[]))
    assert res.desired == {}
    assert res.requirements["cluster"].match_name == "starter"


def test_invalid_spec_is_a_condition_naming_the_field() -> None:
    bad = replica(engines=[{"name": "qwen", "members": [
        {**standalone(), "template": {"spec": {"containers": []}}}]}])
    observed = _running()
    res = compose(request(bad, observed=observed))
    assert sorted(res.desired) == sorted(observed)
    status, reason, message = condition(res, "Resolved")
    assert (status, reason) == ("False", "InvalidSpec")
    assert "spec.engines[0].members[0].template.spec.containers" in message


def test_missing_model_cache_holds_when_vllm_needs_its_path() -> None:
    xr = replica(modelCacheRef={"name": "gone"}, engines=[{"name": "qwen", "members": [
        standalone(container=engine_container(args=[]))]}])
    res = compose(request(xr, caches=[], observed=_running()))
    assert condition(res, "Resolved")[1] == "ModelCacheNotFound"
    assert res.requirements["modelcache"].namespace == "ml-team"


def test_missing_model_cache_does_not_hold_when_the_user_chose_the_model() -> None:
    res = compose(request(replica(modelCacheRef={"name": "gone"}), caches=[]))
    assert condition(res, "Resolved")[0] == "True"
    assert "workload-qwen" in res.desired


def test_requirements_are_the_same_on_every_call() -> None:
    xr = replica(modelCacheRef={"name": "c"})
    first = compose(request(xr, resolved=False)).requirements
    again = compose(request(xr)).requirements
    assert first == again and sorted(first) == ["cluster", "modelcache"]


def test_unresolved_model_cache_waits_without_a_warning() -> None:
    xr = replica(modelCacheRef={"name": "c"}, engines=[{"name": "qwen", "members": [
        standalone(container=engine_container(args=[]))]}])
    req = request(xr)
    del req.required["modelcache"]
    res = compose(req)
    assert condition(res, "Resolved")[1] == "ModelCachePending"
    assert res.results == []
