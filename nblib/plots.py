"""The one figure style shared by every notebook in the suite.

Every plot goes through :func:`new_figure` (style, size) and every file through
:func:`save_figure` (PDF + PNG, atomic). Colours come from :func:`color_for` /
:func:`colors_for`, so the same task, camera or method has the same colour in every
figure, notebook and process.

Nothing here calls ``plt.show()`` or selects a backend: under papermill/JupyterLab the
inline backend renders figures into the notebook, and in plain scripts matplotlib falls
back to Agg when there is no display. Closing figures is the caller's decision.
"""

from __future__ import annotations

import os
import re
import zlib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import matplotlib as mpl
import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from nblib.paths import atomic_write

__all__ = [
    "DOUBLE_COLUMN_IN",
    "MAX_HEIGHT_IN",
    "MIN_FONT_PT",
    "PALETTE",
    "PALETTES",
    "PNG_DPI",
    "SINGLE_COLUMN_IN",
    "STYLE",
    "color_for",
    "colors_for",
    "layout_problems",
    "new_figure",
    "save_figure",
    "show_number",
    "shown_numbers",
    "use_style",
]

#: Width of one column of a two-column paper (inches); the default figure width.
SINGLE_COLUMN_IN = 3.5
#: Width of a figure spanning both columns (inches).
DOUBLE_COLUMN_IN = 7.16
#: Raster resolution of saved PNGs (dots per inch).
PNG_DPI = 200
#: Tallest figure that still fits a page with its caption (inches).
MAX_HEIGHT_IN = 9.0
#: Smallest text a printed figure may carry at its paper size (points); mathtext
#: superscripts of log ticks are drawn smaller from a base at least this size.
MIN_FONT_PT = 6.0

#: Okabe & Ito (2008) colour-blind-safe palette, as hex strings. The order is the
#: assignment order for unknown names; black is last because it competes with text
#: and axis lines and so is the least useful series colour.
PALETTE: tuple[str, ...] = (
    "#0072B2",  # blue
    "#E69F00",  # orange
    "#009E73",  # bluish green
    "#D55E00",  # vermillion
    "#56B4E9",  # sky blue
    "#CC79A7",  # reddish purple
    "#F0E442",  # yellow
    "#000000",  # black
)

_BLUE, _ORANGE, _GREEN, _VERMILLION, _SKY, _PURPLE, _YELLOW, _BLACK = PALETTE

#: One palette per kind of thing (Okabe & Ito for tasks; Paul Tol's "bright", "muted"
#: and "high-contrast" schemes for the others, all colour-blind safe), so a colour names
#: one kind of thing and e.g. a camera never looks related to the task of the same hue
#: order. Within a kind a name keeps its colour in every figure and notebook (rliable's
#: colours-dict idea): see :func:`color_for`.
PALETTES: dict[str, tuple[str, ...]] = {
    "task": PALETTE,
    # runs, methods, policies, schedules, action heads
    "run": ("#4477AA", "#EE6677", "#228833", "#CCBB44", "#66CCEE", "#AA3377", "#BBBBBB", "#000000"),
    # action (and state) dimensions
    "dim": (
        "#332288",
        "#88CCEE",
        "#44AA99",
        "#117733",
        "#999933",
        "#DDCC77",
        "#CC6677",
        "#882255",
        "#AA4499",
    ),
    "camera": ("#004488", "#DDAA33", "#BB5566", "#000000"),
    "split": ("#444444", "#EE7733"),
}

# Fixed colours for names the suite knows, per kind, so that e.g. "push" is vermillion in
# every figure regardless of which other tasks share the plot. Keys are normalised (see
# _normalise).
_FIXED: dict[str, dict[str, str]] = {
    "task": {  # the eight Meta-World tasks of the suite's manifests
        "reach": _BLUE,
        "push": _VERMILLION,
        "pick-place": _GREEN,
        "drawer-open": _ORANGE,
        "button-press-topdown": _PURPLE,
        "drawer-close": _SKY,
        "window-open": _YELLOW,
        "door-open": _BLACK,
    },
    "camera": {  # Meta-World's and LIBERO's scene and wrist cameras
        "corner": "#004488",
        "agentview": "#004488",
        "behindgripper": "#DDAA33",
        "eye_in_hand": "#DDAA33",
        "robot0_eye_in_hand": "#DDAA33",
        "wrist": "#DDAA33",
    },
    # Meta-World's (dx, dy, dz, gripper) and LIBERO's end-effector deltas: fixed so that
    # the axes of one action are never two near-identical hues of the palette
    "dim": {
        **dict.fromkeys(["x", "dx"], "#332288"),
        **dict.fromkeys(["y", "dy"], "#117733"),
        **dict.fromkeys(["z", "dz"], "#DDCC77"),
        **dict.fromkeys(["roll", "droll"], "#88CCEE"),
        **dict.fromkeys(["pitch", "dpitch"], "#999933"),
        **dict.fromkeys(["yaw", "dyaw"], "#AA4499"),
        "gripper": "#CC6677",
    },
    "run": {"flow": "#228833", "regression": "#EE6677"},  # action heads
    "split": {"train": "#444444", "val": "#EE7733", "validation": "#EE7733"},
}

#: rcParams applied by :func:`use_style`. Sizes are in points unless noted.
STYLE: dict[str, Any] = {
    # Embed TrueType (Type 42) fonts: Type 3 fonts are rejected by many venues and are
    # not searchable/editable in the PDF.
    "pdf.fonttype": 42,
    "ps.fonttype": 42,
    # Keep text as text in SVGs too, for the same reason.
    "svg.fonttype": "none",
    # Figure geometry: single-column width with a 4:3-ish aspect by default.
    "figure.figsize": (SINGLE_COLUMN_IN, SINGLE_COLUMN_IN * 0.75),
    # constrained_layout keeps the requested figure size exactly (bbox="tight" would
    # change it) while still preventing clipped labels.
    "figure.constrained_layout.use": True,
    "savefig.dpi": PNG_DPI,
    "savefig.bbox": "standard",
    "savefig.pad_inches": 0.02,
    "savefig.facecolor": "white",
    "savefig.transparent": False,
    # 8-9 pt text matches typical paper body text at 100 % scale.
    "font.size": 8,
    "axes.titlesize": 9,
    "axes.labelsize": 8,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "legend.fontsize": 7,
    "legend.title_fontsize": 8,
    "figure.titlesize": 9,
    "legend.frameon": False,
    # Thin lines: at column width the matplotlib defaults look heavy.
    "axes.linewidth": 0.6,
    "lines.linewidth": 1.2,
    "lines.markersize": 3.5,
    "patch.linewidth": 0.6,
    "xtick.major.width": 0.6,
    "ytick.major.width": 0.6,
    "xtick.minor.width": 0.4,
    "ytick.minor.width": 0.4,
    "xtick.major.size": 3.0,
    "ytick.major.size": 3.0,
    # Only left/bottom spines: the box adds ink without information.
    "axes.spines.top": False,
    "axes.spines.right": False,
    # A light grid behind the data helps reading values without dominating.
    "axes.grid": True,
    "axes.axisbelow": True,
    "grid.color": "#d9d9d9",
    "grid.linewidth": 0.4,
    "grid.alpha": 1.0,
    "axes.prop_cycle": mpl.cycler(color=list(PALETTE)),
    "image.cmap": "viridis",
}


def use_style() -> None:
    """Apply the suite's matplotlib style (rcParams) to the current process.

    Idempotent and cheap; :func:`new_figure` calls it every time because the Jupyter
    inline backend may reset some rcParams when it is first activated.
    """
    mpl.rcParams.update(STYLE)


_VERSION_SUFFIX = re.compile(r"-v\d+$")


def _normalise(name: str) -> str:
    """Lookup key for ``name``: case-insensitive, Meta-World ``-vN`` suffix dropped.

    So "Push", "push-v2" and "push-v3" all share the colour of "push".
    """
    key = str(name).strip().lower()
    return _VERSION_SUFFIX.sub("", key)


def _hashed_index(key: str) -> int:
    # zlib.crc32 is stable across processes and Python versions, unlike the builtin
    # hash(), which is salted per process (PYTHONHASHSEED).
    return zlib.crc32(key.encode("utf-8"))


def _kind_of(key: str, kind: str | None) -> str:
    if kind is None:  # no kind given: the kind that fixes this name, else tasks
        return next((k for k, names in _FIXED.items() if key in names), "task")
    if kind not in PALETTES:
        raise ValueError(f"colour kind must be one of {sorted(PALETTES)}, got {kind!r}")
    return kind


def color_for(name: str, kind: str | None = None) -> str:
    """Return the colour (hex string ``"#RRGGBB"``) used for ``name`` everywhere.

    ``kind`` picks the palette (:data:`PALETTES`: ``task``, ``run``, ``dim``, ``camera``,
    ``split``); without it a name the suite knows gets its fixed colour and any other name
    a task colour. Known names have fixed colours; any other name gets a deterministic
    palette entry chosen from a stable hash of the name. Two different unknown names may
    collide; use :func:`colors_for` when names share a plot.
    """
    key = _normalise(name)
    kind = _kind_of(key, kind)
    fixed = _FIXED.get(kind, {})
    if key in fixed:
        return fixed[key]
    palette = PALETTES[kind]
    return palette[_hashed_index(key) % len(palette)]


#: Kelly's (1965) colours of maximum contrast, white and black left out: unlike tab20
#: they come in no light/dark pairs, which would suggest that two codes are related.
KELLY_COLORS: tuple[str, ...] = (
    "#F3C300", "#875692", "#F38400", "#A1CAF1", "#BE0032", "#C2B280", "#848482",
    "#008856", "#E68FAC", "#0067A5", "#F99379", "#604E97", "#F6A600", "#B3446C",
    "#DCD300", "#882D17", "#8DB600", "#654522", "#E25822", "#2B3D26",
)  # fmt: skip


def category_colors(n: int) -> list[str]:
    """``n`` distinct colours for integer categories such as codebook entries, the same
    list for the same ``n`` so category i has one colour in every figure: the palette for
    up to 8, Kelly's contrast colours for up to 20, evenly spaced turbo colours beyond."""
    import matplotlib as mpl
    from matplotlib.colors import to_hex

    if n <= len(PALETTE):
        return list(PALETTE[:n])
    if n <= len(KELLY_COLORS):
        return list(KELLY_COLORS[:n])
    return [to_hex(mpl.colormaps["turbo"](0.05 + 0.9 * i / (n - 1))) for i in range(n)]


def colors_for(names: Iterable[str], kind: str | None = None) -> dict[str, str]:
    """Colours for several names that appear together (e.g. in one legend).

    Each name gets :func:`color_for` (its stable colour in ``kind``'s palette) unless an
    earlier name in this call already took that colour; then it gets the next free
    colour of the palette. Names with a fixed colour are served before hashed ones so
    they keep their colour. While there are at most as many distinct names as the
    palette has colours the result has no repeats; beyond that colours repeat.

    Returns:
        dict mapping each name (in input order) to a hex colour string.
    """
    ordered = list(dict.fromkeys(names))  # de-duplicate, keep order
    kinds = {name: _kind_of(_normalise(name), kind) for name in ordered}

    def fixed(name: str) -> bool:
        return _normalise(name) in _FIXED.get(kinds[name], {})

    # Fixed names first, so a hashed name can never steal e.g. "push"'s vermillion.
    priority = sorted(range(len(ordered)), key=lambda i: (not fixed(ordered[i]), i))
    used: set[str] = set()
    chosen: dict[str, str] = {}
    for i in priority:
        name = ordered[i]
        palette = PALETTES[kinds[name]]
        colour = color_for(name, kinds[name])
        if colour in used and colour in palette and not set(palette) <= used:
            # Walk the palette from the preferred colour so the fallback is still a
            # deterministic function of the name and the names before it.
            start = palette.index(colour)
            for step in range(1, len(palette)):
                candidate = palette[(start + step) % len(palette)]
                if candidate not in used:
                    colour = candidate
                    break
        used.add(colour)
        chosen[name] = colour
    return {name: chosen[name] for name in ordered}


def new_figure(
    ncols: int = 1,
    nrows: int = 1,
    width: float | None = None,
    height: float | None = None,
    **kw: Any,
) -> tuple[Figure, Axes | Any]:
    """Create a styled figure with a grid of axes.

    Args:
        ncols, nrows: subplot grid shape.
        width: figure width in inches; default one paper column (3.5 in), or two
            columns (7.16 in) when ``ncols > 2``.
        height: figure height in inches; default keeps each panel roughly 4:3 (at
            least 1.6 in per row, at most 9 in in total).
        **kw: passed to ``plt.subplots`` (e.g. ``sharex=True``, ``squeeze=False``).

    Returns:
        ``(fig, axes)`` as from ``plt.subplots``: a single Axes when ``ncols == nrows
        == 1`` (and squeeze is not disabled), else a numpy array of Axes of shape
        ``(nrows, ncols)`` (squeezed to 1-D for a single row/column).
    """
    use_style()
    if width is None:
        width = DOUBLE_COLUMN_IN if ncols > 2 else SINGLE_COLUMN_IN
    if height is None:
        # Panels stay roughly 4:3, but no shorter than 1.6 in so tick labels fit;
        # capped at roughly a page height.
        panel_height = max(width / ncols * 0.75, 1.6)
        height = min(panel_height * nrows, 9.0)
    # pyplot (rather than a bare Figure) so the inline backend shows the figure in the
    # executed notebook; the caller closes it when done.
    fig, axes = plt.subplots(nrows=nrows, ncols=ncols, figsize=(width, height), **kw)
    return fig, axes


def save_figure(
    fig: Figure,
    stem: str | os.PathLike[str],
    formats: Sequence[str] = ("pdf", "png"),
) -> list[Path]:
    """Save ``fig`` as ``<stem>.<fmt>`` for each format; return the written paths.

    ``stem`` is a path without extension (anything after the last dot is kept as part
    of the name, so ``"loss_v1.2"`` gives ``loss_v1.2.pdf``). Parent folders are
    created. Each file is written to a temporary file in the same folder and moved
    into place with ``os.replace`` so readers never see a half-written figure. PNGs are
    rendered at :data:`PNG_DPI` (200 dpi). The figure is not closed.
    """
    use_style()  # savefig reads rcParams (fonttype, dpi) at save time
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for fmt in formats:
        fmt = fmt.lower().lstrip(".")
        target = stem.parent / f"{stem.name}.{fmt}"
        kwargs: dict[str, Any] = {"format": fmt}
        if fmt == "png":
            kwargs["dpi"] = PNG_DPI
        if fmt == "pdf":
            # No creation date: re-running a notebook gives byte-identical PDFs, so
            # figure diffs in git only show real changes.
            kwargs["metadata"] = {"CreationDate": None}
        with atomic_write(target, "wb") as handle:
            fig.savefig(handle, **kwargs)
        written.append(target)
    return written


def show_number(target: Figure | Axes, key: str | Sequence[str], value: float) -> float:
    """Record that the figure of ``target`` shows ``value`` as ``metrics.json``'s
    ``metrics[key]`` (``key`` a name or a path of names into nested metrics, e.g.
    ``("per_dimension", "x", "mae_over_std")``) and return ``value`` unchanged.

    Plot functions call this for every number they draw that the run also reports (a bar
    height, an annotated value, a threshold line); :func:`nblib.run.report.finish` then
    refuses a run whose figure shows a number that differs from its ``metrics.json``, so a
    figure can never disagree with the metrics printed beside it.
    """
    fig = target if isinstance(target, Figure) else target.figure
    path = (key,) if isinstance(key, str) else tuple(str(k) for k in key)
    shown = fig.__dict__.setdefault("_nblib_shown", {})
    shown[path] = float(value)
    return value


def shown_numbers(fig: Figure) -> dict[tuple[str, ...], float]:
    """The numbers recorded by :func:`show_number` on ``fig``: metrics path → value."""
    return dict(fig.__dict__.get("_nblib_shown", {}))


def layout_problems(fig: Figure, min_font_pt: float = MIN_FONT_PT) -> list[str]:
    """What keeps ``fig`` from going into a paper as it is, one sentence each (empty when
    nothing does): a width other than one column (3.5 in) or the full page width
    (7.16 in), a height over :data:`MAX_HEIGHT_IN`, drawn text smaller than
    ``min_font_pt`` points, or drawn text (labels, ticks, legends) reaching outside the
    canvas. Draws the figure once; only text actually drawn is checked (tick labels
    outside the view limits are not)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    problems = []
    width, height = fig.get_size_inches()
    if min(abs(width - SINGLE_COLUMN_IN), abs(width - DOUBLE_COLUMN_IN)) > 0.01:
        problems.append(
            f"width {width:.2f} in is neither one column ({SINGLE_COLUMN_IN} in) nor the "
            f"page width ({DOUBLE_COLUMN_IN} in)"
        )
    if height > MAX_HEIGHT_IN + 0.01:
        problems.append(f"height {height:.2f} in is over {MAX_HEIGHT_IN} in")

    old_canvas = fig.canvas
    canvas = old_canvas if hasattr(old_canvas, "get_renderer") else FigureCanvasAgg(fig)
    drawn: list[tuple[Any, str, float]] = []
    try:
        renderer = canvas.get_renderer()
        draw_text = renderer.draw_text

        def recording(gc, x, y, s, prop, angle, ismath=False, mtext=None):
            drawn.append((mtext, s, prop.get_size_in_points()))
            return draw_text(gc, x, y, s, prop, angle, ismath=ismath, mtext=mtext)

        renderer.draw_text = recording  # every Text artist draws through this
        try:
            fig.draw(renderer)
        finally:
            del renderer.draw_text
        canvas_box = fig.bbox
        small, outside = {}, {}
        for text, string, size in drawn:
            label = string.strip().replace("\n", " ")[:40]
            if not label:
                continue
            if size < min_font_pt - 1e-6:
                small.setdefault(label, size)
            if text is not None:
                box = text.get_window_extent(renderer)
                if (
                    box.x0 < canvas_box.x0 - 1
                    or box.y0 < canvas_box.y0 - 1
                    or box.x1 > canvas_box.x1 + 1
                    or box.y1 > canvas_box.y1 + 1
                ):
                    outside.setdefault(label, box)
    finally:
        if canvas is not old_canvas:
            fig.set_canvas(old_canvas)
    for label, size in small.items():
        problems.append(f"text {label!r} is {size:.1f} pt, under {min_font_pt:g} pt")
    for label in outside:
        problems.append(f"text {label!r} reaches outside the canvas")
    return problems
