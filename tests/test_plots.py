"""Tests for nblib.plots: style, colours and atomic PDF/PNG saving."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless test process; plots.py itself never picks a backend

import matplotlib.pyplot as plt
import pytest

from nblib import plots

REPO = Path(__file__).resolve().parents[1]


def _png_size(path: Path) -> tuple[int, int]:
    """(width, height) in pixels from the PNG IHDR chunk."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def test_use_style_sets_truetype_fonts_and_png_dpi() -> None:
    plots.use_style()
    rc = matplotlib.rcParams
    assert rc["pdf.fonttype"] == 42
    assert rc["ps.fonttype"] == 42
    assert rc["savefig.dpi"] == plots.PNG_DPI == 200
    assert not rc["axes.spines.top"] and not rc["axes.spines.right"]
    assert 7 <= rc["font.size"] <= 9


def test_new_figure_sizes_and_axes_shape() -> None:
    fig, ax = plots.new_figure()
    try:
        assert tuple(fig.get_size_inches()) == pytest.approx((3.5, 3.5 * 0.75))
        assert hasattr(ax, "plot")  # a single Axes, not an array
    finally:
        plt.close(fig)
    fig, axes = plots.new_figure(ncols=3, nrows=2, height=4.0)
    try:
        assert axes.shape == (2, 3)
        assert fig.get_size_inches()[0] == pytest.approx(plots.DOUBLE_COLUMN_IN)
        assert fig.get_size_inches()[1] == pytest.approx(4.0)
    finally:
        plt.close(fig)


def test_save_figure_writes_truetype_pdf_and_png(tmp_path: Path) -> None:
    fig, ax = plots.new_figure()
    ax.plot([0, 1, 2], [0, 1, 4], label="push", color=plots.color_for("push"))
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.legend()
    stem = tmp_path / "nested" / "dir" / "loss_v1.2"
    try:
        paths = plots.save_figure(fig, stem)
    finally:
        plt.close(fig)

    assert paths == [stem.parent / "loss_v1.2.pdf", stem.parent / "loss_v1.2.png"]
    pdf = paths[0].read_bytes()
    assert pdf.startswith(b"%PDF")
    assert b"/FontFile2" in pdf  # embedded TrueType
    assert b"/Type3" not in pdf
    width, height = _png_size(paths[1])
    assert (width, height) == (round(3.5 * 200), round(3.5 * 0.75 * 200))
    # Atomic write: nothing but the two figures is left in the folder.
    assert sorted(p.name for p in stem.parent.iterdir()) == ["loss_v1.2.pdf", "loss_v1.2.png"]


def test_save_figure_pdf_is_reproducible(tmp_path: Path) -> None:
    fig, ax = plots.new_figure()
    ax.plot([1, 2], [3, 4])
    try:
        (a,) = plots.save_figure(fig, tmp_path / "a", formats=("pdf",))
        (b,) = plots.save_figure(fig, tmp_path / "b", formats=("pdf",))
    finally:
        plt.close(fig)
    assert a.read_bytes() == b.read_bytes()


def test_palette_is_okabe_ito() -> None:
    assert len(plots.PALETTE) == 8
    assert len(set(plots.PALETTE)) == 8
    assert {c.upper() for c in plots.PALETTE} == {
        "#000000",
        "#E69F00",
        "#56B4E9",
        "#009E73",
        "#F0E442",
        "#0072B2",
        "#D55E00",
        "#CC79A7",
    }


def test_color_for_is_stable_and_known_names_are_fixed() -> None:
    tasks = [
        "reach",
        "push",
        "pick-place",
        "drawer-open",
        "button-press-topdown",
        "drawer-close",
        "window-open",
        "door-open",
    ]
    task_colours = [plots.color_for(t) for t in tasks]
    assert len(set(task_colours)) == 8  # the eight tasks never share a colour
    assert task_colours == [plots.color_for(t) for t in tasks]
    assert plots.color_for("push-v3") == plots.color_for("push") == plots.color_for("Push")
    assert plots.color_for("corner") != plots.color_for("behindGripper")
    assert plots.color_for("flow") != plots.color_for("regression")
    assert plots.color_for("train") != plots.color_for("val")
    for name in ["my-method", "octo", "pi0", ""]:
        assert plots.color_for(name) in plots.PALETTE
        assert plots.color_for(name) == plots.color_for(name)


def test_color_for_is_stable_across_processes() -> None:
    # The builtin hash() would differ between processes with different hash seeds.
    names = ["my-method", "octo", "pi0", "openvla"]
    code = (
        "import sys; from nblib.plots import color_for; "
        "print(','.join(color_for(n) for n in sys.argv[1:]))"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345", "PYTHONPATH": str(REPO), "MPLBACKEND": "Agg"}
    out = subprocess.run(
        [sys.executable, "-c", code, *names],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        timeout=60,
    ).stdout.strip()
    assert out.split(",") == [plots.color_for(n) for n in names]


def test_colors_for_distinct_up_to_palette_size() -> None:
    # Many unknown names: some collide under color_for, never within colors_for.
    names = ["octo", "pi0", "openvla", "rt-1", "rt-2", "diffusion", "act", "bc-z"]
    assert len({plots.color_for(n) for n in names}) < 8  # the hash does collide here
    mapping = plots.colors_for(names)
    assert list(mapping) == names
    assert len(set(mapping.values())) == 8
    assert mapping == plots.colors_for(names)  # deterministic

    # Fixed names keep their colour even when a hashed name comes first.
    mixed = plots.colors_for(["method-3", "push", "reach", "corner"])
    assert mixed["push"] == plots.color_for("push")
    assert mixed["reach"] == plots.color_for("reach")
    assert len(set(mixed.values())) == 4

    # More names than colours: still a colour for each, repeats allowed.
    many = plots.colors_for([f"m{i}" for i in range(12)])
    assert len(many) == 12 and set(many.values()) <= set(plots.PALETTE)
