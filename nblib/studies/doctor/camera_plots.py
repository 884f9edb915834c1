"""Figures of the ``camera_orientation`` check, read from its result only: per camera the
dataset's first frame, the simulator's reset frame, the dataset frame with the best
transform undone (it should look like the simulator's), and the distance of each of the
eight transforms."""

from __future__ import annotations

import numpy as np

from nblib.plots import DOUBLE_COLUMN_IN, color_for, new_figure, show_number
from nblib.studies.doctor.camera import INVERSE, MARGIN, TRANSFORMS, apply

#: Where metrics.json holds this check's evidence (nblib.studies.doctor.engine.metrics).
EVIDENCE = ("checks", "camera_orientation", "evidence")
SHORT = {
    "identity": "as rendered",
    "rot90": "rot 90° ccw",
    "rot180": "rot 180°",
    "rot270": "rot 90° cw",
    "flip_lr": "flip left-right",
    "flip_ud": "flip upside down",
    "transpose": "transpose",
    "antitranspose": "anti-transpose",
}
ROW_IN = 1.55  # one camera's row: frames stay ~1.4 in wide at page width


def figure_camera_orientation(result):
    """(fig, axes): one row per compared camera (dataset frame, simulator frame, dataset
    frame re-oriented by the best transform, distance per transform)."""
    cameras = result.evidence.get("cameras", {})
    examples = result.artifacts.get("examples", {})
    shown = [c for c in cameras if c in examples]
    if not shown:
        fig, ax = new_figure(width=DOUBLE_COLUMN_IN, height=1.2)
        ax.axis("off")
        ax.text(0.5, 0.5, "camera_orientation: no frames compared", ha="center", va="center")
        return fig, ax
    fig, axes = new_figure(
        ncols=4,
        nrows=len(shown),
        width=DOUBLE_COLUMN_IN,
        height=ROW_IN * len(shown) + 0.2,
        squeeze=False,
        gridspec_kw={"width_ratios": [1, 1, 1, 1.7]},
    )
    for i, (row, camera) in enumerate(zip(axes, shown, strict=True)):
        _camera_row(row, camera, cameras[camera], examples[camera], titles=i == 0)
    return fig, axes


def _camera_row(axes, camera: str, verdict: dict, example: dict, titles: bool) -> None:
    dist, best = verdict["distance"], verdict["best"]
    key = (*EVIDENCE, "cameras", camera, "distance")
    identity = show_number(axes[0], (*key, "identity"), dist["identity"])
    closest = show_number(axes[0], (*key, best), dist[best])
    undone = apply(INVERSE[best], example["dataset"])
    frames = (
        (example["dataset"], "dataset", f"as rendered: {identity:.1f}"),
        (example["simulator"], "simulator at reset", verdict["sim_camera"]),
        (undone, "dataset, best fit undone", f"{SHORT[best]}: {closest:.1f}"),
    )
    for ax, (frame, title, label) in zip(axes[:3], frames, strict=True):
        ax.imshow(np.asarray(frame), interpolation="nearest")
        if titles:
            ax.set_title(title, fontsize=8)
        ax.set_xlabel(label, fontsize=7)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.grid(False)
    axes[0].set_ylabel(camera, fontsize=8, color=color_for(camera, "camera"))
    _distance_bars(axes[3], camera, verdict, key)


def _distance_bars(ax, camera: str, verdict: dict, key: tuple) -> None:
    dist, best = verdict["distance"], verdict["best"]
    names = list(TRANSFORMS)
    values = [show_number(ax, (*key, name), dist[name]) for name in names]
    colour = color_for(camera, "camera")
    bars = ax.barh(range(len(names)), values, color=colour, alpha=0.45, height=0.7)
    for name in {"identity", best}:  # the two bars the decision compares
        bars[names.index(name)].set_alpha(1.0)
    ax.set_yticks(range(len(names)), [SHORT[n] for n in names], fontsize=6.5)
    ax.invert_yaxis()
    ax.set_xlabel("distance to simulator (grey levels)", fontsize=7)
    top = max(values) or 1.0
    ax.set_xlim(0, top * 1.25)
    for i, value in enumerate(values):
        ax.text(value + top * 0.02, i, f"{value:.1f}", va="center", fontsize=6)
    ax.set_title(f"{camera}: {verdict['status']}", fontsize=8)


def caption_camera_orientation(result) -> str:
    cameras = result.evidence.get("cameras", {})
    if not cameras:
        return f"Camera orientation was not compared: {result.detail}"
    parts = []
    for camera, v in cameras.items():
        d, best = v["distance"], v["best"]
        if best == "identity":
            other = v["runner_up"]
            parts.append(
                f"{camera} fits as rendered ({d['identity']:.1f} vs {d[other]:.1f} for "
                f"{SHORT[other]})"
            )
        else:
            parts.append(
                f"{camera} fits {SHORT[best]} ({d[best]:.1f} vs {d['identity']:.1f} as rendered)"
            )
    return (
        "Per camera, the dataset's first frame, the simulator's reset frame and the dataset "
        "frame with its best-fitting rotation or flip undone, beside the mean grey-level "
        f"distance (32×32 thumbnails) of each of the eight transforms: {'; '.join(parts)}; "
        f"a transform {MARGIN:g}× closer than as rendered is a mismatch."
    )
