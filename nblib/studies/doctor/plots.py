"""Notebook 06's overview figure: every check and its status in one strip, and the
registry of each check's own figures (drawn by the ``*_plots`` modules beside this one
from the check's result alone)."""

from __future__ import annotations

import importlib

from nblib.plots import SINGLE_COLUMN_IN, new_figure
from nblib.studies.doctor.checks import CHECK_NAMES

# Status colours: Okabe-Ito bluish green and vermillion, grey for not looked at. Shape
# and text say the status too, so the strip reads in greyscale.
STATUS_STYLE = {
    "ok": ("#009E73", "o", "ok"),
    "mismatch": ("#D55E00", "X", "MISMATCH"),
    "skipped": ("#999999", "s", "skipped"),
}

#: Each check's figures: (figure name, "module:plot function", "module:caption function")
#: in nblib.studies.doctor. A plot function reads one CheckResult (its evidence and
#: artifacts) and returns (fig, axes), or None / (None, None) when the result holds nothing
#: to draw; it records with nblib.plots.show_number every number it draws that
#: metrics.json holds, at its path there (checks/<check>/evidence/...). The caption
#: function writes the caption from the same result.
FIGURES: dict[str, list[tuple[str, str, str]]] = {name: [] for name in CHECK_NAMES} | {
    "camera_orientation": [
        (
            "camera_orientation",
            "camera_plots:figure_camera_orientation",
            "camera_plots:caption_camera_orientation",
        )
    ],
    **{
        name: [(name, f"dynamics_plots:figure_{name}", f"dynamics_plots:caption_{name}")]
        for name in ("action_representation", "gripper_polarity", "state_units")
    },
    **{
        name: [(name, f"policy_plots:figure_{name}", f"policy_plots:caption_{name}")]
        for name in ("normalization", "chunk_execution")
    },
    "instruction_delivery": [
        (
            "instruction_delivery",
            "delivery_plots:figure_delivery",
            "delivery_plots:caption_delivery",
        )
    ],
    "coverage": [("coverage", "delivery_plots:figure_coverage", "delivery_plots:caption_coverage")],
}


def _resolve(path: str):
    module, function = path.split(":")
    return getattr(importlib.import_module(f"nblib.studies.doctor.{module}"), function)


def figures(result) -> list[tuple[str, object, str]]:
    """``(name, fig, caption)`` of every figure of ``result``'s check that has something
    to draw (none for a skipped check)."""
    if result.status == "skipped":
        return []
    drawn = []
    for name, plot, caption in FIGURES[result.check]:
        made = _resolve(plot)(result)
        if made is not None and made[0] is not None:
            drawn.append((name, made[0], _resolve(caption)(result)))
    return drawn


def overview_figure(results):
    """One row per check: a marker and word for its status, then the check's name."""
    fig, ax = new_figure(width=SINGLE_COLUMN_IN, height=0.3 + 0.2 * len(results))
    for row, result in enumerate(results):
        colour, marker, word = STATUS_STYLE[result.status]
        y = len(results) - 1 - row
        ax.scatter([0], [y], s=40, color=colour, marker=marker, zorder=3)
        ax.text(0.15, y, word, va="center", color=colour, fontsize=7, fontweight="bold")
        ax.text(1.3, y, result.check, va="center", fontsize=7)
    ax.set_xlim(-0.3, 4.2)
    ax.set_ylim(-0.7, len(results) - 0.3)
    ax.axis("off")
    return fig, ax


def overview_caption(results) -> str:
    counts = {s: sum(r.status == s for r in results) for s in STATUS_STYLE}
    bad = [r.check for r in results if r.status == "mismatch"]
    text = (
        f"Train/eval consistency: {counts['ok']} check(s) ok, {counts['mismatch']} "
        f"mismatch(es), {counts['skipped']} skipped."
    )
    if bad:
        text += f" Mismatches: {', '.join(bad)} (details and fixes in the table)."
    return text


def browser(results):
    """ipywidgets (``interactive=True``): choose a check; its status, detail and figures
    follow (the evidence of one check at a time, as a reader goes down the list)."""
    import ipywidgets as w
    import matplotlib.pyplot as plt

    from nblib.studies.doctor.engine import explain

    by_name = {r.check: r for r in results}

    def show(check):
        print(explain(by_name[check]))
        if figures(by_name[check]):  # drawn on pyplot's current figures
            plt.show()

    first = next((r.check for r in results if r.status == "mismatch"), results[0].check)
    return w.interactive(
        show, check=w.Dropdown(options=list(by_name), value=first, description="check")
    )
