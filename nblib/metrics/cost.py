"""What a training run costs: its measured throughput and how long a longer run would take.

Seed 001 trained a 7B-VLM policy for 50,000 steps in 36,959 s (10.3 h) on an RTX 5090 with
the backbone's forward pass in every step, and only then learned that the run could not
answer its question. :func:`project_wall_time` answers "how long would N steps take here"
before such a run is started, with the feature cache (the measured step time) and without
it (plus the backbone's forward per step).

Pure functions on a ``History`` (a list of per-step dicts with ``seconds``, the wall
seconds of that step, and ``samples_per_second``, batch size / seconds, when the loop
records it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from nblib.errors import ParameterError, is_int, is_number

#: Seed 001's long run: optimizer steps and wall seconds (36,959 s, about 10.3 h).
SEED_001_STEPS = 50_000
SEED_001_SECONDS = 36_959.0
#: Run lengths :func:`project_wall_time` projects by default (seed 001 ran 50k).
PROJECTED_STEPS = (1_000, 10_000, 50_000, 200_000)
#: At most this many first steps are warm-up (allocator, kernel selection, caches) ...
MAX_WARMUP_STEPS = 5
#: ... and at most this share of the run, so a short run keeps most of its steps.
WARMUP_SHARE = 0.1


def warmup_steps(n: int) -> int:
    """How many first steps :func:`throughput` leaves out of a run of ``n`` steps:
    min(5, 10 % of n), but at least the first step (the slowest by far) whenever a step
    is left after it. 0 for n <= 1, 1 for n < 20, 5 from n = 50 on."""
    if n <= 1:
        return 0
    return min(MAX_WARMUP_STEPS, max(1, int(n * WARMUP_SHARE)))


def _records(history) -> Sequence[Mapping]:
    if not isinstance(history, Sequence) or isinstance(history, (str, bytes)):
        raise ParameterError(
            f"history must be a History or a list of per-step dicts, got {type(history).__name__}"
        )
    if not history:
        raise ParameterError("history is empty; expected at least one step's record")
    for i, record in enumerate(history):
        if not isinstance(record, Mapping):
            raise ParameterError(f"history[{i}] must be a dict, got {type(record).__name__}")
    return history


def step_seconds(history) -> np.ndarray:
    """Wall seconds of every step, shape (N,); ParameterError naming the first record
    without a finite ``seconds`` >= 0."""
    out = []
    for i, record in enumerate(_records(history)):
        value = record.get("seconds")
        if not (is_number(value) and value >= 0):
            raise ParameterError(
                f"history[{i}]['seconds']={value!r} is invalid; expected the step's wall "
                "seconds, a finite number >= 0"
            )
        out.append(float(value))
    return np.asarray(out, dtype=float)


def throughput(history, skip: int | None = None) -> dict[str, float | int | None]:
    """Median speed of the run after its warm-up steps.

    ``skip``: first steps left out; default :func:`warmup_steps` (min(5, 10 % of the
    steps), at least the first). Medians, not means, so an eval or checkpoint that slows
    one step does not move the number.

    Returns ``{"seconds_per_step", "samples_per_second", "steps_measured",
    "steps_skipped"}``; ``samples_per_second`` is None when no measured record has it.
    """
    seconds = step_seconds(history)
    n = seconds.size
    if skip is None:
        skip = warmup_steps(n)
    if not (is_int(skip) and 0 <= skip < n):
        raise ParameterError(f"skip={skip!r} is invalid; expected an int in [0, {n}) (steps: {n})")
    rates = [
        float(r["samples_per_second"])
        for r in history[skip:]
        if is_number(r.get("samples_per_second"))
    ]
    return {
        "seconds_per_step": float(np.median(seconds[skip:])),
        "samples_per_second": float(np.median(rates)) if rates else None,
        "steps_measured": int(n - skip),
        "steps_skipped": int(skip),
    }


def project_wall_time(
    seconds_per_step: float,
    steps: Sequence[int] = PROJECTED_STEPS,
    backbone_seconds_per_step: float | None = None,
) -> list[dict[str, float | int | None]]:
    """Wall time of runs of ``steps`` optimizer steps at the measured speed.

    ``seconds_per_step``: the measured step time with the feature cache (the backbone ran
    once per sample beforehand; that one-time cost is not included). ``backbone_seconds_per_step``:
    the backbone's forward for one batch, which every step would pay without the cache
    (None when unknown). Evaluations and checkpoints are not included.

    Returns one row per entry of ``steps``: ``{"steps", "with_cache_seconds",
    "with_cache_hours", "without_cache_seconds", "without_cache_hours"}``, the latter two
    None when ``backbone_seconds_per_step`` is None.
    """
    if not (is_number(seconds_per_step) and seconds_per_step > 0):
        raise ParameterError(
            f"seconds_per_step={seconds_per_step!r} is invalid; expected a number > 0"
        )
    backbone = backbone_seconds_per_step
    if not (backbone is None or (is_number(backbone) and backbone >= 0)):
        raise ParameterError(
            f"backbone_seconds_per_step={backbone!r} is invalid; expected None or a number >= 0"
        )
    if isinstance(steps, (str, bytes)) or not isinstance(steps, Sequence) or not steps:
        raise ParameterError(f"steps={steps!r} is invalid; expected a non-empty list of ints")
    rows = []
    for n in steps:
        if not (is_int(n) and n >= 1):
            raise ParameterError(f"steps entry {n!r} is invalid; expected an int >= 1")
        cached = n * float(seconds_per_step)
        uncached = None if backbone is None else n * (float(seconds_per_step) + float(backbone))
        rows.append(
            {
                "steps": int(n),
                "with_cache_seconds": cached,
                "with_cache_hours": cached / 3600,
                "without_cache_seconds": uncached,
                "without_cache_hours": None if uncached is None else uncached / 3600,
            }
        )
    return rows


def duration_text(seconds: float) -> str:
    """A wall time as people say it: "45 s", "12 min", "3.4 h", "2.1 days"."""
    if not (is_number(seconds) and seconds >= 0):
        return "unknown"
    if seconds < 60:
        return f"{seconds:.2g} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.2g} h" if seconds < 36_000 else f"{seconds / 3600:.0f} h"
    return f"{seconds / 86400:.1f} days"


def seed_001_hours() -> float:
    """Seed 001's 50k-step run in hours (10.27)."""
    return SEED_001_SECONDS / 3600
