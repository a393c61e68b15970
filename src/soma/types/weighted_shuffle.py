"""A stake-weighted random order: who to ask first.

Lives with the types (the committee orders its members with it) so that `soma.types`
depends on nothing above it; `soma.utils.agg` uses it to pick which validators to ask.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from typing import TypeVar

K = TypeVar("K")


def weighted_shuffle(stakes: Mapping[K, int], rng: random.Random | None = None) -> list[K]:
    """The keys of `stakes` in a random order where heavier keys tend to come first.

    Each key gets the Efraimidis-Spirakis score u^(1/stake) (computed as log(u)/stake to
    avoid underflow) and keys are sorted by score, so P(first) is proportional to stake.
    Zero-stake keys come last, shuffled among themselves. With a seeded `rng` the order
    is deterministic for a given mapping iteration order.
    """
    if rng is None:
        rng = random.Random()
    scored: list[tuple[tuple[int, float], int, K]] = []
    for position, (name, stake) in enumerate(stakes.items()):
        if stake < 0:
            raise ValueError(f"negative stake {stake} for {name!r}")
        u = 1.0 - rng.random()  # in (0, 1], so log(u) is finite
        score = (1, math.log(u) / stake) if stake > 0 else (0, u)
        # `position` breaks ties without ever comparing keys, which may be unorderable.
        scored.append((score, -position, name))
    scored.sort(key=lambda entry: (entry[0], entry[1]), reverse=True)
    return [name for _, _, name in scored]
