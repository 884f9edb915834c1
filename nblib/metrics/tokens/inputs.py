"""Shared by the token metrics: validated inputs (one row per frame pair), unit motion
vectors and the seeded random stream of subsamples and splits."""

from __future__ import annotations

import numpy as np
import pandas as pd

from nblib.errors import ParameterError

# The token metrics draw with default_rng((seed, _STREAM)), not default_rng(seed): synthetic
# data made with default_rng(seed) would otherwise pick the probe split / AMI subsample with
# the very numbers that made the data (e.g. test rows = rows whose angle is < 108 deg).
_STREAM = 4


def seeded_rng(seed: int) -> np.random.Generator:
    """The generator of ``seed`` on the token metrics' own stream."""
    return np.random.default_rng((int(seed), _STREAM))


def check_tokens(tokens, n_codes: int | None = None) -> tuple[np.ndarray, int]:
    """Validate tokens (N,) ints in [0, n_codes). Returns (int64 tokens, n_codes)."""
    tokens = np.asarray(tokens)
    if tokens.ndim != 1:
        raise ParameterError(f"tokens must be 1-D (N,), got shape {tokens.shape}")
    if tokens.size and not np.issubdtype(tokens.dtype, np.integer):
        raise ParameterError(f"tokens must be integer code ids, got dtype {tokens.dtype}")
    tokens = tokens.astype(np.int64, copy=False)
    low = int(tokens.min()) if tokens.size else 0
    high = int(tokens.max()) if tokens.size else -1
    if low < 0:
        raise ParameterError(f"tokens must be >= 0, got a minimum of {low}")
    if n_codes is None:
        n_codes = high + 1
    elif int(n_codes) <= high:
        raise ParameterError(f"n_codes={n_codes} but tokens hold code id {high}")
    if int(n_codes) < 0:
        raise ParameterError(f"n_codes must be >= 0, got {n_codes}")
    return tokens, int(n_codes)


def check_rows(name: str, values, n: int, width: int | None = None) -> np.ndarray:
    """Validate a finite float array of shape (n,) or (n, width)."""
    values = np.asarray(values, dtype=float)
    shape = (n,) if width is None else (n, width)
    if values.shape != shape:
        raise ParameterError(f"{name} must have shape {shape} to match tokens, got {values.shape}")
    if not np.isfinite(values).all():
        raise ParameterError(f"{name} holds NaN or inf; drop or fill those rows first")
    return values


def check_n_bins(n_bins: int) -> int:
    if int(n_bins) != n_bins or n_bins < 1:
        raise ParameterError(f"n_bins must be a positive integer, got {n_bins!r}")
    return int(n_bins)


def factorize(name: str, labels, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Labels (N,) of any type -> (ids (N,) int64 in [0, L), sorted unique labels (L,)).

    Uses a hash table (pandas), ~10x faster than ``np.unique`` on 10^6 strings.
    """
    labels = np.asarray(labels)
    if labels.shape != (n,):
        raise ParameterError(f"{name} must have shape ({n},) to match tokens, got {labels.shape}")
    ids, uniques = pd.factorize(labels, sort=True)
    if (ids < 0).any():
        raise ParameterError(f"{name} holds missing labels (None/NaN); drop those rows first")
    return ids.astype(np.int64, copy=False), np.asarray(uniques)


def unit_vectors(motion: np.ndarray, min_magnitude: float) -> tuple[np.ndarray, np.ndarray]:
    """Motion (N, 2) -> (keep (N,) bool, magnitude (N,)). Kept rows have |m| >= min and > 0."""
    if min_magnitude < 0:
        raise ParameterError(f"min_magnitude must be >= 0, got {min_magnitude}")
    magnitude = np.hypot(motion[:, 0], motion[:, 1])
    return (magnitude >= min_magnitude) & (magnitude > 0), magnitude
