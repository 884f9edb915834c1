"""Did a training run stop learning, diverge, break, or learn less than another?
(seeds 003 and 000)

Seed 003's ViT distillation baseline (LR 1e-4, cosine decay, no LR floor) stopped learning
right after warmup: loss 15.4 at step 0, 12.87 at 500, 12.82 at 1000, ~12.5 at 50,000.
Runs at 3e-4 with a 3e-5 floor kept improving past 2k steps, and a table of every run's
loss at the same steps decided the next config. Seed 000's run produced NaN outputs that
were silently masked, and its log printed ``Loss=0.0000`` from step 1850 on: a broken run,
not a plateau. The functions here make those calls reproducible. All take one run as

- ``steps`` (N,) strictly increasing integer optimizer steps (logging may be irregular:
  windows are measured in steps, never in logged points), and
- ``loss`` (N,) floats, the training loss logged at those steps.

Modules, by idea:

- :mod:`~nblib.metrics.curves.smoothing`: :func:`smooth`, the trailing moving average over
  the last ``window`` logged points.
- :mod:`~nblib.metrics.curves.detectors`: :func:`plateau` (the step from which no window
  of ``window`` steps improved the smoothed loss by ``threshold``, relative, any more),
  :func:`stopped_after_warmup` (a plateau that begins by warmup + 10 % of the run) and
  :func:`divergence` (the first NaN / inf loss, a loss that drops to exactly 0 after a
  clearly positive one (:func:`zero_collapse`), or a blown-up loss; and gradient-norm
  spikes).
- :mod:`~nblib.metrics.curves.matched`: :func:`matched_steps`, every run's loss at the
  same steps and its delta to a baseline.
- :mod:`~nblib.metrics.curves.range_test`: :func:`range_test_suggestions`, the steepest
  descent and minimum LRs of an LR range test.

Broken losses (NaN, inf, a zero after a clearly positive loss) mean a run diverged:
:func:`divergence` reports the first one with its reason, :func:`smooth` and
:func:`matched_steps` carry NaN / inf through as NaN, :func:`plateau` (and
:func:`stopped_after_warmup`) decline to judge such a run and say why,
:func:`range_test_suggestions` treats the first one as where the test blew up. No function
skips them. Undefined results are None (scalars) or NaN (table cells), never a made-up
number.

These detectors say *that* and *when* the loss stopped improving, not *why*: a cosine decay
without a floor, a peak LR too low or too high, and a converged model all plateau alike.
Seed 003's auto-tuning raised the LR by 1.5x on every detected plateau; that is a
heuristic on top of these facts, not something they establish.
"""

from nblib.metrics.curves.detectors import (
    GRAD_HISTORY,
    RESOLUTION_POINTS,
    ZERO_UNITS,
    divergence,
    plateau,
    printed_decimals,
    stopped_after_warmup,
    zero_collapse,
)
from nblib.metrics.curves.matched import MATCHED_POINTS, matched_steps
from nblib.metrics.curves.range_test import (
    RANGE_SKIP_END,
    RANGE_SKIP_START,
    RANGE_STOP_FACTOR,
    range_test_suggestions,
)
from nblib.metrics.curves.smoothing import smooth

__all__ = [
    "GRAD_HISTORY",
    "MATCHED_POINTS",
    "RANGE_SKIP_END",
    "RANGE_SKIP_START",
    "RANGE_STOP_FACTOR",
    "RESOLUTION_POINTS",
    "ZERO_UNITS",
    "divergence",
    "matched_steps",
    "plateau",
    "printed_decimals",
    "range_test_suggestions",
    "smooth",
    "stopped_after_warmup",
    "zero_collapse",
]
