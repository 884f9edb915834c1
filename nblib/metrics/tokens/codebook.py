"""Codebook usage: how many codes are used, and how evenly."""

from __future__ import annotations

import numpy as np

from nblib.errors import ParameterError
from nblib.metrics.tokens.information import count_entropy
from nblib.metrics.tokens.inputs import check_tokens


def codebook_usage(tokens, n_codes: int) -> dict:
    """How much of the codebook is used. tokens (N,), n_codes K.

    ``counts`` (K,), ``perplexity`` = exp(entropy of the usage distribution, natural log)
    (K for uniform use, 1 for a single code, NaN for no rows), ``active_codes`` (count > 0),
    ``dead_codes`` (list of ids with count 0), ``usage_fraction`` = active / K.
    """
    if n_codes is None or int(n_codes) != n_codes or n_codes < 1:
        raise ParameterError(f"n_codes must be a positive integer, got {n_codes!r}")
    tokens, n_codes = check_tokens(tokens, n_codes)
    counts = np.bincount(tokens, minlength=n_codes)
    active = int((counts > 0).sum())
    return {
        "counts": counts,
        "perplexity": float(np.exp(count_entropy(counts, np.e))),
        "active_codes": active,
        "dead_codes": np.flatnonzero(counts == 0).tolist(),
        "usage_fraction": active / n_codes,
    }
