"""Turning group weights into per-endpoint integer weights without losing anyone.

An endpoint group with weight ``w`` and ``n`` ready endpoints should carry ``w / n`` per endpoint.
Gateway API weights are integers, and naive rounding sends small canaries to zero (weight 1
split over 3 endpoints rounds to 0, 0, 0). So every group weight is first scaled by the smallest
integer factor that gives each endpoint at least 1, then split with the largest-remainder method:
every group's total stays exactly proportional to its declared weight, and endpoints within a
group differ by at most 1.
"""

from __future__ import annotations

from collections.abc import Sequence


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def split_weights(groups: Sequence[tuple[int, Sequence[str]]]) -> dict[str, int]:
    """Per-endpoint weights for groups of ``(weight, endpoint names)``.

    Groups with weight 0 (drained) or no endpoints get nothing; every endpoint of a group with
    weight > 0 gets >= 1. Deterministic: within a group, the remainder goes to the endpoints
    first in name order.
    """
    live = [(w, sorted(names)) for w, names in groups if w > 0 and names]
    if not live:
        return {}
    scale = max(_ceil_div(len(names), w) for w, names in live)
    out: dict[str, int] = {}
    for w, names in live:
        total = w * scale
        base, extra = divmod(total, len(names))
        for i, name in enumerate(names):
            out[name] = base + (1 if i < extra else 0)
    return out
