"""Sparse weighted bags (``dict[str, float]``): what events and articles keep of their words,
names and figures. Every operation here is deterministic: ties are broken by the key."""

from __future__ import annotations

import math
from collections.abc import Mapping

#: A sparse vector: key -> weight.
Bag = dict[str, float]


def norm(bag: Mapping[str, float]) -> float:
    """The Euclidean length of ``bag``."""
    return math.sqrt(sum(w * w for w in bag.values()))


def unit(bag: Mapping[str, float]) -> Bag:
    """``bag`` scaled to length 1 (empty stays empty), keys in sorted order."""
    length = norm(bag)
    if length == 0.0:
        return {}
    return {key: bag[key] / length for key in sorted(bag)}


def cosine(a: Mapping[str, float], b: Mapping[str, float]) -> float:
    """Cosine of two bags (0 when either is empty). Sums in the sorted key order of the
    smaller bag, so the value does not depend on insertion order."""
    if len(a) > len(b):
        a, b = b, a
    if not a:
        return 0.0
    dot = sum(a[key] * b.get(key, 0.0) for key in sorted(a))
    if dot == 0.0:
        return 0.0
    return dot / (norm(a) * norm(b))


def add(total: Bag, bag: Mapping[str, float], scale: float = 1.0) -> None:
    """``total += scale * bag``, in place."""
    for key in sorted(bag):
        total[key] = total.get(key, 0.0) + scale * bag[key]


def prune(bag: Bag, size: int) -> Bag:
    """The ``size`` heaviest entries of ``bag`` (ties: smaller key first), keys sorted."""
    if len(bag) <= size:
        return {key: bag[key] for key in sorted(bag)}
    kept = sorted(bag.items(), key=lambda item: (-item[1], item[0]))[:size]
    return {key: weight for key, weight in sorted(kept)}
