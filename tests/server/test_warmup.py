"""The warm-up a serving process runs before it opens its port (server.warm_up)."""

from __future__ import annotations

import gc

import crossplane.function.proto.v1.run_function_pb2 as fnv1
from modelplane import server
from modelplane.steps import warmup


def test_the_warm_up_places_a_replica_through_the_real_steps() -> None:
    server.load_steps()
    context: dict[str, object] = {}
    for step, composite, ctx, required in warmup.requests():
        rsp = server.run(server.build_request(step, composite, {}, {**ctx, **context}, required))
        assert not [r.message for r in rsp.results if r.severity == fnv1.SEVERITY_FATAL]
        context = server.struct_to_dict(rsp.context)
    placed = context["modelplane.ai/placement"]
    assert isinstance(placed, dict) and [r["cluster"] for r in placed["replicas"]] == ["warm-up"]


def test_warming_up_leaves_no_request_data_cached_and_collects_less_often() -> None:
    before = gc.get_threshold()
    server.load_steps()
    server.REQUIRED_CACHE.clear()
    try:
        server.warm_up()
        assert server.REQUIRED_CACHE.bytes == 0
        assert gc.get_threshold()[0] == server.GC_YOUNG_THRESHOLD
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
