"""Figures of the wiring checks (:mod:`nblib.studies.probes.wiring`): the gradient norm of
each module after one backward pass with the LoRA check, and each head trained alone on
random targets.

Each ``plot_*`` function takes tables and histories (never reads a file) and returns
``(fig, axes)``, recording with :func:`nblib.plots.show_number` every number it draws that
metrics.json reports; each ``caption_*`` function writes that figure's caption.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from nblib.plots import DOUBLE_COLUMN_IN, SINGLE_COLUMN_IN, color_for, new_figure, show_number
from nblib.studies.probes.plots_common import FAIL, NEUTRAL, THRESHOLD, _log_ticks

# A constant predictor of N(0, 1) targets (predicting 0) scores E|x| = sqrt(2 / pi).
CONSTANT_MAE = float(np.sqrt(2 / np.pi))


# --------------------------------------------------------------------------- wiring


def plot_wiring(checks: pd.DataFrame):
    """The pipeline checks: per module the gradient norm after one backward pass of the
    policy's loss (log axis; a frozen module's zero gradient marked at the axis, as it
    should be), failed checks marked, and the LoRA check's numbers in the title."""
    rows = checks[checks["name"] != "lora"] if "name" in checks else checks.iloc[0:0]
    lora = checks[checks["name"] == "lora"] if "name" in checks else checks.iloc[0:0]
    height = 1.1 + 0.25 * max(len(rows), 1)
    fig, ax = new_figure(width=SINGLE_COLUMN_IN, height=min(height, 9.0))
    names = list(rows["name"])
    y = np.arange(len(names))[::-1]
    norms = rows["grad_norm"].astype(float).to_numpy()
    positive = norms[norms > 0]
    floor = positive.min() / 30 if len(positive) else 1e-3
    labels = []
    for yi, (_, row) in zip(y, rows.iterrows(), strict=True):
        name, norm, ok = row["name"], float(row["grad_norm"]), bool(row["ok"])
        show_number(ax, ("wiring", name, "grad_norm"), norm)
        trains = float(row["trainable"]) > 0
        colour = NEUTRAL if ok else FAIL
        if norm > 0:
            ax.barh(yi, norm, left=floor, color=colour, height=0.6)
            ax.annotate(f"{norm:.3g}", (norm, yi), xytext=(2, 0), textcoords="offset points",
                        va="center", fontsize=6)  # fmt: skip
        else:
            ax.plot(floor, yi, marker="o", ms=3.5, color=colour, mfc="white")
            ax.annotate("0" if trains else "0, as a frozen module should", (floor, yi),
                        xytext=(4, 0), textcoords="offset points", va="center",
                        fontsize=6)  # fmt: skip
        state = "trainable" if trains else "frozen"
        labels.append(f"{name} ({state})" + ("" if ok else " ✗"))
    ax.set_xscale("log")
    _log_ticks(ax, "x")
    top = positive.max() * 30 if len(positive) else 1.0
    ax.set_xlim(floor / 1.5, top)
    ax.set_yticks(y, labels, fontsize=6.5)
    ax.set_xlabel("gradient norm (one backward pass)")
    ax.grid(axis="y", visible=False)
    failed = int((~checks["ok"].astype(bool)).sum())
    head = f"{len(checks) - failed} of {len(checks)} checks pass"
    if len(lora):
        row = lora.iloc[0]
        adapters = float(row.get("adapters", 0) or 0)
        if adapters:
            show_number(ax, ("wiring", "lora", "adapters"), adapters)
            show_number(ax, ("wiring", "lora", "output_change"), float(row["output_change"]))
            show_number(ax, ("wiring", "lora", "with_gradient"), float(row["with_gradient"]))
            head += (
                f"\nLoRA: output changes {float(row['output_change']):.2g} when zeroed;"
                f"\n{int(row['with_gradient'])} of {int(adapters)} adapters get a gradient"
                + ("" if bool(row["ok"]) else " ✗")
            )
        else:
            head += "\nLoRA: the policy has no adapters to check"
    if failed:
        head = head.replace("checks pass", "checks pass (✗: failed)", 1)
    ax.set_title(head, fontsize=7)
    return fig, ax


def caption_wiring(checks: pd.DataFrame) -> str:
    failed = checks.loc[~checks["ok"].astype(bool), "check"].tolist()
    verdict = "every check passes" if not failed else "failed: " + "; ".join(failed)
    return (
        "Is the pipeline wired as configured? Gradient norm of each module after one "
        "backward pass of the policy's loss (log axis): trainable modules must get one, "
        "frozen ones none (0 at the axis); the title gives the LoRA check (the output must "
        f"change when the adapters are zeroed, and each must get a gradient). Here {verdict}."
    )


# --------------------------------------------------------------------------- heads alone


def plot_isolation(isolation: dict | None):
    """Left, the training loss of each head trained alone on random conditions -> random
    targets (raw, and a 20-step trailing mean; log axis); right, the action MAE of its
    predictions on those targets against a constant predictor's. Nothing (None, None) for
    a plug-in, which has no isolation test."""
    if isolation is None:
        return None, None
    fig, (left, right) = new_figure(
        ncols=2, width=DOUBLE_COLUMN_IN, height=2.2, gridspec_kw={"width_ratios": [3, 2]}
    )
    colours = {kind: color_for(kind, "run") for kind in isolation}
    for kind, run in isolation.items():
        steps, loss = run["history"].column("step"), run["history"].column("loss")
        first, final = float(run["first_loss"]), float(run["final_loss"])
        show_number(left, ("head_isolation", kind, "first_loss"), first)
        show_number(left, ("head_isolation", kind, "final_loss"), final)
        left.plot(steps, loss, color=colours[kind], alpha=0.3, lw=0.6)
        if len(loss) >= 20:
            smooth = np.convolve(loss, np.ones(20) / 20, mode="valid")
            left.plot(steps[19:], smooth, color=colours[kind],
                      label=f"{kind}: loss {first:.3g} → {final:.2g}")  # fmt: skip
        else:
            left.plot([], [], color=colours[kind], label=f"{kind}: loss {first:.3g} → {final:.2g}")
    left.set_yscale("log")
    _log_ticks(left)
    left.set_xlabel("step")
    left.set_ylabel("training loss (20-step mean)")
    left.legend(fontsize=6, loc="lower left")
    left.set_title("each head alone on random targets", fontsize=7)
    kinds = list(isolation)
    for i, kind in enumerate(kinds):
        mae = float(isolation[kind]["mae"])
        show_number(right, ("head_isolation", kind, "mae"), mae)
        right.bar(i, mae, color=colours[kind], width=0.6)
        right.plot(i, mae, marker="_", ms=14, mew=1.5, color=colours[kind])  # seen at ~0 too
        right.annotate(f"{mae:.3g}", (i, mae), xytext=(0, 2), textcoords="offset points",
                       ha="center", fontsize=6)  # fmt: skip
    right.axhline(CONSTANT_MAE, color=THRESHOLD, ls="--", lw=0.9)
    right.annotate(f"constant predictor {CONSTANT_MAE:.2f}", (0.5, CONSTANT_MAE),
                   xycoords=("axes fraction", "data"), xytext=(0, 2), ha="center",
                   textcoords="offset points", color=THRESHOLD, fontsize=6)  # fmt: skip
    right.set_ylim(0, CONSTANT_MAE * 1.25)
    right.set_xticks(range(len(kinds)), [f"{k} head" for k in kinds])
    right.set_ylabel("action MAE on its targets")
    right.set_title("can it fit them?", fontsize=7)
    return fig, (left, right)


def caption_isolation(isolation: dict | None) -> str | None:
    if isolation is None:  # a plug-in: no figure
        return None
    parts = ", ".join(f"{k} {v['mae']:.3g}" for k, v in isolation.items())
    return (
        "Seed 001's test 3: each head trained alone to map random conditions to random "
        "targets (left: training loss, log axis; right: action MAE of its predictions, "
        f"dashed: a constant predictor's {CONSTANT_MAE:.2f}). Action MAE: {parts}; a head "
        "well below the dashed line can map unique conditions to targets."
    )
