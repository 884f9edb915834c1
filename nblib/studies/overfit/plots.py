"""Notebook 01's figures and their captions (:mod:`nblib.studies.overfit` is the engine).

Each figure answers one part of "can this pipeline fit N demonstrations?" in the terms of
the verdict: the mean over action dimensions of chunk MAE / action std on the training
demos, judged on its bootstrap interval against the head's PASS and PARTIAL bars. Every
number a figure draws that metrics.json reports is recorded with
:func:`nblib.plots.show_number` under the metrics key it has there, so a figure can never
disagree with the verdict printed beside it. Colours: splits (train / val) use the
``split`` palette, action dimensions the ``dim`` palette, the head the ``run`` palette.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nblib.plots import (
    DOUBLE_COLUMN_IN,
    SINGLE_COLUMN_IN,
    color_for,
    colors_for,
    new_figure,
    show_number,
)
from nblib.verdict import Estimate

# Meta-World and LIBERO both clip commanded actions to [-1, 1]: a prediction beyond it is
# not executed as predicted.
ACTION_LIMIT = 1.0
# A sample whose chunk runs past the episode end after fewer valid steps than this share
# of the horizon is not drawn: a row of 2-3 points says nothing about the fit.
MIN_VALID_SHARE = 0.5
THRESHOLD_STYLE = {"pass": ("--", "PASS"), "partial": (":", "PARTIAL")}
SMOOTH = 20  # steps in the moving average of the loss


def _split_colours() -> dict[str, str]:
    return colors_for(["train", "val"], kind="split")


def _draw_thresholds(ax, limits: dict[str, float], label_suffix: str = "") -> None:
    """Horizontal lines at the PASS and PARTIAL bars, labelled with their values (and
    recorded as the verdict's numbers pass_threshold / partial_threshold)."""
    for key, (style, name) in THRESHOLD_STYLE.items():
        value = show_number(ax, f"{key}_threshold", limits[key])
        ax.axhline(
            value,
            color="black",
            linestyle=style,
            linewidth=0.8,
            label=f"{name} bar {value:g}{label_suffix}",
        )


def _estimate_text(est: Estimate) -> str:
    return f"{est.value:.3f} [{est.low:.3f}, {est.high:.3f}]"


# ----------------------------------------------------------------------------- training


def plot_training(
    history, curve: dict | None, train: Estimate, val: Estimate | None, limits, head: str
):
    """Left: the training loss (log scale; faint every step, line a moving average). Right:
    what was learned, the mean chunk MAE/std on the training and validation samples
    measured during training (``curve``: :func:`nblib.studies.overfit.learning_curve`),
    the final assessment (``train`` / ``val`` with their bootstrap intervals) at the end
    and the PASS / PARTIAL bars."""
    from matplotlib.ticker import FuncFormatter, LogLocator

    fig, (ax_loss, ax_err) = new_figure(ncols=2, width=DOUBLE_COLUMN_IN, height=2.3)
    steps, loss = history.column("step"), history.column("loss")
    colour = color_for(head, "run")
    ax_loss.plot(steps, loss, color=colour, alpha=0.25, linewidth=0.5)
    if len(loss) >= SMOOTH:
        mean = np.convolve(loss, np.ones(SMOOTH) / SMOOTH, mode="valid")
        ax_loss.plot(
            steps[SMOOTH - 1 :], mean, color=colour, label=f"{head} head, {SMOOTH}-step mean"
        )
        ax_loss.legend(loc="upper right")
    ax_loss.set_yscale("log")
    # a loss spanning less than a decade would get one labelled tick: label 1-2-5 too
    ax_loss.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax_loss.yaxis.set_minor_locator(LogLocator(base=10, subs=np.arange(1, 10)))
    ax_loss.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax_loss.yaxis.set_minor_formatter("")
    ax_loss.set_xlabel("optimizer step")
    ax_loss.set_ylabel("training loss (log)")
    ax_loss.set_title("loss (not what the verdict judges)")

    split = _split_colours()
    last = int(steps[-1]) + 1 if len(steps) else 0
    if curve is not None:
        for key, name in (("train_relative_mean", "train"), ("val_relative_mean", "val")):
            if key in curve:
                n = "" if name == "train" else ""
                ax_err.plot(
                    curve["step"], curve[key], color=split[name], marker="o", label=name + n
                )
    else:
        ax_err.text(
            0.5, 0.55, "not measured during training", transform=ax_err.transAxes, ha="center"
        )
    finals = [("train", train, "train_relative_mean")]
    if val is not None:
        finals.append(("val", val, "val_relative_mean"))
    for name, est, key in finals:
        show_number(ax_err, key, est.value)
        show_number(ax_err, f"{key}_low", est.low)
        show_number(ax_err, f"{key}_high", est.high)
        ax_err.errorbar(
            [last],
            [est.value],
            yerr=[[est.value - est.low], [est.high - est.value]],
            color=split[name],
            marker="D",
            markersize=4,
            capsize=2,
            linestyle="none",
            label="after training, 95% CI" if name == "train" else None,
        )
        below = name == "train"  # under the train point, over the val point: clear of both curves
        ax_err.annotate(
            f"{name} {_estimate_text(est)}",
            (last, est.value),
            xytext=(-4, -6 if below else 6),
            textcoords="offset points",
            ha="right",
            va="top" if below else "bottom",
            fontsize=6.5,
            color=split[name],
        )
    _draw_thresholds(ax_err, limits)
    top = max([1.0, limits["partial"] * 1.2] + [e.high for _, e, _ in finals])
    if curve is not None:
        top = max(
            [top]
            + [max(curve[k]) for k in ("train_relative_mean", "val_relative_mean") if k in curve]
        )
    ax_err.set_ylim(0, top * 1.05)
    ax_err.set_xlim(left=0)
    ax_err.set_xlabel("optimizer step")
    ax_err.set_ylabel("mean chunk MAE / action std")
    ax_err.set_title("action error (the verdict's quantity)")
    ax_err.legend(loc="upper right", ncols=2)
    return fig, (ax_loss, ax_err)


def caption_training(
    history, curve: dict | None, train: Estimate, val: Estimate | None, limits, label: str
) -> str:
    """One or two sentences under the training figure, with the numbers that matter."""
    measured = f"measured {len(curve['step'])} times during training" if curve else "after training"
    loss = float(np.nanmean(history.column("loss")[-10:])) if len(history) else float("nan")
    text = (
        f"Left: the training loss, which ends at {loss:.3g} and is not judged (a flow-matching "
        f"loss stays high even when the sampled actions are right). Right: the mean chunk "
        f"MAE/action std on the training (grey) and validation (orange) samples, {measured}; "
        f"it ends at {_estimate_text(train)} on the training demos"
    )
    text += _against_bars(train, limits, label)
    if val is not None:
        text += f"; validation {_estimate_text(val)} (for comparison only)"
    return text + "."


def _against_bars(train: Estimate, limits, label: str) -> str:
    if label == "PASS":
        return f", at or under the PASS bar {limits['pass']:g}: {label}"
    if label == "FAIL":
        return f", above the PARTIAL bar {limits['partial']:g}: {label}"
    return f", between the PASS bar {limits['pass']:g} and the PARTIAL bar {limits['partial']:g}: {label}"


# ----------------------------------------------------------------------------- per dimension


def plot_dim_errors(
    names: list[str],
    train_errors: dict,
    train: Estimate,
    val_errors: dict | None,
    val: Estimate | None,
    limits: dict[str, float],
    label: str,
    control: str = "none",
):
    """Chunk MAE/std per action dimension on the training and the validation demos, and
    their mean (the verdict's quantity, with its bootstrap interval) against the PASS and
    PARTIAL bars."""
    fig, ax = new_figure(width=SINGLE_COLUMN_IN, height=2.6)
    split = _split_colours()
    groups = [*names, "mean"]
    x = np.arange(len(groups), dtype=float)
    x[-1] += 0.4  # the verdict's mean stands apart from the dimensions
    sets = [("train", train_errors, train, "train")]
    if val_errors is not None:
        sets.append(("val", val_errors, val, "val"))
    width = 0.8 / len(sets)
    for i, (name, errors, est, prefix) in enumerate(sets):
        offset = (i - (len(sets) - 1) / 2) * width
        per_dim = [
            show_number(ax, ("per_dimension", d, f"{prefix}_mae_over_std"), float(v))
            for d, v in zip(names, errors["relative_chunk"], strict=True)
        ]
        show_number(ax, f"{prefix}_relative_mean", est.value)
        show_number(ax, f"{prefix}_relative_mean_low", est.low)
        show_number(ax, f"{prefix}_relative_mean_high", est.high)
        n = errors["samples"]
        ax.bar(x[:-1] + offset, per_dim, width, color=split[name], label=f"{name} (n={n})")
        ax.bar(x[-1] + offset, est.value, width, color=split[name])
        ax.errorbar(
            x[-1] + offset,
            est.value,
            yerr=[[est.value - est.low], [est.high - est.value]],
            color="black",
            capsize=2,
            linewidth=0.8,
        )
        ax.annotate(
            f"{est.value:.2f}",
            (x[-1] + offset, est.high),
            xytext=(0, 2),
            textcoords="offset points",
            ha="center",
            fontsize=6.5,
        )
    ax.axvline((x[-2] + x[-1]) / 2, color="#999999", linewidth=0.5)
    _draw_thresholds(ax, limits, " (mean)")
    ax.set_xticks(x, [*names, "mean\n(verdict)"])
    ax.set_ylabel("chunk MAE / action std")
    tops = [limits["partial"] * 1.35] + [e.high for _, _, e, _ in sets]
    tops += [max(errs["relative_chunk"]) for _, errs, _, _ in sets]
    ax.set_ylim(0, max(tops) * 1.3)
    title = f"verdict {label}: train mean {train.value:.3f}"
    if control != "none":
        title = f"negative control {control!r} (must FAIL): {label}"
    ax.set_title(title)
    ax.legend(loc="upper left", ncols=2, fontsize=6.5, columnspacing=1.0)
    return fig, ax


def caption_dim_errors(
    names: list[str], train_errors: dict, train: Estimate, val: Estimate | None, limits, label
) -> str:
    worst = int(np.argmax(train_errors["relative_chunk"]))
    text = (
        "Chunk MAE divided by the action std per action dimension on the training (grey) and "
        "validation (orange) demos; the verdict judges their mean on the training demos "
        f"(right, 95% bootstrap interval over samples), {_estimate_text(train)}"
        + _against_bars(train, limits, label)
        + f". Worst dimension: {names[worst]} "
        f"({train_errors['relative_chunk'][worst]:.3f})"
    )
    if val is not None:
        text += f"; validation mean {val.value:.3f} is shown for comparison only"
    return text + "."


# ----------------------------------------------------------------------------- chunks


@dataclass(frozen=True)
class ChunkRow:
    """One drawn sample: its split, a label, and its chunks (H, A) in action units."""

    split: str  # train or val
    label: str  # e.g. "demo_3 t=12"
    pred: np.ndarray
    true: np.ndarray
    mask: np.ndarray  # (H,) True inside the episode
    std: np.ndarray  # (A,) action std (the MAE/std of the row)

    @property
    def relative(self) -> float:
        """This sample's chunk MAE/std (mean over dimensions) over its valid steps."""
        err = np.abs(self.pred[self.mask] - self.true[self.mask]) / np.maximum(self.std, 1e-8)
        return float(err.mean()) if err.size else float("nan")


def drawable(mask: np.ndarray) -> np.ndarray:
    """Indices of samples with at least :data:`MIN_VALID_SHARE` of the horizon inside the
    episode (mask (N, H)); shorter chunks are not drawn."""
    need = int(np.ceil(MIN_VALID_SHARE * mask.shape[1]))
    return np.flatnonzero(mask.sum(axis=1) >= need)


def plot_chunks(rows: list[ChunkRow], names: list[str]):
    """Predicted (dashed) vs true (solid) chunks, one row per sample (label coloured by its
    split, with the sample's MAE/std), one column per action dimension (``dim`` colours)
    on one shared y scale per column; predictions beyond ±:data:`ACTION_LIMIT` are
    marked, and the legend lists the marker only when there are such predictions."""
    from matplotlib.lines import Line2D

    if not rows:
        raise ValueError("plot_chunks: no samples to draw")
    fig, axes = new_figure(
        ncols=len(names),
        nrows=len(rows),
        width=DOUBLE_COLUMN_IN,
        height=min(0.95 * len(rows) + 0.75, 9.0),
        squeeze=False,
        sharex=True,
        sharey="col",
    )
    dims = colors_for(names, kind="dim")
    split = _split_colours()
    outside = 0
    for r, row in enumerate(rows):
        steps = np.arange(row.pred.shape[0])[row.mask]
        for d, ax in enumerate(axes[r]):
            colour = dims[names[d]]
            pred, true = row.pred[row.mask, d], row.true[row.mask, d]
            ax.plot(steps, true, color=colour)
            ax.plot(steps, pred, color=colour, linestyle="--")
            beyond = np.abs(pred) > ACTION_LIMIT
            outside += int(beyond.sum())
            if beyond.any():
                ax.plot(steps[beyond], pred[beyond], "x", color="black", markersize=4)
            if r == 0:
                ax.set_title(names[d], color=colour)
        axes[r][0].set_ylabel(
            f"{row.split} {row.label}\nMAE/std {row.relative:.2f}",
            color=split[row.split],
            fontsize=6.5,
        )
    for ax in axes[-1]:
        ax.set_xlabel("chunk step")
    if outside:  # the ±1 range lines only where a prediction leaves it
        for ax in axes.flat:
            low, high = ax.get_ylim()
            for bound in (-ACTION_LIMIT, ACTION_LIMIT):
                if low <= bound <= high:
                    ax.axhline(bound, color="#999999", linewidth=0.5, linestyle=":", zorder=1)
    handles = [
        Line2D([], [], color="black", label="demo (true)"),
        Line2D([], [], color="black", linestyle="--", label="predicted"),
    ]
    if outside:
        handles.append(
            Line2D(
                [],
                [],
                color="black",
                marker="x",
                linestyle="none",
                label=f"predicted outside ±{ACTION_LIMIT:g} ({outside})",
            )
        )
    handles += [
        Line2D([], [], color=split[s], linewidth=3, label=f"{s} sample")
        for s in dict.fromkeys(row.split for row in rows)
    ]
    fig.legend(handles=handles, loc="outside upper center", ncols=len(handles), fontsize=6.5)
    return fig, axes


def caption_chunks(rows: list[ChunkRow], names: list[str], horizon: int) -> str:
    counts = {s: sum(r.split == s for r in rows) for s in ("train", "val")}
    outside = sum(int((np.abs(r.pred[r.mask]) > ACTION_LIMIT).sum()) for r in rows)
    total = sum(int(r.mask.sum()) * len(names) for r in rows)
    drawn = " and ".join(f"{n} {s}" for s, n in counts.items() if n)
    text = (
        f"Predicted (dashed) against demonstrated (solid) action chunks of {drawn} random "
        f"samples (rows, with each sample's chunk MAE/std), one column per action dimension on "
        f"a shared scale; samples with fewer than {int(np.ceil(MIN_VALID_SHARE * horizon))} of "
        f"{horizon} steps left in their episode are not drawn."
    )
    if outside:
        text += (
            f" {outside} of {total} drawn predicted values lie outside ±{ACTION_LIMIT:g} (×), "
            "where the environment clips them."
        )
    return text
