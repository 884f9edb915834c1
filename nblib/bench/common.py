"""What every benchmark's lines share: the machine they ran on, throughputs, ratios."""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable

import numpy as np


def machine() -> dict:
    """The machine a figure comes from (every line carries it)."""
    return {
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "machine": platform.machine(),
    }


def throughput(fn: Callable[[int], object], indices: np.ndarray) -> float:
    """Calls of ``fn(i)`` per second over ``indices``."""
    start = time.perf_counter()
    for i in indices:
        fn(int(i))
    return len(indices) / (time.perf_counter() - start)


def ratio(numerator: float, denominator: float, digits: int = 3) -> float:
    """The ``ratio`` of a comparison, rounded to ``digits`` decimals. Each benchmark puts
    the better-is-higher side on top (a throughput over the reference's, a reference's
    time over nblib's), so > 1 means nblib is ahead."""
    return round(numerator / denominator, digits)
