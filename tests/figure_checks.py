"""Checks on rendered figures shared by the figure tests: a legend must not hide data."""

from __future__ import annotations

import numpy as np


def _inside(points: np.ndarray, box) -> np.ndarray:
    return (
        (points[:, 0] > box.x0)
        & (points[:, 0] < box.x1)
        & (points[:, 1] > box.y0)
        & (points[:, 1] < box.y1)
    )


def _dense(points: np.ndarray, per_segment: int = 40) -> np.ndarray:
    """Points along every segment of a polyline (display space), so a line crossing a
    legend between two of its vertices counts (an axhline has just its two ends)."""
    if len(points) < 2:
        return points
    t = np.linspace(0.0, 1.0, per_segment)[:, None]
    starts, ends = points[:-1], points[1:]
    return (starts[:, None, :] * (1 - t) + ends[:, None, :] * t).reshape(-1, 2)


def legend_overlaps(fig) -> list[str]:
    """Every line (vertices and the segments between them, in display space) and bar that
    lies inside a legend's box, named by its label and its axes' title."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    legends = list(fig.legends) + [ax.get_legend() for ax in fig.axes if ax.get_legend()]
    found = []
    for legend in legends:
        box = legend.get_window_extent(renderer)
        for ax in fig.axes:
            for line in ax.get_lines():
                xy = np.asarray(line.get_xydata(), dtype=float)
                xy = xy[np.isfinite(xy).all(axis=1)]
                if xy.size:
                    points = line.get_transform().transform(xy)
                    drawn = _dense(points) if line.get_linestyle() not in ("None", "") else points
                    if _inside(drawn, box).any():
                        found.append(f"line {line.get_label()!r} of {ax.get_title()!r}")
            for patch in ax.patches:
                if patch.get_window_extent(renderer).overlaps(box):
                    found.append(f"bar of {ax.get_title()!r}")
    return found
