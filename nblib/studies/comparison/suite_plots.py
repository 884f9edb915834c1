"""The LIBERO comparison's rate figures under the standard protocol: per-suite success
bars (small multiples, one panel per suite, runs beside the published baselines) and the
per-task heatmap (one panel per suite, the runs that evaluated it), with their captions."""

from __future__ import annotations

import numpy as np
import pandas as pd

from nblib.plots import DOUBLE_COLUMN_IN, MAX_HEIGHT_IN, new_figure
from nblib.studies.comparison.plots_common import (
    INCOMPLETE_MARK,
    PUBLISHED_COLOUR,
    SMALL,
    _hbar_rows,
    _rate_axis,
    _short,
    suite_label,
)

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
