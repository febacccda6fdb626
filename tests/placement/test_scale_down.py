"""Scale-down never lowers serving below the new target (docs/placement.md, *Scale-down*).

Removal order: unscheduled slots, then replicas that are not Ready, then the newest; a Ready
replica is removed only while the slots that still serve number at least the new target.
Properties run over random fleets and replica sequences, up and down as an autoscaler would.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from modelplane.placement.core import place, scale_down
from modelplane.placement.model import Decision, Fleet, Replica

from tests.placement.fleet import cluster, deployment, fleet, klass, request

SETTINGS = settings(max_examples=60, deadline=None)
CLASSES_ONE = [klass("one", 1)]


def _replica(name: str, ordinal: int, ready: bool = True, unknown: bool = False) -> Replica:
    return Replica(name, ordinal, "c0", (), ready=ready, ready_unknown=unknown)


def serving_slots(reps: list[Replica]) -> set[int]:
    return {r.ordinal for r in reps if r.ready or r.ready_unknown}


def test_big_batch_ten_to_five_keeps_the_ready_replica_of_slot_five() -> None:
    # examples/multi-cloud big-batch: 3 of 10 scheduled, in slots 1, 4 and 5.
    slots = {1: [_replica("a", 1)], 4: [_replica("b", 4)], 5: [_replica("c", 5)]}
    removed = scale_down(slots, 5)
    assert removed == []
    assert {o: [r.name for r in reps] for o, reps in slots.items()} == {
        0: ["c"], 1: ["a"], 4: ["b"]}


def test_not_ready_replicas_go_before_ready_ones() -> None:
    slots = {0: [_replica("pending", 0, ready=False)], 1: [_replica("a", 1)],
             2: [_replica("b", 2)]}
    assert scale_down(slots, 2) == ["pending"]
    assert sorted(r.name for reps in slots.values() for r in reps) == ["a", "b"]


def test_the_newest_ready_replica_goes_once_every_slot_serves() -> None:
    slots = {o: [_replica(f"r{o}", o)] for o in range(4)}
    assert sorted(scale_down(slots, 2)) == ["r2", "r3"]
    assert sorted(slots) == [0, 1]


def test_a_replica_of_unknown_readiness_counts_as_serving() -> None:
    slots = {0: [_replica("lost", 0, ready=False, unknown=True)],
             1: [_replica("also-lost", 1, ready=False, unknown=True)]}
    assert scale_down(slots, 1) == ["also-lost"]
    slots = {1: [_replica("lost", 1, ready=False, unknown=True)]}
    assert scale_down(slots, 1) == []
    assert [r.name for r in slots[0]] == ["lost"]


@st.composite
def fleets(draw: Any) -> Fleet:
    objs = [cluster(f"c{i}", [("p", "one", draw(st.integers(0, 4)))],
                    ready=draw(st.booleans()) or i == 0)
            for i in range(draw(st.integers(1, 4)))]
    return fleet(objs, CLASSES_ONE)


def _step(f: Fleet, target: int, own: list[Replica]) -> Decision:
    return place(request(deployment(replicas=target)), f, own)


@SETTINGS
@given(fleets(), st.lists(st.integers(0, 8), min_size=2, max_size=8), st.data())
def test_an_autoscaler_never_loses_serving_below_its_target(
        f: Fleet, targets: list[int], data: st.DataObject) -> None:
    own: list[Replica] = []
    for target in targets:
        d = _step(f, target, own)
        kept = {r.name for r in d.replicas}
        before = serving_slots(own)
        after = serving_slots([r for r in d.replicas if not r.new])
        # Serving slots never drop below what served, capped at the new target.
        assert len(after) >= min(target, len(before))
        # A serving replica goes only when every slot of the new target serves, or when a
        # replica that shared its slot serves in its place (a make-before-break move).
        still = {r.name for r in d.replicas if (r.ready or r.ready_unknown) and not r.new}
        for gone in (r for r in own if (r.ready or r.ready_unknown) and r.name not in kept):
            mates = {r.name for r in own if r.ordinal == gone.ordinal} - {gone.name}
            assert len(after) >= target or mates & still, (target, gone, d)
        assert all(r.ordinal < target for r in d.replicas)
        assert set(d.removed).isdisjoint(kept)
        # Feed back: what exists now, each new replica Ready or not (as the cluster decides).
        own = [Replica(r.name, r.ordinal, r.cluster, r.assignments,
                       ready=data.draw(st.booleans()) if r.new else r.ready,
                       ready_unknown=r.ready_unknown)
               for r in d.replicas]
        f = Fleet(f.clusters, [])


@SETTINGS
@given(st.dictionaries(st.integers(0, 9), st.lists(st.tuples(st.booleans(), st.booleans()),
                                                    min_size=1, max_size=2), max_size=10),
       st.integers(0, 9))
def test_scale_down_order_over_random_slots(raw: dict[int, list[tuple[bool, bool]]],
                                            target: int) -> None:
    slots = {o: [_replica(f"r{o}-{i}", o, ready, unknown) for i, (ready, unknown)
                 in enumerate(reps)] for o, reps in raw.items()}
    before = {r.name: r for reps in slots.values() for r in reps}
    removed = scale_down(slots, target)
    left = [r for reps in slots.values() for r in reps]
    assert all(o < target for o in slots)
    assert sorted([r.name for r in left] + removed) == sorted(before)
    serving_before = serving_slots(list(before.values()))
    serving_after = serving_slots(left)
    assert len(serving_after) >= min(target, len(serving_before))
    if any(before[n].ready or before[n].ready_unknown for n in removed):
        # A serving replica went: every slot below the target still serves.
        assert len(serving_after) == target
