"""Per-code motion directions: the compass of the codebook, direction histograms and a
probe of how well the token alone predicts the direction."""

from __future__ import annotations

import numpy as np

from nblib.errors import ParameterError
from nblib.flow import angle_bins, wrap_degrees
from nblib.metrics.tokens.inputs import (
    check_n_bins,
    check_rows,
    check_tokens,
    seeded_rng,
    unit_vectors,
)

# Below this resultant length the unit vectors cancel (e.g. 0 and 180 deg leave R ~ 1e-16)
# and the mean angle is reported as NaN rather than a rounding-noise direction.
_R_EPS = 1e-12


def token_directions(tokens, motion, n_codes: int | None = None, min_magnitude: float = 0.0):
    """Per-code motion statistics: the "compass" of the codebook.

    tokens (N,) ints, motion (N, 2) image-axis vectors. Rows with ``|motion| < min_magnitude``
    and rows with zero motion (no direction) are excluded from everything below.

    Returns a dict of arrays indexed by code id (length ``n_codes``, default max token + 1):

    - ``count`` (K,) int: kept rows per code.
    - ``mean_vector`` (K, 2): mean (dx, dy) in image axes.
    - ``mean_angle`` (K,) degrees in [0, 360), 0 = right, 90 = up: circular mean of the
      rows' unit vectors (magnitude-free). NaN if the code has no rows or R <= 1e-12.
    - ``resultant_length`` (K,) R in [0, 1]: length of the mean unit vector; 1 = every row
      of the code moves the same way, ~1/sqrt(count) for random directions.
    - ``mean_magnitude`` (K,): mean |motion|.

    Codes with no kept rows are NaN in every float array (count 0).
    """
    tokens, n_codes = check_tokens(tokens, n_codes)
    motion = check_rows("motion", motion, tokens.size, width=2)
    keep, magnitude = unit_vectors(motion, min_magnitude)
    t, m, mag = tokens[keep], motion[keep], magnitude[keep]
    count = np.bincount(t, minlength=n_codes)
    with np.errstate(invalid="ignore", divide="ignore"):
        denom = np.where(count > 0, count, np.nan)
        mean_vector = np.stack(
            [np.bincount(t, m[:, i], minlength=n_codes) / denom for i in range(2)], axis=1
        )
        ux = np.bincount(t, m[:, 0] / mag, minlength=n_codes) / denom
        uy = np.bincount(t, -m[:, 1] / mag, minlength=n_codes) / denom  # up is positive
        r = np.minimum(np.hypot(ux, uy), 1.0)  # rounding can push R a hair above 1
        mean_angle = np.where(r > _R_EPS, wrap_degrees(np.degrees(np.arctan2(uy, ux))), np.nan)
        mean_magnitude = np.bincount(t, mag, minlength=n_codes) / denom
    return {
        "count": count,
        "mean_vector": mean_vector,
        "mean_angle": mean_angle,
        "resultant_length": r,
        "mean_magnitude": mean_magnitude,
    }


def angular_histograms(tokens, angles, n_bins: int = 16, n_codes: int | None = None):
    """Per-code histogram of motion directions. Returns (n_codes, n_bins) int counts.

    Bins are compass bins (see :func:`nblib.flow.angle_bins`): column 0 is centred on "right".
    """
    tokens, n_codes = check_tokens(tokens, n_codes)
    angles = check_rows("angles", angles, tokens.size)
    n_bins = check_n_bins(n_bins)
    cells = tokens * n_bins + angle_bins(angles, n_bins)
    return np.bincount(cells, minlength=n_codes * n_bins).reshape(n_codes, n_bins)


def direction_probe(
    tokens, angles, n_bins: int = 8, seed: int = 0, test_fraction: float = 0.3
) -> dict:
    """How well does the token alone predict the compass bin of the motion?

    The probe is majority-per-token: each code predicts the most common direction bin of its
    training rows (codes unseen in training predict the overall majority bin). With one-hot
    tokens as the only input this is exactly what a fitted linear (logistic) probe
    converges to -- every code has its own weight row, so the best linear rule is the
    per-code argmax -- but it is closed-form and O(N), so no subsampling is needed.

    Rows go to the test set independently with probability ``test_fraction`` (``seed``).
    Returns ``accuracy`` (test), ``train_accuracy``, ``chance`` = test accuracy of always
    predicting the training majority bin, ``n_train``, ``n_test``. NaN if a split is empty.
    """
    if not 0 < test_fraction < 1:
        raise ParameterError(f"test_fraction must be in (0, 1), got {test_fraction}")
    tokens, n_codes = check_tokens(tokens)
    angles = check_rows("angles", angles, tokens.size)
    n_bins = check_n_bins(n_bins)
    bins = angle_bins(angles, n_bins)
    test = seeded_rng(seed).random(tokens.size) < test_fraction
    n_test, n_train = int(test.sum()), int((~test).sum())
    result = {"accuracy": np.nan, "train_accuracy": np.nan, "chance": np.nan}
    result |= {"n_train": n_train, "n_test": n_test, "n_bins": n_bins}
    if n_test == 0 or n_train == 0:
        return result
    train = ~test
    joint = np.bincount(tokens[train] * n_bins + bins[train], minlength=n_codes * n_bins).reshape(
        n_codes, n_bins
    )
    majority = int(joint.sum(axis=0).argmax())
    prediction = np.where(joint.sum(axis=1) > 0, joint.argmax(axis=1), majority)
    result["accuracy"] = float((prediction[tokens[test]] == bins[test]).mean())
    result["train_accuracy"] = float((prediction[tokens[train]] == bins[train]).mean())
    result["chance"] = float((bins[test] == majority).mean())
    return result
