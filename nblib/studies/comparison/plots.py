"""Figures of the LIBERO comparison (``05_libero_comparison``): per-suite success bars
(small multiples, one panel per suite), the per-task heatmap (one panel per suite, the
runs that evaluated it), the perturbation breakdown with its three totals, the paired
differences and performance profiles; and one ``caption_*`` per figure.

Each function takes tables (never reads a file) and a ``colours`` mapping method → colour,
built once per study so a method has one colour in every figure; it returns ``(fig, axes)``.
Rates are percentages. Every number a figure prints that ``metrics.json`` also holds is
recorded with :func:`nblib.plots.show_number` under the key path given by the table's
``metrics_key`` column (or the ``key`` argument), so :func:`nblib.run.report.finish`
refuses a run whose figure and metrics disagree. Runs are named on the axes, never by
colour alone: beyond eight runs the run palette repeats.
"""

from __future__ import annotations

import textwrap

import numpy as np
import pandas as pd

from nblib.eval.baselines import PLUS_DIMENSIONS
from nblib.plots import DOUBLE_COLUMN_IN, MAX_HEIGHT_IN, SINGLE_COLUMN_IN, new_figure, show_number

SUITE_LABELS = {
    "libero_spatial": "Spatial",
    "libero_object": "Object",
    "libero_goal": "Goal",
    "libero_10": "Long (10)",
    "libero_90": "90",
    "average": "Average",
}
#: Colour of published baselines: not runs of this study, so one neutral grey (hatched).
PUBLISHED_COLOUR = "#9E9E9E"
#: Marks a run that did not finish (only its finished episodes count).
INCOMPLETE_MARK = "†"
SMALL = 6  # pt: the smallest text a printed figure may carry (nblib.plots.MIN_FONT_PT)


def suite_label(suite: str) -> str:
    return SUITE_LABELS.get(suite, suite)


def _key(value) -> tuple | None:
    """A ``metrics_key`` cell as a show_number path (None: the number is not in metrics)."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    return tuple(value)


def _zero_marker(ax, y, x0: float, colour: str) -> None:
    """A 0 % bar has no area: a short thick tick at 0 shows that the rate was measured."""
    ax.plot(
        [x0], [y], marker="D", ms=3.5, mfc=colour, mec="black", mew=0.5, zorder=4, clip_on=False
    )


def _hbar_rows(ax, rows: pd.DataFrame, value_x: float) -> None:
    """Horizontal bars, one per row of ``rows`` (top to bottom): ``rate, ci_low, ci_high,
    colour, hatch, label, text`` and optional ``metrics_key``; whiskers where the interval
    is known, a tick for 0 %, ``text`` printed at ``value_x``."""
    y = np.arange(len(rows))
    for i, row in enumerate(rows.itertuples(index=False)):
        outlined = row.colour == PUBLISHED_COLOUR  # published: hatched outline, no fill
        ax.barh(
            i,
            row.rate,
            0.72,
            color="white" if outlined else row.colour,
            hatch=row.hatch or None,
            edgecolor=PUBLISHED_COLOUR if outlined else ("white" if row.hatch else row.colour),
            linewidth=0.6 if outlined else 0,
        )
        if row.rate == 0:
            _zero_marker(ax, i, 0.0, row.colour)
        if np.isfinite(row.ci_low) and np.isfinite(row.ci_high):
            ax.errorbar(
                row.rate,
                i,
                xerr=[[row.rate - row.ci_low], [row.ci_high - row.rate]],
                fmt="none",
                ecolor="black",
                elinewidth=0.6,
                capsize=1.2,
            )
        ax.text(value_x, i, row.text, va="center", ha="left", fontsize=SMALL)
        key = _key(getattr(row, "metrics_key", None))
        if key is not None:
            show_number(ax, (*key, "success_rate"), row.rate)
            if np.isfinite(row.ci_low):
                show_number(ax, (*key, "ci_low"), row.ci_low)
                show_number(ax, (*key, "ci_high"), row.ci_high)
    ax.set_yticks(y, list(rows["label"]), fontsize=SMALL)
    ax.set_ylim(len(rows) - 0.5, -0.5)
    ax.tick_params(axis="y", length=0)
    ax.grid(axis="y", visible=False)


def _rate_axis(ax, with_label: bool) -> float:
    """x from 0 to 100 % with room right of 100 for the printed values; returns where the
    values are printed."""
    ax.set_xlim(0, 150)
    ax.set_xticks([0, 25, 50, 75, 100])
    ax.spines["bottom"].set_bounds(0, 100)
    if with_label:
        ax.set_xlabel("success rate (%)")
    return 104.0


# ----------------------------------------------------------------------------- suites


def plot_suite_bars(table: pd.DataFrame, colours: dict[str, str], title: str | None = None):
    """One panel per suite (small multiples): a bar per run (its colour) and per published
    baseline (grey, hatched) that has the suite, whiskers from ``ci_low`` to ``ci_high``,
    the rate and episode count printed beside it. ``table``: columns ``method, suite,
    success_rate, ci_low, ci_high, episodes`` and optionally ``kind`` (``run`` /
    ``published``), ``complete`` (False marks an interrupted run with †) and
    ``metrics_key`` (see the module docstring)."""
    suites = list(dict.fromkeys(table["suite"]))
    ncols = 1 if len(suites) == 1 else 2
    nrows = -(-len(suites) // ncols)
    counts = [int((table["suite"] == s).sum()) for s in suites]
    row_bars = [max(counts[r * ncols : (r + 1) * ncols]) for r in range(nrows)]
    height = min(0.55 + sum(0.42 + 0.12 * n for n in row_bars), MAX_HEIGHT_IN)
    fig, axes = new_figure(
        ncols=ncols,
        nrows=nrows,
        width=DOUBLE_COLUMN_IN,
        height=height,
        squeeze=False,
        gridspec_kw={"height_ratios": [0.3 + n for n in row_bars]},
    )
    flat = axes.ravel()
    incomplete = False
    for i, suite in enumerate(suites):
        ax = flat[i]
        part = table[table["suite"] == suite]
        rows = []
        for row in part.itertuples(index=False):
            published = getattr(row, "kind", "run") == "published"
            interrupted = getattr(row, "complete", True) is False
            incomplete |= interrupted
            rows.append(
                {
                    "rate": float(row.success_rate),
                    "ci_low": float(row.ci_low),
                    "ci_high": float(row.ci_high),
                    "colour": PUBLISHED_COLOUR if published else colours[row.method],
                    "hatch": "////" if published else "",
                    "label": _short(row.method, 30)
                    + (" (published)" if published else "")
                    + (f" {INCOMPLETE_MARK}" if interrupted else ""),
                    "text": f"{row.success_rate:.1f} (n={int(row.episodes)})",
                    "metrics_key": None if published else getattr(row, "metrics_key", None),
                }
            )
        _hbar_rows(ax, pd.DataFrame(rows), _rate_axis(ax, i >= len(suites) - ncols))
        ax.set_title(suite_label(suite), loc="left", fontsize=7)
    for ax in flat[len(suites) :]:
        ax.set_visible(False)
    notes = [
        "whiskers: 95 % intervals (bootstrap or Wilson, runs; Wilson, published)",
    ]
    if (table["success_rate"] == 0).any():
        notes.append("◆ at 0: a measured 0 %")
    if incomplete:
        notes.append(f"{INCOMPLETE_MARK} interrupted run: only its finished episodes")
    fig.text(0.005, 0.002, "  ·  ".join(notes), fontsize=SMALL, ha="left", va="bottom")
    fig.get_layout_engine().set(rect=(0, 0.03, 1, 0.97))
    if title:
        fig.suptitle(title)
    return fig, axes


def caption_suite_bars(table: pd.DataFrame) -> str:
    """One-sentence caption with the best run per suite (from the same table)."""
    runs = table[table.get("kind", "run") == "run"] if "kind" in table else table
    parts = []
    for suite, part in runs.groupby("suite", sort=False):
        best = part.loc[part["success_rate"].idxmax()]
        parts.append(
            f"{suite_label(suite)}: {best['method']} {best['success_rate']:.1f} % "
            f"[{best['ci_low']:.1f}, {best['ci_high']:.1f}]"
        )
    lead = (
        "Success rate per suite (one panel each) of every run (coloured) and the published "
        "baselines (grey, hatched) with 95 % intervals and episode counts n; "
    )
    return lead + ("best run per suite: " + "; ".join(parts) + "." if parts else "no runs.")


def _short(name: str, width: int) -> str:
    return textwrap.shorten(str(name), width, placeholder="…") if len(name) > width else name


# ----------------------------------------------------------------------------- heatmap


def plot_task_heatmap(tasks: pd.DataFrame, runs: list[str] | None = None, max_label: int = 44):
    """Success rate (%) per task (rows) and run (columns), one panel per suite with only
    the runs that evaluated it, each cell annotated with its rate; a column's episodes per
    task are in its header (``n=``), a cell with another count says its own. ``tasks``:
    ``run, suite, task, episodes, success_rate`` and optionally ``complete`` (False marks
    an interrupted run with † and the unfinished task's cell with its n)."""
    runs = runs or list(dict.fromkeys(tasks["run"]))
    suites = list(dict.fromkeys(tasks["suite"]))
    blocks = []
    for suite in suites:
        part = tasks[tasks["suite"] == suite]
        cols = [r for r in runs if (part["run"] == r).any()]
        order = list(dict.fromkeys(part["task"]))
        rate = part.pivot_table(index="task", columns="run", values="success_rate", sort=False)
        n = part.pivot_table(index="task", columns="run", values="episodes", sort=False)
        blocks.append(
            (suite, rate.reindex(index=order, columns=cols), n.reindex(index=order, columns=cols))
        )
    header = 0.42  # in: a panel's title and wrapped column names
    rows = sum(len(b[1]) for b in blocks)
    # at least tall enough for the colour bar's label, whatever the number of tasks
    height = min(max(0.45 + header * len(blocks) + 0.135 * rows, 1.5), MAX_HEIGHT_IN)
    fig, axes = new_figure(
        nrows=len(blocks),
        width=DOUBLE_COLUMN_IN,
        height=height,
        squeeze=False,
        gridspec_kw={"height_ratios": [len(b[1]) + header / 0.135 for b in blocks]},
    )
    complete = _completeness(tasks)
    image = None
    for ax, (suite, rate, n) in zip(axes[:, 0], blocks, strict=True):
        image = _heatmap_panel(ax, suite, rate, n, complete, max_label)
    colourbar = fig.colorbar(image, ax=list(axes[:, 0]), fraction=0.025, pad=0.01, aspect=40)
    colourbar.set_label("success rate (%)")
    colourbar.ax.tick_params(labelsize=SMALL)
    missing = any(np.isnan(b[1].to_numpy(float)).any() for b in blocks)
    notes = ["grey: task not evaluated by that run"] if missing else []
    if any(v is False for v in complete.values()):
        notes.append(
            f"{INCOMPLETE_MARK} interrupted run: a cell with fewer episodes is an unfinished task"
        )
    if notes:
        fig.text(
            0.005,
            0.002,
            "  ·  ".join(notes),
            fontsize=SMALL,
            ha="left",
            va="bottom",
        )
        fig.get_layout_engine().set(rect=(0, 0.02, 1, 0.98))
    return fig, axes[:, 0]


def _completeness(tasks: pd.DataFrame) -> dict[str, bool | None]:
    if "complete" not in tasks:
        return {}
    out = {}
    for run, flags in tasks.groupby("run", sort=False)["complete"]:
        values = [None if pd.isna(f) else bool(f) for f in flags]
        out[run] = False if False in values else (None if None in values else True)
    return out


def _heatmap_panel(ax, suite, rate: pd.DataFrame, n: pd.DataFrame, complete, max_label: int):
    values = rate.to_numpy(float)
    counts = n.to_numpy(float)
    cmap = _heatmap_cmap()
    image = ax.imshow(np.ma.masked_invalid(values), aspect="auto", cmap=cmap, vmin=0, vmax=100)
    usual = {}
    for c, run in enumerate(rate.columns):
        known = counts[:, c][np.isfinite(counts[:, c])]
        usual[run] = int(pd.Series(known).mode().max()) if len(known) else 0
        for r in range(values.shape[0]):
            if not np.isfinite(values[r, c]):
                continue
            text = f"{values[r, c]:.0f}"
            if int(counts[r, c]) != usual[run]:
                text += f" (n={int(counts[r, c])})"
            ax.text(
                c,
                r,
                text,
                ha="center",
                va="center",
                fontsize=SMALL,
                color="white" if values[r, c] < 55 else "black",
            )
    ax.set_yticks(range(len(rate)), [_short(t, max_label) for t in rate.index], fontsize=SMALL)
    # the column width in characters of 6 pt text (about 3.4 pt each, with a margin for the
    # layout, which narrows the axes later)
    width_pt = ax.get_position().width * ax.figure.get_size_inches()[0] * 72
    chars = max(int(width_pt / max(len(rate.columns), 1) / 4.4), 6)
    same_n = len(set(usual.values())) == 1
    headers = []
    for run in rate.columns:
        mark = f" {INCOMPLETE_MARK}" if complete.get(run) is False else ""
        name = _wrap_name(str(run) + mark, chars, lines=3)
        headers.append(name if same_n else f"{name}\nn={usual[run]}/task")
    ax.xaxis.tick_top()
    ax.set_xticks(range(len(rate.columns)), headers, fontsize=SMALL)
    ax.tick_params(length=0)
    ax.grid(False)
    title = suite_label(suite)
    if same_n:
        title += f"  (n = {next(iter(usual.values()))} episodes per task)"
    ax.set_title(title, loc="left", fontsize=7, fontweight="bold", pad=1)
    ax.set_ylabel("")
    return image


def _wrap_name(name: str, width: int, lines: int = 3) -> str:
    """``name`` on at most ``lines`` lines of ``width`` characters, broken after ``-``,
    ``_``, ``.`` or a space (run names are identifiers), cut with … when longer."""
    import re

    parts = [p for p in re.split(r"(?<=[-_. ])", name) if p]
    out = [""]
    for part in parts:
        if out[-1] and len(out[-1]) + len(part) > width:
            out.append("")
        out[-1] += part
    if len(out) > lines:
        out = out[:lines]
        out[-1] = out[-1][: max(width - 1, 1)] + "…"
    return "\n".join(line.strip() for line in out)


def _heatmap_cmap():
    import matplotlib as mpl

    return mpl.colormaps["viridis"].with_extremes(bad="#dddddd")


def caption_task_heatmap(tasks: pd.DataFrame) -> str:
    per_run = tasks.groupby("run", sort=False)
    tasks_total = tasks.groupby(["suite", "task"]).ngroups
    zero = tasks[tasks["success_rate"] == 0].groupby("run", sort=False).size()
    lead = (
        f"Success rate (%) of each run on each of its {tasks_total} tasks, one panel per suite "
        "with only the runs that evaluated it (n: episodes per task)"
    )
    if len(zero):
        worst = zero.idxmax()
        return (
            lead + f"; {worst} fails every episode of {zero.max()} of its "
            f"{per_run.size()[worst]} tasks."
        )
    return lead + "."


# ----------------------------------------------------------------------------- perturbations


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


# ----------------------------------------------------------------------------- differences


def plot_differences(table: pd.DataFrame, colours: dict[str, str], alpha: float = 0.05):
    """Forest plot: each shown pair's difference, run minus reference (percentage points),
    per suite and overall, with the bootstrap interval widened for the multiple
    comparisons (``ci_low_adjusted``/``ci_high_adjusted`` at ``confidence_adjusted``); a
    filled marker where the corrected test rejects (``significant``), open where it does
    not, a diamond where the widened interval and the corrected test still disagree; the
    difference, interval and corrected p printed at the right.
    ``table``: ``run, reference, scope, diff, ci_low_adjusted, ci_high_adjusted,
    confidence_adjusted, p_adjusted, significant, comparisons``, optionally
    ``metrics_key``."""
    rows = list(table.itertuples(index=False))
    references = list(dict.fromkeys(table["reference"]))
    fig, ax = new_figure(width=DOUBLE_COLUMN_IN, height=min(1.0 + 0.15 * len(rows), MAX_HEIGHT_IN))
    texts = []
    disagree = False
    for y, row in enumerate(rows):
        colour = colours[row.run]
        low, high = row.ci_low_adjusted, row.ci_high_adjusted
        excludes = low > 0 or high < 0
        odd = bool(excludes) != bool(row.significant)
        disagree |= odd
        ax.plot([low, high], [y, y], color=colour, lw=1.0)
        ax.plot(
            row.diff,
            y,
            "D" if odd else "o",
            color=colour,
            mfc=colour if row.significant else "white",
            mec="black" if odd else colour,
            ms=4,
        )
        p = "n/a" if pd.isna(row.p_adjusted) else f"{row.p_adjusted:.2g}"
        texts.append(f"{row.diff:+.1f} [{low:+.1f}, {high:+.1f}]  p = {p}".replace("-", "−"))
        key = _key(getattr(row, "metrics_key", None))
        if key is not None:
            show_number(ax, (*key, "diff"), row.diff)
            show_number(ax, (*key, "ci_low_adjusted"), low)
            show_number(ax, (*key, "ci_high_adjusted"), high)
            if not pd.isna(row.p_adjusted):
                show_number(ax, (*key, "p_adjusted"), row.p_adjusted)
    ax.axvline(0, color="black", lw=0.6)
    if len(references) == 1:
        labels = [f"{_short(r.run, 30)} · {suite_label(r.scope)}" for r in rows]
        ax.set_title(f"against {references[0]}", loc="left", fontsize=7)
    else:
        labels = [
            f"{_short(r.run, 26)} − {_short(r.reference, 26)} · {suite_label(r.scope)}"
            for r in rows
        ]
    ax.set_yticks(range(len(rows)), labels, fontsize=SMALL)
    ax.set_ylim(len(rows) - 0.5, -0.5)
    ax.set_xlabel("difference, run − reference (pp)")
    ax.set_xlim(-105, 105)
    # the numbers as right-hand tick labels, so the layout makes room for them
    right = ax.secondary_yaxis("right")
    right.set_yticks(range(len(rows)), texts, fontsize=SMALL)
    right.tick_params(length=0)
    ax.set_title("diff [interval] (pp), corrected p", fontsize=SMALL, loc="right")
    confidence = float(table["confidence_adjusted"].iloc[0]) if len(table) else 0.95
    m = int(table["comparisons"].iloc[0]) if len(table) else 1
    _difference_legend(ax, alpha, confidence, m, disagree)
    return fig, ax


def _difference_legend(ax, alpha, confidence, m, disagree) -> None:
    from matplotlib.lines import Line2D

    handles = [
        Line2D([], [], ls="", marker="o", color="black", ms=4, label=f"corrected p < {alpha:g}"),
        Line2D([], [], ls="", marker="o", mfc="white", color="black", ms=4, label="not"),
        Line2D(
            [],
            [],
            color="black",
            lw=1,
            label=f"{100 * confidence:.2f} % interval (Bonferroni over {m} comparisons)",
        ),
    ]
    if disagree:
        handles.append(
            Line2D([], [], ls="", marker="D", mfc="white", mec="black", ms=4, label="disagree")
        )
    ax.legend(
        handles=handles,
        fontsize=SMALL,
        loc="lower center",
        bbox_to_anchor=(0.5, 1.0 + 0.12 / max(ax.figure.get_size_inches()[1], 1)),
        ncol=len(handles),
        frameon=False,
        handletextpad=0.3,
        columnspacing=0.8,
    )


def caption_differences(table: pd.DataFrame, correction: str, hidden: int = 0) -> str:
    """Caption naming the largest corrected difference shown and how many differ."""
    shown = len(table)
    significant = int(table["significant"].sum()) if shown else 0
    lead = (
        "Paired differences of task-averaged success rates (run − reference, pp), per suite "
        "and overall, with intervals at the Bonferroni level of the comparisons (paired "
        "bootstrap, or Newcombe's score interval where the bootstrap collapses); "
        f"filled: the {correction}-corrected Cochran–Mantel–Haenszel test rejects "
        f"({significant} of {shown} shown"
        + (f"; {hidden} other pairs in the tables" if hidden else "")
        + ")"
    )
    if shown:
        top = table.loc[table["diff"].abs().idxmax()]
        lead += (
            f"; largest: {top['run']} − {top['reference']} ({suite_label(top['scope'])}) "
            f"{top['diff']:+.1f} pp [{top['ci_low_adjusted']:+.1f}, "
            f"{top['ci_high_adjusted']:+.1f}]"
        )
    return lead + "."


# ----------------------------------------------------------------------------- profiles


def plot_performance_profiles(
    table: pd.DataFrame,
    colours: dict[str, str],
    xlabel: str = r"threshold $\tau$",
    ylabel: str = r"fraction of scores $> \tau$",
    counts: dict[str, int] | None = None,
):
    """Performance profiles (Agarwal et al. 2021): per method, the fraction of scores above
    each threshold tau as a line, its bootstrap band shaded; the legend (right of the
    axes) names each method with its number of scores (``counts``). ``table``: the columns
    of :func:`nblib.metrics.success.performance_profiles` (``method, tau, profile, ci_low,
    ci_high``; tau in the scores' unit, the rest fractions in [0, 1]). A curve that stays
    higher for longer is better at every level of performance, not only on average."""
    fig, ax = new_figure(width=DOUBLE_COLUMN_IN, height=2.6)
    methods = list(dict.fromkeys(table["method"]))
    styles = ["-", "--", ":", "-."]
    for i, (method, part) in enumerate(table.groupby("method", sort=False)):
        tau = part["tau"].to_numpy(float)
        label = method if not counts else f"{method} ({counts.get(method, '?')} tasks)"
        # runs with the same profile would hide each other: the line style tells them apart
        ax.plot(
            tau,
            part["profile"].to_numpy(float),
            color=colours[method],
            lw=1.0,
            ls=styles[(i // 8) % len(styles)] if len(methods) > 8 else "-",
            label=label,
            drawstyle="steps-post",
        )
        ax.fill_between(
            tau,
            part["ci_low"].to_numpy(float),
            part["ci_high"].to_numpy(float),
            color=colours[method],
            alpha=0.12,
            linewidth=0,
            step="post",
        )
    ax.set_xlim(table["tau"].min(), table["tau"].max())
    ax.set_ylim(0, 1.02)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=SMALL, frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return fig, ax


def caption_performance_profiles(table: pd.DataFrame) -> str:
    at_half = (
        table[table["tau"] <= 0.5].groupby("method", sort=False)["profile"].last()
        if len(table)
        else pd.Series(dtype=float)
    )
    best = at_half.idxmax() if len(at_half) else None
    tail = (
        f"; at τ = 0.5, {best} has {100 * at_half.max():.0f} % of its tasks above" if best else ""
    )
    return (
        "Performance profiles: per run, the fraction of its tasks whose success rate exceeds "
        "τ, with a band from resampling each task's episodes; higher for longer is better"
        + tail
        + "."
    )


__all__ = [
    "INCOMPLETE_MARK",
    "PUBLISHED_COLOUR",
    "SINGLE_COLUMN_IN",
    "caption_differences",
    "caption_perturbations",
    "caption_performance_profiles",
    "caption_suite_bars",
    "caption_task_heatmap",
    "plot_differences",
    "plot_performance_profiles",
    "plot_perturbations",
    "plot_suite_bars",
    "plot_task_heatmap",
    "suite_label",
]
