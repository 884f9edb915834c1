"""The LIBERO comparison's perturbation breakdown: per run with perturbed episodes a bar
per perturbation category, then the three totals that are easily confused (pooled over
episodes, plain mean over categories, LIBERO-Plus's variant-weighted total), and the
published LIBERO-Plus totals; with its caption."""

from __future__ import annotations

import numpy as np
import pandas as pd

from nblib.eval.baselines import PLUS_DIMENSIONS
from nblib.plots import DOUBLE_COLUMN_IN, MAX_HEIGHT_IN, new_figure
from nblib.studies.comparison.plots_common import (
    PUBLISHED_COLOUR,
    _hbar_rows,
    _key,
    _rate_axis,
    _short,
)


def plot_perturbations(table: pd.DataFrame, totals: pd.DataFrame, colours: dict[str, str]):
    """One panel per method with perturbed episodes: a bar per perturbation category
    (Wilson 95 % whiskers where ``ci_low``/``ci_high`` are known, n printed), then its
    three totals, named on the axis: the rate pooled over episodes, the plain mean over
    categories and LIBERO-Plus's variant-weighted total over the LIBERO-Plus dimensions
    it has (``n/a`` when it has none). Published LIBERO-Plus policies (no episodes) share
    one panel with their two totals.

    ``table``: ``method, perturbation, success_rate[, episodes, ci_low, ci_high]``;
    ``totals``: ``method, mean_plain, total_weighted`` and for runs ``rate, ci_low,
    ci_high, episodes, categories, weighted_dimensions``, optionally ``metrics_key``."""
    runs = [m for m in totals["method"] if "episodes" in table and _has_episodes(table, m)]
    published = [m for m in totals["method"] if m not in runs]
    panels = [(m, _run_rows(table, totals, m, colours[m])) for m in runs]
    if published:
        panels.append(("published (LIBERO-Plus)", _published_rows(totals, published)))
    sizes = [len(rows) for _, rows in panels]
    height = min(0.5 + sum(0.3 + 0.13 * s for s in sizes), MAX_HEIGHT_IN)
    fig, axes = new_figure(
        nrows=len(panels),
        width=DOUBLE_COLUMN_IN,
        height=height,
        squeeze=False,
        sharex=True,
        gridspec_kw={"height_ratios": [s + 1.2 for s in sizes]},
    )
    for i, (ax, (name, rows)) in enumerate(zip(axes[:, 0], panels, strict=True)):
        _hbar_rows(ax, rows, _rate_axis(ax, i == len(panels) - 1))
        ax.set_title(name, loc="left", fontsize=7)
        # the totals below a thin line, the categories above
        categories = int((rows["group"] == "category").sum())
        if 0 < categories < len(rows):
            ax.axhline(categories - 0.5, xmax=100 / 150, color="black", lw=0.5)  # 0-100 %
    return fig, axes[:, 0]


def _count(n: int, noun: str) -> str:
    plural = noun[:-1] + "ies" if noun.endswith("y") else noun + "s"
    return f"{n} {noun if n == 1 else plural}"


def _has_episodes(table: pd.DataFrame, method: str) -> bool:
    return bool(table.loc[table["method"] == method, "episodes"].notna().any())


def _run_rows(table, totals, method, colour) -> pd.DataFrame:
    part = table[table["method"] == method]
    total = totals[totals["method"] == method].iloc[0]
    key = _key(total.get("metrics_key"))
    rows = [
        {
            "group": "category",
            "rate": float(r.success_rate),
            "ci_low": float(r.ci_low),
            "ci_high": float(r.ci_high),
            "colour": colour,
            "hatch": "",
            "label": str(r.perturbation)
            + ("" if r.perturbation in PLUS_DIMENSIONS else " (not LIBERO-Plus)"),
            "text": f"{r.success_rate:.1f} ({int(r.successes)}/{int(r.episodes)})",
        }
        for r in part.itertuples(index=False)
    ]
    rows.append(
        {
            "group": "total",
            "rate": float(total["rate"]),
            "ci_low": float(total["ci_low"]),
            "ci_high": float(total["ci_high"]),
            "colour": colour,
            "hatch": "",
            "label": f"pooled over {int(total['episodes'])} episodes",
            "text": f"{total['rate']:.1f} [{total['ci_low']:.1f}, {total['ci_high']:.1f}]",
            "metrics_key": None if key is None else (*key, "pooled"),
        }
    )
    rows.append(
        {
            "group": "total",
            "rate": float(total["mean_plain"]),
            "ci_low": np.nan,
            "ci_high": np.nan,
            "colour": colour,
            "hatch": "////",
            "label": f"plain mean over {_count(int(total['categories']), 'category')}",
            "text": f"{total['mean_plain']:.1f}",
            "metrics_key": None if key is None else (*key, "mean_plain"),
        }
    )
    weighted = float(total["total_weighted"])
    dims = int(total["weighted_dimensions"])
    rows.append(
        {
            "group": "total",
            "rate": weighted if np.isfinite(weighted) else np.nan,
            "ci_low": np.nan,
            "ci_high": np.nan,
            "colour": colour,
            "hatch": "....",
            "label": f"variant-weighted, {dims} LIBERO-Plus dim." if dims else "variant-weighted",
            "text": f"{weighted:.1f}" if np.isfinite(weighted) else "n/a: no LIBERO-Plus dimension",
            "metrics_key": None if key is None or not dims else (*key, "total_weighted"),
        }
    )
    return _numbers_only_where_measured(pd.DataFrame(rows))


def _published_rows(totals, methods) -> pd.DataFrame:
    rows = []
    for method in methods:
        total = totals[totals["method"] == method].iloc[0]
        for name, value, hatch in (
            ("variant-weighted", total["total_weighted"], "...."),
            ("plain mean", total["mean_plain"], "////"),
        ):
            rows.append(
                {
                    "group": "total",
                    "rate": float(value),
                    "ci_low": np.nan,
                    "ci_high": np.nan,
                    "colour": PUBLISHED_COLOUR,
                    "hatch": hatch,
                    "label": f"{_short(method, 22)}: {name}",
                    "text": f"{value:.1f}",
                }
            )
    return pd.DataFrame(rows)


def _numbers_only_where_measured(rows: pd.DataFrame) -> pd.DataFrame:
    """A total that does not exist (NaN) draws no bar and no zero tick: its text says why."""
    missing = ~np.isfinite(rows["rate"].to_numpy(float))
    rows.loc[missing, "rate"] = np.nan
    return rows


def caption_perturbations(totals: pd.DataFrame) -> str:
    parts = []
    for row in totals.itertuples(index=False):
        if not hasattr(row, "rate") or pd.isna(getattr(row, "rate", np.nan)):
            continue
        weighted = (
            f"{row.total_weighted:.1f} % variant-weighted over {row.weighted_dimensions} "
            "LIBERO-Plus dimensions"
            if np.isfinite(row.total_weighted)
            else "no variant-weighted total (no LIBERO-Plus dimension)"
        )
        parts.append(
            f"{row.method}: {row.rate:.1f} % pooled over {row.episodes} episodes, "
            f"{row.mean_plain:.1f} % plain mean over {_count(row.categories, 'category')}, "
            + weighted
        )
    return (
        "Success rate per perturbation category (Wilson 95 % whiskers, successes/episodes) "
        "and, below the line, the three totals that are easily confused; "
        + ("; ".join(parts) if parts else "published totals only")
        + "."
    )
