"""Notebook 05's figure steps: each takes the prepared :class:`ComparisonStudy` (and a
table where the notebook already holds it), builds the table its figure draws and calls
the drawing in :mod:`nblib.studies.comparison.plots`; ``*_caption`` says what it shows.
Also the run/suite picker (``browser``)."""

from __future__ import annotations

import pandas as pd

from nblib.studies.comparison.perturbation_plots import caption_perturbations, plot_perturbations
from nblib.studies.comparison.plots_common import SMALL
from nblib.studies.comparison.profile_plots import (
    caption_performance_profiles,
    plot_performance_profiles,
)
from nblib.studies.comparison.study import ComparisonStudy
from nblib.studies.comparison.suite_plots import (
    caption_suite_bars,
    caption_task_heatmap,
    plot_suite_bars,
    plot_task_heatmap,
)
from nblib.studies.comparison.tables import perturbation_overview, runs_table, suite_table

#: Fewest tasks a run needs for its performance profile: with 5 tasks a profile is a
#: staircase of 5 steps whose band spans most of the axis, and several runs share it.
MIN_PROFILE_TASKS = 10


def _profiled(study: ComparisonStudy, table: pd.DataFrame) -> tuple[pd.DataFrame, dict, list]:
    """The profile rows of runs with at least :data:`MIN_PROFILE_TASKS` tasks, every
    run's task count, and the runs left out for having fewer."""
    counts = study.tasks[study.tasks["perturbation"] == "none"].groupby("run", sort=False).size()
    counts = {k: int(v) for k, v in counts.items()}
    kept = [m for m in dict.fromkeys(table["method"]) if counts.get(m, 0) >= MIN_PROFILE_TASKS]
    dropped = [m for m in dict.fromkeys(table["method"]) if m not in kept]
    return table[table["method"].isin(kept)], counts, dropped


def profile_figure(study: ComparisonStudy, table: pd.DataFrame):
    """:func:`nblib.studies.comparison.plots.plot_performance_profiles` of the runs with at
    least :data:`MIN_PROFILE_TASKS` tasks (the others are counted in a note); (None, None)
    without a run to draw."""
    if table.empty:
        return None, None
    kept, counts, dropped = _profiled(study, table)
    if kept.empty:
        return None, None
    fig, ax = plot_performance_profiles(
        kept,
        study.colours,
        ylabel="fraction of tasks\nwith success rate $> \\tau$",
        counts=counts,
    )
    if dropped:
        ax.text(
            1.01,
            0.0,
            f"left out: {len(dropped)} run(s) with < {MIN_PROFILE_TASKS} tasks",
            transform=ax.transAxes,
            fontsize=SMALL,
            va="bottom",
        )
    return fig, ax


def profile_caption(study: ComparisonStudy, table: pd.DataFrame) -> str:
    kept, _, dropped = _profiled(study, table) if len(table) else (table, {}, [])
    caption = caption_performance_profiles(kept)
    if dropped:
        caption = caption[:-1] + (
            f"; {len(dropped)} run(s) with fewer than {MIN_PROFILE_TASKS} tasks are left out "
            "(their rates are in the suite and task figures)."
        )
    return caption


def _run_complete(study: ComparisonStudy) -> dict:
    """Per run: True, False (interrupted) or None (the files cannot tell)."""
    return {r.run: r.complete for r in runs_table(study).itertuples(index=False)}


def suite_figure(study: ComparisonStudy, runs=None, suites=None):
    """Small multiples per suite: runs (coloured, † when interrupted) and published
    baselines (grey, hatched), each bar with its interval and n."""
    table = suite_table(study, runs=runs, suites=suites)
    if table.empty:
        return None, None
    complete = _run_complete(study)
    table = table.assign(
        complete=[
            complete.get(m, True) if k == "run" else True
            for m, k in zip(table.method, table.kind, strict=True)
        ],
        metrics_key=[
            ("suite_rates", m, s) if k == "run" else None
            for m, s, k in zip(table.method, table.suite, table.kind, strict=True)
        ],
    )
    return plot_suite_bars(table, study.colours)


def suite_caption(study: ComparisonStudy) -> str:
    return caption_suite_bars(suite_table(study))


def _plain_tasks(study: ComparisonStudy, runs=None, suites=None) -> pd.DataFrame:
    if not study.runs:
        return pd.DataFrame()
    tasks = study.tasks[study.tasks["perturbation"] == "none"]
    if runs is not None:
        tasks = tasks[tasks["run"].isin(runs)]
    if suites is not None:
        tasks = tasks[tasks["suite"].isin(suites)]
    return tasks


def heatmap_figure(study: ComparisonStudy, runs=None, suites=None):
    """Per-task rates, one panel per suite with the runs that evaluated it, n per cell."""
    tasks = _plain_tasks(study, runs=runs, suites=suites)
    if tasks.empty:
        return None, None
    return plot_task_heatmap(tasks, runs=[r for r in study.runs if r in set(tasks["run"])])


def heatmap_caption(study: ComparisonStudy) -> str:
    return caption_task_heatmap(_plain_tasks(study))


def perturbation_figure(study: ComparisonStudy):
    table, totals = perturbation_overview(study)
    if table is None:
        return None, None
    return plot_perturbations(table, totals, study.colours)


def perturbation_caption(study: ComparisonStudy) -> str:
    _, totals = perturbation_overview(study)
    return "" if totals is None else caption_perturbations(totals)


def browser(study: ComparisonStudy):
    """ipywidgets (``interactive=True``): choose runs and suites; the bars and the heatmap
    follow."""
    import ipywidgets as w
    import matplotlib.pyplot as plt

    table = suite_table(study)
    methods = list(dict.fromkeys(table["method"]))
    suites = list(dict.fromkeys(table["suite"]))

    def show(methods_shown, suites_shown):
        fig, _ = suite_figure(study, runs=list(methods_shown), suites=list(suites_shown))
        if fig is None:
            print("nothing to show for this choice")
            return
        plt.show()
        chosen = [m for m in methods_shown if m in study.runs]
        if chosen:
            fig, _ = heatmap_figure(study, runs=chosen, suites=list(suites_shown))
            if fig is not None:
                plt.show()

    # Published baselines are always drawn for the chosen suites: the run list picks runs.
    return w.interactive(
        show,
        methods_shown=w.SelectMultiple(
            options=study.runs or methods, value=tuple(study.runs or methods), description="runs"
        ),
        suites_shown=w.SelectMultiple(options=suites, value=tuple(suites), description="suites"),
    )
