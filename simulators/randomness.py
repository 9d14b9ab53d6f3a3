"""The random draws the simulators build their deterministic histories from."""
from __future__ import annotations

import hashlib
import math
import random


def stable_number(text: str, low: int, high: int) -> int:
    """A number in [low, high] that `text` always gives (Python's hash() changes between processes)."""
    return low + int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") % (high - low + 1)


def poisson(rng: random.Random, mean: float) -> int:
    """How many events happen when `mean` are expected. A zero mean still takes one draw from `rng`, so
    every later draw of the day, and so every generated history, stays what it was."""
    if mean > 30:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit, count, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count
