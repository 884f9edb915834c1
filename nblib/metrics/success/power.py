"""How many episodes a comparison of two success rates needs: power, sample size and the
minimum detectable difference of the two-proportion z-test (pooled variance under H0,
unpooled under the alternative, normal approximation; Fleiss, Levin & Paik 2003), from
statsmodels' ``power_proportions_2indep`` / ``samplesize_proportions_2indep_onetail``.

Two-sided tests follow R's ``power.prop.test`` (``strict = FALSE``): only the tail in the
direction of the difference counts, at alpha / 2. statsmodels' two-sided power adds the
far tail (so equal rates give alpha rather than alpha / 2); asking it for the one tail at
alpha / 2 gives R's numbers.
"""

from __future__ import annotations

import math

from scipy import optimize, stats
from statsmodels.stats.proportion import (
    power_proportions_2indep,
    samplesize_proportions_2indep_onetail,
)

from nblib.errors import ParameterError
from nblib.metrics.success import checks


def _one_tail(alpha: float, two_sided: bool) -> float:
    return alpha / 2.0 if two_sided else alpha


def _check_power_args(alpha, power, two_sided) -> tuple[float, float, bool]:
    alpha = checks.open_unit("alpha", alpha)
    power = checks.open_unit("power", power)
    two_sided = checks.two_sided(two_sided)
    tail = _one_tail(alpha, two_sided)
    if power <= tail:
        # below that even no difference "reaches" the power: the question is meaningless
        raise ParameterError(f"power must exceed the one-tail alpha {tail:g}, got {power!r}")
    return alpha, power, two_sided


def _n_per_arm(p1: float, p2: float, alpha: float, power: float, two_sided: bool) -> float:
    """Episodes per arm (real-valued) for the z-test of p1 vs p2 to reach ``power``."""
    return float(
        samplesize_proportions_2indep_onetail(
            p2 - p1,
            p1,
            power,
            alpha=alpha,
            alternative="two-sided" if two_sided else "larger",
        )
    )


def detection_power(
    rate_a: float, rate_b: float, trials: int, alpha: float = 0.05, two_sided: bool = True
) -> float:
    """Power of a two-proportion z-test (pooled variance) to find rate_a != rate_b with
    ``trials`` episodes per arm, normal approximation::

        power = Phi((sqrt(n) |p_b - p_a| - z_alpha sqrt(2 pbar (1 - pbar)))
                    / sqrt(p_a (1 - p_a) + p_b (1 - p_b)))

    (R's ``power.prop.test``, non-strict: the far tail is ignored; n = 50, 0.50 vs 0.75 ->
    0.740). Equal rates give alpha / 2 (two-sided) or alpha. Exact tests (Fisher, Boschloo)
    have somewhat less power than this, most with few trials and rates near 0 or 1.
    """
    p1, p2 = checks.rate("rate_a", rate_a), checks.rate("rate_b", rate_b)
    n = checks.whole("trials", trials, 1)
    alpha = checks.open_unit("alpha", alpha)
    tail = _one_tail(alpha, checks.two_sided(two_sided))
    low, high = sorted((p1, p2))
    if p1 in (0.0, 1.0) and p2 in (0.0, 1.0):
        # no variance under the alternative (statsmodels divides by it): the outcome is
        # certain, so the test rejects iff the observed gap clears the critical value
        mean = (p1 + p2) / 2.0
        critical = float(stats.norm.isf(tail)) * math.sqrt(2.0 * mean * (1.0 - mean))
        return 1.0 if math.sqrt(n) * (high - low) > critical else tail
    power = power_proportions_2indep(
        high - low, low, n, alpha=tail, alternative="larger", return_results=False
    )
    return float(power)


def trials_needed(
    rate_a: float,
    rate_b: float,
    alpha: float = 0.05,
    power: float = 0.8,
    two_sided: bool = True,
) -> int:
    """Episodes per arm for a two-proportion z-test to tell rate_a from rate_b with the
    given power, rounded up::

        n = (z_alpha sqrt(2 pbar (1 - pbar)) + z_beta sqrt(p_a (1 - p_a) + p_b (1 - p_b)))^2
            / (p_b - p_a)^2

    (normal approximation, pooled variance under H0, no continuity correction: Fleiss,
    Levin & Paik 2003; R's ``power.prop.test``; z_alpha = z_{1 - alpha/2} two-sided).
    0.50 vs 0.75 at power 0.9 -> 77 (R: 76.7); 0.95 vs 0.97 -> 1506 (1505.8; the arcsine
    / Cohen's h approximation gives 1484, Fleiss' continuity-corrected formula 1605). The
    z-test's exact power at 1506 per arm is 0.804 (enumerated); Fisher's exact test, which
    a real comparison would use, reaches only ~0.78 there and ~0.81 at 1605 (simulated,
    2000 draws), so treat the result as a lower bound: the continuity-corrected size is the
    better guide for an exact test.
    """
    p1, p2 = checks.rate("rate_a", rate_a), checks.rate("rate_b", rate_b)
    alpha, power, two_sided = _check_power_args(alpha, power, two_sided)
    if p1 == p2:
        raise ParameterError(
            f"rate_a and rate_b are both {p1!r}; no number of trials detects no difference"
        )
    n = _n_per_arm(p1, p2, alpha, power, two_sided)
    # a hair of slack so 76.0000000001 from rounding error does not become 77
    return max(1, math.ceil(n - 1e-9))


def minimum_detectable_difference(
    rate: float,
    trials: int,
    alpha: float = 0.05,
    power: float = 0.8,
    two_sided: bool = True,
) -> float:
    """The smallest improvement d over ``rate`` that ``trials`` episodes per arm detect with
    the given power: the d > 0 at which :func:`trials_needed`'s (unrounded) sample size is
    ``trials`` (``scipy.optimize.brentq``; same normal approximation). statsmodels solves
    power equations for Cohen's h, not for this pooled z-test, hence the root finding.

    NaN when no improvement is detectable, i.e. even rate -> 1.0 needs more than ``trials``
    episodes (0.95 with 50 trials: detecting 0.95 -> 1.0 takes 152). For the smallest
    detectable *drop*, pass 1 - rate (success and failure swap roles). 0.5 with 50 trials
    at power 0.9 -> 0.3026 (R's power.prop.test example: p2 = 0.8026).
    """
    p1 = checks.rate("rate", rate)
    n = checks.whole("trials", trials, 1)
    alpha, power, two_sided = _check_power_args(alpha, power, two_sided)
    if p1 >= 1.0:
        raise ParameterError("rate must be < 1 (a perfect rate cannot improve), got 1.0")
    if _n_per_arm(p1, 1.0, alpha, power, two_sided) > n:
        return math.nan
    # the needed n falls from +inf (no gap) to at most `trials` (at 1.0): one root between
    gap = min(1e-12, (1.0 - p1) / 2)
    best = optimize.brentq(
        lambda p2: _n_per_arm(p1, p2, alpha, power, two_sided) - n, p1 + gap, 1.0, xtol=1e-12
    )
    return float(best - p1)
