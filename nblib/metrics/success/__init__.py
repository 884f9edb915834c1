"""Success rates of robot evaluations with few trials: intervals, comparisons, power.

A policy evaluation is a handful of tasks with tens of episodes each, so a success rate
of 48/50 is a statement with a wide error bar ([0.865, 0.989] at 95 %), and "A beats B by
4 points" is usually noise. The functions here put numbers on that, on statsmodels, SciPy
and rliable; this package is the glue (input checks, the field's conventions, tables) and
the little none of them does. Counts come as

- ``successes`` and ``trials``: non-negative whole numbers, successes <= trials, trials
  >= 1 (a task without episodes has no rate); scalars or arrays, per task (T,) where the
  function works on a suite;
- ``scores`` (runs, tasks): per-seed (run) and per-task scores, e.g. success rates, for
  the run-level statistics of Agarwal et al. (2021).

Modules, one idea each:

- :mod:`~nblib.metrics.success.proportions`: one rate's interval (:func:`wilson_interval`,
  :func:`clopper_pearson_interval`), two policies per task (:func:`compare_tasks`: exact
  tests with :func:`adjust_pvalues`) and over a suite (:func:`cochran_mantel_haenszel`);
- :mod:`~nblib.metrics.success.aggregates`: a suite's rate with a task-stratified
  bootstrap interval (:func:`stratified_bootstrap`; :func:`suite_interval` falls back to
  a Wilson interval where it collapses), the paired suite comparison
  (:func:`compare_overall`), :func:`iqm`, :func:`iqm_interval`,
  :func:`probability_of_improvement`, :func:`bootstrap_probability_of_improvement`;
- :mod:`~nblib.metrics.success.profiles`: :func:`performance_profiles` (fraction of
  scores above each threshold, with bands) and :func:`episode_outcomes`;
- :mod:`~nblib.metrics.success.power`: :func:`detection_power`,
  :func:`minimum_detectable_difference`, :func:`trials_needed` (two-proportion z-test);
- :mod:`~nblib.metrics.success.checks`: the input checks they share.

Differences are always A - B (positive: A is better), and probability_of_improvement(x,
y) is P(X > Y). Bootstrap functions take an int ``seed`` and are deterministic with it;
their intervals are percentile intervals.

Reference: R. Agarwal, M. Schwarzer, P. S. Castro, A. Courville, M. G. Bellemare, "Deep
Reinforcement Learning at the Edge of the Statistical Precipice", NeurIPS 2021 (the
rliable library).
"""

from nblib.metrics.success.aggregates import (
    bootstrap_probability_of_improvement,
    compare_overall,
    iqm,
    iqm_interval,
    probability_of_improvement,
    stratified_bootstrap,
    suite_interval,
)
from nblib.metrics.success.power import (
    detection_power,
    minimum_detectable_difference,
    trials_needed,
)
from nblib.metrics.success.profiles import episode_outcomes, performance_profiles
from nblib.metrics.success.proportions import (
    adjust_pvalues,
    clopper_pearson_interval,
    cochran_mantel_haenszel,
    compare_tasks,
    wilson_interval,
)

__all__ = [
    "adjust_pvalues",
    "bootstrap_probability_of_improvement",
    "clopper_pearson_interval",
    "cochran_mantel_haenszel",
    "compare_overall",
    "compare_tasks",
    "detection_power",
    "episode_outcomes",
    "iqm",
    "iqm_interval",
    "minimum_detectable_difference",
    "performance_profiles",
    "probability_of_improvement",
    "stratified_bootstrap",
    "suite_interval",
    "trials_needed",
    "wilson_interval",
]
