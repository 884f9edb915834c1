"""Figures of a training run shared by notebooks 01 and 03: gradient flow per module, and
what the run costs (step time, throughput, projected wall time, memory).

Functions return ``(fig, axes)`` and never save; ``caption_*`` functions return the
sentence(s) under the figure with the numbers. The numbers the figures show are recorded
with :func:`nblib.plots.show_number` under these metrics.json keys, which the notebook
must fill from the same functions:

- ``gradient_flow`` = :func:`nblib.metrics.gradient_flow.gradient_flow` (each module's
  ``last`` norm is in the legend);
- ``throughput`` = :func:`nblib.metrics.cost.throughput` (the median lines);
- ``memory`` = :meth:`nblib.memory.MemoryTracker.record` (the bars and the peak).

Legends sit outside the axes (right of the gradient-flow panel, under the cost panels),
so they never cover data however many modules there are.
"""

from __future__ import annotations

import math
import re

import numpy as np

from nblib.memory import HOST_KIND
from nblib.metrics.cost import (
    SEED_001_SECONDS,
    SEED_001_STEPS,
    duration_text,
    step_seconds,
    throughput,
)
from nblib.metrics.gradient_flow import (
    VANISH_DROP,
    gradient_findings,
    module_norms,
    module_problems,
)
from nblib.plots import DOUBLE_COLUMN_IN, MAX_HEIGHT_IN, colors_for, new_figure, show_number

# Layers of one stack (policy.expert.layers.0, .1, ...) get shades of one colour map in
# depth order, so depth reads off the colour; other modules get the run palette.
_LAYER = re.compile(r"^(?P<stack>.+)\.(?P<index>\d+)$")
_STACK_MAPS = ("viridis", "plasma", "cividis")
_TOTAL_COLOUR = "#999999"
_STEP_COLOUR = "#888888"
_LEGEND_FONT = 6.5
# Above this many legend entries the gradient-flow legend gets a second column.
_LEGEND_ROWS = 16
# Paul Tol's bright colours not used for anything else in the cost figure.
_PROJECTION_COLOURS = {"with_cache": "#228833", "without_cache": "#EE6677"}
_PEAK_COLOUR, _CURRENT_COLOUR = "#AA3377", "#66CCEE"
_PROBLEM_TEXT = {"never": "never a gradient", "vanished": "vanished"}


def _module_colours(modules: list[str]) -> dict[str, str]:
    """Module -> colour: stacks of numbered layers by depth, the rest from the palette."""
    import matplotlib as mpl
    from matplotlib.colors import to_hex

    stacks: dict[str, list[tuple[int, str]]] = {}
    for module in modules:
        match = _LAYER.match(module)
        if match:
            stacks.setdefault(match["stack"], []).append((int(match["index"]), module))
    stacks = {k: v for k, v in stacks.items() if len(v) > 1}  # one numbered module: no stack
    colours = {}
    for i, layers in enumerate(stacks.values()):
        cmap = mpl.colormaps[_STACK_MAPS[i % len(_STACK_MAPS)]]
        layers.sort()
        # 0.85, not 1: the light end of these maps is hard to see on white
        for shade, (_, module) in zip(np.linspace(0.0, 0.85, len(layers)), layers, strict=True):
            colours[module] = to_hex(cmap(shade))
    rest = [m for m in modules if m not in colours]
    colours.update(colors_for(rest, kind="run"))
    return {m: colours[m] for m in modules}


def _steps(history) -> np.ndarray:
    return np.asarray([r.get("step", i) for i, r in enumerate(history)], dtype=float)


def _total_norm(history) -> np.ndarray | None:
    if not any("grad_norm" in r for r in history):
        return None
    return np.asarray([r.get("grad_norm", np.nan) for r in history], dtype=float)


def _positive(values: np.ndarray) -> np.ndarray:
    """Values with non-positive ones as NaN: a log axis cannot show them (drawn apart)."""
    return np.where(values > 0, values, np.nan)


# ----------------------------------------------------------------------------- gradient flow


def plot_gradient_flow(history, findings: list[str] | None = None):
    """Gradient norm (L2, before clipping) of each module over optimizer steps on a log
    axis, with the total norm in grey. Exactly-zero norms cannot sit on a log axis: they
    are drawn as × on a strip labelled "0" under the main panel (one row per module that
    has any), and a module that never got a gradient or whose gradient vanished says so
    in the legend. ``findings`` (default :func:`gradient_findings`) sets the title.

    Returns ``(fig, axes)``: axes is ``[main]`` or ``[main, zero strip]``.
    """
    from matplotlib.lines import Line2D

    norms = module_norms(history)
    findings = gradient_findings(history) if findings is None else list(findings)
    problems = module_problems(history)
    colours = _module_colours(list(norms))
    zeros = [m for m, (_, v) in norms.items() if (v == 0).any()]
    total = _total_norm(history)

    entries = len(norms) + (total is not None)
    columns = 1 if entries <= _LEGEND_ROWS else 2
    height = min(MAX_HEIGHT_IN, max(2.6, 0.7 + 0.125 * math.ceil(entries / columns)))
    if zeros:
        strip_share = min(3.0, 0.6 + 0.3 * len(zeros))
        fig, axes = new_figure(
            nrows=2,
            width=DOUBLE_COLUMN_IN,
            height=height,
            sharex=True,
            gridspec_kw={"height_ratios": [6.0, strip_share]},
        )
        ax, strip = axes
        axes = [ax, strip]
    else:
        fig, ax = new_figure(width=DOUBLE_COLUMN_IN, height=height)
        strip, axes = None, [ax]

    if not norms:
        ax.text(
            0.5,
            0.5,
            "no per-module gradient norms recorded",
            transform=ax.transAxes,
            ha="center",
            va="center",
        )
        ax.set_title("gradient flow: not recorded")
        ax.set_xlabel("optimizer step")
        return fig, axes

    handles = []
    if total is not None:
        ax.plot(_steps(history), _positive(total), color=_TOTAL_COLOUR, linewidth=0.6, zorder=1)
        handles.append(
            Line2D([], [], color=_TOTAL_COLOUR, linewidth=0.6, label="total (all parameters)")
        )
    for module, (steps, values) in norms.items():
        colour = colours[module]
        few = values.size <= 30  # markers keep isolated points visible
        ax.plot(
            steps,
            _positive(values),
            color=colour,
            linewidth=1.0,
            marker="o" if few else None,
            markersize=2.0,
        )
        last = show_number(fig, ("gradient_flow", module, "last"), float(values[-1]))
        label = f"{module}: last {last:.2g}"
        if module in problems:
            label += f" ({_PROBLEM_TEXT[problems[module]['problem']]})"
        handles.append(
            Line2D(
                [],
                [],
                color=colour,
                linewidth=1.0,
                marker="x" if module in zeros else ("o" if few else None),
                markersize=3.0,
                label=label,
            )
        )

    positive = [v[v > 0] for _, v in norms.values()]
    if total is not None:
        positive.append(total[np.isfinite(total) & (total > 0)])
    positive = np.concatenate(positive)
    ax.set_yscale("log")
    if positive.size:
        ax.set_ylim(positive.min() / 3, positive.max() * 3)
    else:
        ax.set_ylim(1e-3, 1.0)
        ax.text(
            0.5,
            0.5,
            "no module received a gradient",
            transform=ax.transAxes,
            ha="center",
            va="center",
        )
    ax.set_ylabel("gradient norm (L2, log)")
    count = len(findings)
    ax.set_title(
        f"gradient flow: {count} problem{'s' if count != 1 else ''}"
        if count
        else "gradient flow: every module receives a gradient"
    )

    if strip is not None:
        for row, module in enumerate(zeros):
            steps, values = norms[module]
            at = steps[values == 0]
            strip.plot(
                at,
                np.full(at.size, row),
                linestyle="none",
                marker="x",
                markersize=3.0,
                color=colours[module],
            )
        strip.set_ylim(len(zeros) - 0.5, -0.5)  # first module on top, as in the legend
        strip.set_yticks([(len(zeros) - 1) / 2], ["0"])
        strip.grid(False, axis="y")
        strip.set_xlabel("optimizer step")
    else:
        ax.set_xlabel("optimizer step")
    fig.legend(
        handles=handles,
        loc="outside right upper",
        ncols=columns,
        fontsize=_LEGEND_FONT,
        title="module (× = norm 0)" if zeros else "module",
        title_fontsize=7,
    )
    return fig, axes


def caption_gradient_flow(history) -> str:
    """What the gradient-flow figure shows, with the recorded steps, the range of the last
    norms and every finding."""
    norms = module_norms(history)
    if not norms:
        return (
            "No per-module gradient norms were recorded in this run (the training loop records "
            "them every grad_flow_every steps when that is on), so gradient flow is not shown."
        )
    steps = np.unique(np.concatenate([s for s, _ in norms.values()]))
    text = (
        f"L2 norm of the gradient of each of {len(norms)} modules before clipping (log scale), "
        f"recorded at {steps.size} steps from {steps[0]} to {steps[-1]}"
    )
    text += (
        "; grey: the total over all trainable parameters"
        if _total_norm(history) is not None
        else ""
    )
    zeros = [m for m, (_, v) in norms.items() if (v == 0).any()]
    if zeros:
        text += "; norms of exactly 0 (no gradient) are marked × on the strip labelled 0"
    text += ". "
    findings = gradient_findings(history)
    if findings:
        return text + "Problems: " + "; ".join(findings) + "."
    last = {m: float(v[-1]) for m, (_, v) in norms.items()}
    low, high = min(last, key=last.get), max(last, key=last.get)
    return text + (
        f"Every module received a gradient and none vanished (fell {1 / VANISH_DROP:.0e}-fold); "
        f"the last norms range from {last[low]:.2g} ({low}) to {last[high]:.2g} ({high})."
    )


# ----------------------------------------------------------------------------- cost


def _rolling_median(values: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Centred rolling median: (indices of the window centres, medians), both (N-W+1,)."""
    from numpy.lib.stride_tricks import sliding_window_view

    medians = np.median(sliding_window_view(values, window), axis=1)
    return np.arange(window // 2, window // 2 + medians.size), medians


def rolling_window(n: int) -> int:
    """Odd window of the step-time rolling median for a run of n steps: 1/20 of the run,
    between 5 and 101 steps."""
    return max(5, min(101, (n // 20) | 1))


def _per_step_panel(ax, steps, values, skip: int, median: float, unit: str, key: str):
    """Every step faint, a rolling median, the warm-up steps shaded, the median after them."""
    ax.plot(steps, values, color=_STEP_COLOUR, linewidth=0.5, alpha=0.6, label="every step")
    window = rolling_window(values.size)
    if values.size >= window:
        at, medians = _rolling_median(values, window)
        ax.plot(steps[at], medians, color="#4477AA", label=f"rolling median ({window} steps)")
    if skip:
        ax.axvspan(
            steps[0] - 0.5,
            steps[skip] - 0.5,
            color="#e8e8e8",
            zorder=0,
            label=f"warm-up ({skip} steps, left out)",
        )
    value = show_number(ax, ("throughput", key), median)
    ax.axhline(value, color="black", linestyle="--", linewidth=0.8, label="median after warm-up")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel(unit)


def plot_cost(history, projection: list[dict] | None = None, memory: dict | None = None):
    """Four panels: (a) wall seconds per step (log) and (b) samples per second over the run,
    each with its rolling median, the warm-up steps :func:`throughput` leaves out shaded
    and the median after them; (c) the projected wall time in hours against run length
    (``projection`` from :func:`nblib.metrics.cost.project_wall_time`, log-log) with and
    without the feature cache, seed 001's 50k-step run for scale; (d) peak memory per
    phase (``memory`` from :meth:`nblib.memory.MemoryTracker.record`), the title naming
    what was measured. Panels without their input say so. One legend under the panels.

    Returns ``(fig, axes)``, axes the four panels in that order.
    """
    fig, grid = new_figure(ncols=2, nrows=2, width=DOUBLE_COLUMN_IN, height=4.8)
    ax_time, ax_rate, ax_proj, ax_mem = grid.flat
    seconds = step_seconds(history)
    tp = throughput(history)
    steps, skip = _steps(history), tp["steps_skipped"]

    _per_step_panel(
        ax_time,
        steps,
        seconds,
        skip,
        tp["seconds_per_step"],
        "seconds per step (log)",
        "seconds_per_step",
    )
    _log_125(ax_time)
    ax_time.set_title(f"(a) step time: median {tp['seconds_per_step']:.3g} s")

    if tp["samples_per_second"] is not None:
        rate = np.asarray([r.get("samples_per_second", np.nan) for r in history], dtype=float)
        _per_step_panel(
            ax_rate,
            steps,
            rate,
            skip,
            tp["samples_per_second"],
            "samples per second",
            "samples_per_second",
        )
        ax_rate.set_ylim(bottom=0)
        ax_rate.set_title(f"(b) throughput: median {tp['samples_per_second']:.4g} samples/s")
    else:
        _missing(ax_rate, "(b) throughput", "samples per second not recorded")

    _projection_panel(ax_proj, projection)
    _memory_panel(ax_mem, memory)

    handles, labels = [], []
    for ax in (ax_time, ax_proj, ax_mem):
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            if label not in labels:
                handles.append(handle)
                labels.append(label)
    fig.legend(handles, labels, loc="outside lower center", ncols=3, fontsize=_LEGEND_FONT)
    return fig, list(grid.flat)


def _log_125(ax) -> None:
    """Log y with ticks at 1-2-5 labelled as plain numbers: step times rarely span a decade,
    which would otherwise get one labelled tick (or mathtext like 4×10^-1)."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ax.set_yscale("log")
    ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_minor_locator(LogLocator(base=10, subs=np.arange(1, 10)))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_minor_formatter(NullFormatter())


def _missing(ax, title: str, why: str) -> None:
    ax.text(0.5, 0.5, why, transform=ax.transAxes, ha="center", va="center")
    ax.set_title(title)
    ax.set_xticks([])
    ax.set_yticks([])


def _projection_panel(ax, projection: list[dict] | None) -> None:
    if not projection:
        _missing(ax, "(c) projected wall time", "no projection")
        return
    steps = np.asarray([row["steps"] for row in projection], dtype=float)
    series = [("with_cache", "with feature cache (measured)", "-")]
    if all(row.get("without_cache_hours") is not None for row in projection):
        series.append(("without_cache", "without cache (+ backbone forward)", "--"))
    hours = {key: np.asarray([row[f"{key}_hours"] for row in projection]) for key, *_ in series}
    # Durations are written beside the points only where the two lines are clearly apart;
    # the caption has every number.
    apart = len(series) == 1 or bool(np.all(hours["without_cache"] >= 2 * hours["with_cache"]))
    for key, label, style in series:
        colour = _PROJECTION_COLOURS[key]
        ax.plot(steps, hours[key], color=colour, linestyle=style, marker="o", label=label)
        if not apart and key == "without_cache":
            continue
        for i, (x, h) in enumerate(zip(steps, hours[key], strict=True)):
            # below-right of a rising line, except the last point: above-left, inside the axes
            last = i == len(steps) - 1
            ax.annotate(
                duration_text(h * 3600),
                (x, h),
                xytext=(-3, 4) if last else (3, -4),
                textcoords="offset points",
                ha="right" if last else "left",
                va="bottom" if last else "top",
                fontsize=_LEGEND_FONT,
                color=colour,
            )
    shown = [SEED_001_SECONDS / 3600, *np.concatenate(list(hours.values()))]
    ax.plot(
        [SEED_001_STEPS],
        [SEED_001_SECONDS / 3600],
        linestyle="none",
        marker="*",
        markersize=7,
        color="black",
        label=f"seed 001: 50k steps in {SEED_001_SECONDS / 3600:.1f} h (7B VLM, no cache)",
    )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(steps.min() / 2, steps.max() * 2)
    ax.set_ylim(min(shown) / 5, max(shown) * 5)  # room for the labels above and below
    ax.set_xlabel("optimizer steps (log)")
    ax.set_ylabel("wall time, hours (log)")
    ax.set_title("(c) projected wall time")


def _memory_panel(ax, memory: dict | None) -> None:
    if not memory or not memory.get("phases"):
        _missing(ax, "(d) peak memory", "memory not measured")
        return
    phases = memory["phases"]
    names = list(phases)
    top = max(phases.values())
    scale, unit = (1e9, "GB") if top >= 1e9 else (1e6, "MB")
    host = memory["kind"] == HOST_KIND
    current = memory.get("current_bytes", {}) if host else {}
    has_current = any(current.get(n) is not None for n in names)
    width = 0.4 if has_current else 0.6
    x = np.arange(len(names), dtype=float)
    offset = -width / 2 if has_current else 0.0
    peaks = [show_number(ax, ("memory", "phases", n), phases[n]) / scale for n in names]
    show_number(ax, ("memory", "peak_bytes"), memory["peak_bytes"])
    label = "peak allocated in phase"
    if host:
        per_phase = memory.get("peak_scope") == "phase"
        label = "peak RSS in phase" if per_phase else "peak RSS so far (process high-water mark)"
    bars = ax.bar(x + offset, peaks, width, color=_PEAK_COLOUR, label=label)
    ax.bar_label(bars, fmt="%.3g", fontsize=_LEGEND_FONT, padding=1)
    if has_current:
        now = [(current.get(n) or 0) / scale for n in names]
        bars = ax.bar(x + width / 2, now, width, color=_CURRENT_COLOUR, label="RSS at phase end")
        ax.bar_label(bars, fmt="%.3g", fontsize=_LEGEND_FONT, padding=1)
    ax.set_xticks(x, names, rotation=30 if len(names) > 4 else 0)
    ax.set_ylim(0, max(peaks) * 1.2)
    ax.set_ylabel(unit)
    ax.set_title(f"(d) memory: {memory['kind']}")


def caption_cost(history, projection: list[dict] | None = None, memory: dict | None = None) -> str:
    """What the cost figure shows: the measured speed after warm-up, the projection's
    numbers against seed 001's run, and the memory peaks with what they measure."""
    seconds = step_seconds(history)
    tp = throughput(history)
    skip = tp["steps_skipped"]
    text = (
        f"(a) Wall seconds of each of {seconds.size} optimizer steps with a "
        f"{rolling_window(seconds.size)}-step rolling median: after {skip} warm-up "
        f"step{'s' if skip != 1 else ''} (shaded, left out; the first took {seconds[0]:.3g} s) "
        f"the median is {tp['seconds_per_step']:.3g} s per step over {tp['steps_measured']} steps. "
    )
    if tp["samples_per_second"] is not None:
        text += f"(b) Throughput, median {tp['samples_per_second']:.4g} samples per second. "
    else:
        text += "(b) Samples per second were not recorded. "
    if projection:
        parts = []
        for row in projection:
            part = f"{row['steps']:,} steps {duration_text(row['with_cache_seconds'])}"
            if row.get("without_cache_seconds") is not None:
                part += f" ({duration_text(row['without_cache_seconds'])} without the cache)"
            parts.append(part)
        text += (
            "(c) Projected wall time at this speed with the feature cache (evaluations, "
            f"checkpoints and building the cache not included): {'; '.join(parts)}; seed 001 "
            f"took {SEED_001_SECONDS / 3600:.1f} h for {SEED_001_STEPS:,} steps with a 7B VLM "
            "forward in every step. "
        )
    else:
        text += "(c) No wall-time projection. "
    if memory and memory.get("phases"):
        phases = memory["phases"]
        biggest = max(phases, key=phases.get)
        listed = ", ".join(f"{n} {_bytes_text(b)}" for n, b in phases.items())
        text += f"(d) Peak memory by phase ({memory['kind']}): {listed}; largest in {biggest}"
        if memory["kind"] == HOST_KIND and memory.get("peak_scope") == "phase":
            text += " (the host's peak RSS, reset at each phase's start)"
        elif memory["kind"] == HOST_KIND:
            text += (
                " (the host's peak RSS is the process's high-water mark since it started, so "
                "each phase includes those before it)"
            )
        text += "."
    else:
        text += "(d) Memory was not measured."
    return text


def _bytes_text(n: float) -> str:
    return f"{n / 1e9:.3g} GB" if n >= 1e9 else f"{n / 1e6:.3g} MB"
