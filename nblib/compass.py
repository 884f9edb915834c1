"""Token compass: do discrete latent-action tokens mean the same motion everywhere?

Seed 004's question, as analysis steps on a table of tokenised frame pairs (one row per
pair: ``dataset``, ``demo``, ``t``, ``k``, ``task``, ``instruction`` and the tokens, as
written by :func:`nblib.models.latent.tokenize_dataset` or loaded by
:func:`nblib.models.latent.load_token_file`). Motion comes from pixels (mean optical flow of the
pair) or, as the reference, from the end effector's motion projected into the image with
the stored camera parameters. Cameras and tasks of the embedded data play the datasets.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.lines import Line2D
from matplotlib.patches import Circle

from nblib.data.dataset import DemoStore
from nblib.errors import DataError, ParameterError
from nblib.flow import angular_error_deg, commanded_motion, flows_for_pairs, projected_motion
from nblib.metrics.tokens import summarize_tokens
from nblib.plots import PALETTE, category_colors, colors_for, new_figure


def token_matrix(df: pd.DataFrame) -> np.ndarray:
    """(N, L) int token sequences from a ``tokens`` list column or ``token_0..`` columns."""
    cols = sorted(
        (c for c in df.columns if c.startswith("token_") and c[6:].isdigit()),
        key=lambda c: int(c[6:]),
    )
    if cols:
        return df[cols].to_numpy(dtype=np.int64)
    if "tokens" in df.columns:
        return np.stack([np.asarray(t, dtype=np.int64) for t in df["tokens"]])
    raise DataError(
        f"token table has no 'tokens' or 'token_<i>' columns (columns: {list(df.columns)})"
    )


def token_ids(df: pd.DataFrame, position: int | str, codebook_size: int) -> tuple[np.ndarray, int]:
    """One id per row: the token at ``position``, or ``"combined"`` (the whole sequence as
    one id in base ``codebook_size``). Returns ids and the number of possible ids."""
    tokens = token_matrix(df)
    if position == "combined":
        weights = codebook_size ** np.arange(tokens.shape[1] - 1, -1, -1)
        return tokens @ weights, codebook_size ** tokens.shape[1]
    if tokens.size and tokens.max() >= codebook_size:
        raise ParameterError(
            f"codebook_size={codebook_size} but the tokens go up to {tokens.max()}; "
            f"expected codebook_size >= {tokens.max() + 1}"
        )
    if not isinstance(position, int) or not 0 <= position < tokens.shape[1]:
        raise ParameterError(
            f"token_position must be 0..{tokens.shape[1] - 1} or 'combined', got {position!r}"
        )
    return tokens[:, position], codebook_size


def _cameras_of(df: pd.DataFrame) -> np.ndarray:
    """The camera of each row: its ``camera`` column where set, else its ``dataset``."""
    dataset = df["dataset"].to_numpy(dtype=object)
    if "camera" not in df.columns:
        return dataset
    camera = df["camera"].to_numpy(dtype=object)
    return np.where(pd.isna(camera), dataset, camera)


def has_frames(df: pd.DataFrame) -> np.ndarray:
    """Bool mask of rows that reference a frame pair (demo, t and k all set)."""
    if not all(c in df.columns for c in ("demo", "t", "k")):
        return np.zeros(len(df), bool)
    return df[["demo", "t", "k"]].notna().all(axis=1).to_numpy()


def _stores(df: pd.DataFrame, store: DemoStore | None, rows: np.ndarray) -> list:
    """(store, row mask) per HDF5 file the rows reference; rows without a ``file`` use
    ``store``. Other files are opened with ``store``'s key mapping (metaworld without one)."""
    files = df["file"].to_numpy(dtype=object) if "file" in df.columns else np.full(len(df), None)
    files = np.where(pd.isna(files), "", files).astype(str)
    own = store.path.resolve() if store is not None else None
    out = []
    for name in sorted(set(files[rows])):
        mask = rows & (files == name)
        if store is not None and (not name or Path(name).resolve() == own):
            out.append((store, mask))
        elif not name:
            raise ParameterError(
                "token rows reference frames (demo, t, k) without a 'file' and no dataset was given"
            )
        elif not Path(name).exists():
            raise DataError(f"token table references frames in {name}, which does not exist")
        else:
            mapping = store.mapping if store is not None else "metaworld"
            out.append((DemoStore(name, mapping=mapping), mask))
    merged: dict[int, tuple] = {}  # the same store may come from "" and from its own path
    for s, mask in out:
        prev = merged.get(id(s))
        merged[id(s)] = (s, mask if prev is None else prev[1] | mask)
    for s, mask in merged.values():
        _check_frame_refs(df, s, mask)
    return list(merged.values())


def _check_frame_refs(df: pd.DataFrame, store: DemoStore, mask: np.ndarray) -> None:
    """Every referenced demo exists in ``store`` and 0 <= t <= t + k < its length."""
    demo = df["demo"].to_numpy(dtype=object)[mask]
    unknown = sorted({str(d) for d in demo} - set(store.demos))
    if unknown:
        raise DataError(
            f"{store.path}: token rows reference demos {unknown[:5]} that are not in the file "
            f"(it has {len(store.demos)} demos, e.g. {store.demos[:3]})"
        )
    t = df["t"].to_numpy()[mask].astype(np.int64)
    k = df["k"].to_numpy()[mask].astype(np.int64)
    length = np.array([store.lengths[str(d)] for d in demo], dtype=np.int64)
    bad = (t < 0) | (k < 0) | (t + k >= length)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"{store.path}: token row with demo {demo[i]!r}, t={t[i]}, k={k[i]} lies outside "
            f"the demo's {length[i]} steps ({int(bad.sum())} such rows)"
        )


# Metres the hand's target moves per unit action, per key mapping (for the commanded
# reference): Meta-World's SawyerXYZEnv.action_scale = 1/100. Layouts whose actions are not
# position deltas with a known scale (LIBERO's OSC, joint actions) have no entry.
ACTION_SCALE = {"metaworld": 0.01}


def add_reference(
    df: pd.DataFrame, store: DemoStore | None, commanded: bool = False
) -> pd.DataFrame:
    """Add ``ref_dx, ref_dy``: the end effector's motion from t to t+k projected into the
    row's camera with the stored intrinsics and per-step extrinsics (pixels, +x right,
    +y down). NaN where a row has no frame reference, the layout stores no camera
    parameters or its proprio has no end-effector position.

    ``commanded=True`` also adds ``cmd_dx, cmd_dy``: the motion the actions commanded
    (:func:`nblib.flow.commanded_motion`), for layouts in ``ACTION_SCALE`` (NaN otherwise)."""
    out = df.copy()
    ref = np.full((len(out), 2), np.nan)
    cmd = np.full((len(out), 2), np.nan)
    rows = has_frames(out)
    cams = _cameras_of(out)
    for s, mask in _stores(out, store, rows):
        eef = eef_positions(s)
        if eef is None:
            continue
        scale = ACTION_SCALE.get(s.mapping.name)
        params = camera_parameters(s)
        idx = np.flatnonzero(mask)
        part = pd.DataFrame(
            {
                "demo": out["demo"].to_numpy()[idx],
                "camera": cams[idx],
                "t": out["t"].to_numpy()[idx].astype(np.int64),
                "k": out["k"].to_numpy()[idx].astype(np.int64),
                "row": idx,
            }
        )
        for (demo, camera, k), g in part.groupby(["demo", "camera", "k"]):
            if (camera, demo) not in params:
                continue
            K, E = params[camera, demo]
            at, t = g["row"].to_numpy(), g["t"].to_numpy()
            ref[at] = projected_motion(eef[demo], K, E, t, int(k))
            if commanded and scale is not None:
                cmd[at] = commanded_motion(eef[demo], s.actions[demo], K, E, t, int(k), scale)
    out["ref_dx"], out["ref_dy"] = ref[:, 0], ref[:, 1]
    if commanded:
        out["cmd_dx"], out["cmd_dy"] = cmd[:, 0], cmd[:, 1]
    return out


def add_flow(
    df: pd.DataFrame,
    store: DemoStore | None,
    weighting: str = "magnitude",
    progress: bool = True,
    rows: np.ndarray | None = None,
) -> pd.DataFrame:
    """Fill ``flow_dx, flow_dy`` (mean optical flow from frame t to t+k, pixels) of rows that
    reference a frame pair. Flows already present (not NaN) are kept, e.g. a user's own;
    ``rows`` (bool mask) limits the work to those rows."""
    out = df.copy()
    for col in ("flow_dx", "flow_dy"):
        if col not in out.columns:
            out[col] = np.nan
    todo = has_frames(out) & out[["flow_dx", "flow_dy"]].isna().any(axis=1).to_numpy()
    if rows is not None:
        todo &= np.asarray(rows, bool)
    cams = _cameras_of(out)
    for s, mask in _stores(out, store, todo):
        idx = np.flatnonzero(mask)
        unknown = sorted({str(c) for c in cams[idx]} - set(s.mapping.images))
        if unknown:
            raise DataError(
                f"{s.path}: token rows name camera(s) {unknown}, not in mapping "
                f"'{s.mapping.name}' (cameras: {s.mapping.cameras}); set a 'camera' column"
            )
        demo, t, k = out["demo"].to_numpy(), out["t"].to_numpy(), out["k"].to_numpy()
        pairs = (
            s.frames(demo[i], cams[i], int(t[i]), int(t[i]) + int(k[i]) + 1)[[0, -1]] for i in idx
        )
        flows = flows_for_pairs(pairs, weighting=weighting, progress=progress, total=len(idx))
        out.iloc[idx, out.columns.get_loc("flow_dx")] = flows[:, 0]
        out.iloc[idx, out.columns.get_loc("flow_dy")] = flows[:, 1]
    return out


def add_motion(
    df: pd.DataFrame, store: DemoStore | None, weighting: str = "magnitude", progress: bool = True
) -> pd.DataFrame:
    """Both :func:`add_flow` and :func:`add_reference`."""
    return add_reference(add_flow(df, store, weighting, progress), store)


def eef_positions(store: DemoStore) -> dict | None:
    """demo -> (T, 3) end-effector positions from the proprio key named ``*eef_pos`` or
    ``*ee_pos`` (metaworld, robomimic, libero, cosmos layouts); None without one."""
    start = 0
    for key, width in store.mapping.proprio.items():
        if width == 3 and key.rsplit("/", 1)[-1].endswith(("eef_pos", "ee_pos")):
            return {d: p[:, start : start + 3] for d, p in store.proprio.items()}
        start += width
    return None


def camera_parameters(store: DemoStore) -> dict:
    """(camera, demo) -> (intrinsics (3, 3), extrinsics (T, 4, 4) or (4, 4)) for every demo
    and camera with a ``camera/<name>/`` group (the generator's layout), read in one pass."""
    from nblib.data.hdf5 import open_h5

    out = {}
    with open_h5(store.path) as f:
        group = f[store.mapping.demo_group]
        for demo in store.demos:
            cams = group[demo].get("camera")
            if cams is None:
                continue
            for camera in store.cameras:
                if camera in cams:
                    out[camera, demo] = (
                        cams[camera]["intrinsics"][()],
                        cams[camera]["extrinsics"][()],
                    )
    return out


def flow_reference_agreement(df: pd.DataFrame, min_pixels: float = 0.5) -> dict:
    """Median angle between mean flow and projected end-effector motion, per dataset."""
    out = {}
    flow = df[["flow_dx", "flow_dy"]].to_numpy()
    ref = df[["ref_dx", "ref_dy"]].to_numpy()
    moving = np.hypot(ref[:, 0], ref[:, 1]) >= min_pixels
    err = angular_error_deg(flow, ref)
    for name in sorted(df["dataset"].unique()):
        sel = moving & (df["dataset"].to_numpy() == name) & np.isfinite(err)
        out[name] = {
            "median_deg": float(np.median(err[sel])) if sel.any() else None,
            "pairs": int(sel.sum()),
        }
    return out


# Within-group token shuffles behind the agreement's chance level. Each shuffle's agreement
# is noisy with few datasets: on the embedded data (2 cameras, 8 seeds) the null's mean
# spanned 0.58-0.69 with 20 shuffles and 0.63-0.66 with 50 or 100.
PERMUTATIONS = 50

# Motion sources: columns of the token table, in image convention (+x right, +y down).
MOTION_SOURCES = {
    "flow": ("flow_dx", "flow_dy"),  # mean optical flow of the pair (pixels)
    "reference": ("ref_dx", "ref_dy"),  # end-effector motion projected into the camera
    "actions": ("action_dx", "action_dy"),  # commanded motion, robot base frame
}
MOTION_LABELS = {
    "flow": "mean flow (px)",
    "reference": "projected end-effector motion (px)",
    "actions": "summed actions (robot x, y)",
}


def motion_vectors(df: pd.DataFrame, motion: str = "flow") -> np.ndarray:
    """(N, 2) motion of each row in image convention (+x right, +y down; NaN = unknown).

    ``actions`` are in the robot's base frame, where +y is not down: their y is negated so
    that robot +y is drawn up. A fixed reflection like this changes no metric (each is
    invariant to relabelling directions consistently), only how the compass is drawn."""
    if motion not in MOTION_SOURCES:
        raise ParameterError(f"motion must be one of {sorted(MOTION_SOURCES)}, got {motion!r}")
    cols = list(MOTION_SOURCES[motion])
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise DataError(
            f"motion {motion!r} needs columns {cols}; missing {missing} "
            f"(columns: {list(df.columns)})"
        )
    vec = df[cols].to_numpy(dtype=np.float64)
    if motion == "actions":
        vec = vec * np.array([1.0, -1.0])
    return vec


def analyse(
    df: pd.DataFrame,
    ids: np.ndarray,
    n_codes: int,
    motion: str = "flow",
    group: str = "dataset",
    n_bins: int = 8,
    min_magnitude: float = 0.5,
    instruction_col: str = "instruction",
    n_permutations: int = PERMUTATIONS,
    seed: int = 0,
) -> dict:
    """Every token metric (:func:`nblib.metrics.tokens.summarize_tokens`) for one motion
    source (``flow``, ``reference`` or ``actions``); rows with unknown motion are left out
    and counted as ``rows_without_motion``. ``instruction_col`` holds the instruction
    labels (e.g. clusters from :func:`nblib.metrics.tokens.cluster_instructions`).

    The agreement between groups is taken on what each token adds to its group's mean
    motion (centred) and judged against ``n_permutations`` within-group token shuffles
    (0: uncentred, against isotropic chance, as in seed 004's first sketch), so groups
    that share a drift do not make unrelated tokens look consistent."""
    vec = motion_vectors(df, motion)
    keep = np.isfinite(vec).all(axis=1)
    if not keep.any():
        raise DataError(f"no row of the token table has {motion} motion ({MOTION_SOURCES[motion]})")
    if group not in df.columns or df[group].isna().to_numpy()[keep].any():
        raise DataError(f"group column {group!r} is missing or has empty values in the token table")
    # Token files often carry no instruction: then the instruction NMI is left out (and
    # said so) rather than computed on a subset that would not be comparable.
    instructions = df[instruction_col] if instruction_col in df.columns else None
    has_text = instructions is not None and not instructions.isna().to_numpy()[keep].any()
    out = summarize_tokens(
        ids[keep],
        vec[keep],
        groups=df[group].to_numpy()[keep],
        instructions=instructions.to_numpy()[keep] if has_text else None,
        n_codes=n_codes,
        n_bins=n_bins,
        min_magnitude=min_magnitude,
        seed=seed,
        n_permutations=n_permutations,
        center=n_permutations > 0,
    )
    out["rows_without_motion"] = int((~keep).sum())
    if not has_text:
        out["instruction_nmi_skipped"] = "some rows have no instruction"
    return out


def cameras_with_reference(df: pd.DataFrame, min_pixels: float = 0.5, share: float = 0.1) -> list:
    """Datasets in which the projected end-effector motion is a usable reference: at least
    ``share`` of their rows move ``min_pixels`` or more. A wrist camera is not one (the
    hand does not move in its own image)."""
    if "ref_dx" not in df.columns:
        return []
    moving = np.hypot(df["ref_dx"], df["ref_dy"]) >= min_pixels
    frac = moving.groupby(df["dataset"]).mean()
    return sorted(frac.index[frac >= share])


def analyse_views(
    df: pd.DataFrame,
    ids: np.ndarray,
    n_codes: int,
    motion: str = "flow",
    n_bins: int = 8,
    min_magnitude: float = 0.5,
    instruction_col: str = "instruction",
) -> dict:
    """The analyses the notebook reports, by name: ``across datasets`` (the verdict's),
    ``across tasks`` (task as the group; when every row has a task) and, when some camera
    has one, ``reference motion`` (projected end-effector motion in those cameras, grouped
    by task: how the tokens relate to where the hand really went)."""
    common = {"n_bins": n_bins, "min_magnitude": min_magnitude, "instruction_col": instruction_col}
    out = {"across datasets": analyse(df, ids, n_codes, motion, "dataset", **common)}
    if "task" in df.columns and df["task"].notna().all():  # token files may have no task
        out["across tasks"] = analyse(df, ids, n_codes, motion, "task", **common)
    cams = cameras_with_reference(df, min_magnitude)
    sel = df["dataset"].isin(cams).to_numpy()
    if cams and df.loc[sel, "task"].notna().all():
        out["reference motion"] = analyse(df[sel], ids[sel], n_codes, "reference", "task", **common)
    return out


def umap_embedding(x: np.ndarray, seed: int = 0, n_neighbors: int = 15) -> np.ndarray:
    """2-D UMAP of the rows of ``x`` (n_neighbors capped at n - 1 for small sets such as a
    codebook). The first call in a process compiles numba code (~10-20 s)."""
    import umap

    x = np.asarray(x, dtype=np.float32)
    if len(x) < 3:
        raise ParameterError(f"UMAP needs at least 3 vectors, got {len(x)}")
    reducer = umap.UMAP(n_neighbors=min(n_neighbors, len(x) - 1), random_state=seed)
    with warnings.catch_warnings():
        # a fixed random_state makes UMAP single-threaded, which it announces every call
        warnings.filterwarnings("ignore", message="n_jobs value", category=UserWarning)
        return reducer.fit_transform(x)


def verdict(
    summary: dict, consistent: float = 0.5, inconsistent: float = 0.2
) -> tuple[str, list[str]]:
    """CONSISTENT / PARTIAL / INCONSISTENT / UNDETERMINED from two numbers: how much more
    concentrated each token's motion direction is than all motion together
    (``direction_resultant_length_adjusted``: a token's R alone is high whenever most of
    the data moves one way) and how much the datasets agree on each token's direction
    beyond chance (``agreement_adjusted``). Either < ``inconsistent``: INCONSISTENT; both
    >= ``consistent``: CONSISTENT; else PARTIAL. UNDETERMINED when the first is undefined,
    or the tokens do carry direction but the datasets cannot be compared (too few pairs
    per token, or motion so alike that chance agreement is ~1)."""
    r = summary.get("direction_resultant_length_adjusted")
    agree = summary.get("agreement_adjusted")
    if r is None:
        return "UNDETERMINED", ["no moving pairs, or all of them move exactly the same way"]
    if r >= inconsistent and agree is None:
        if summary.get("codes_compared"):
            why = (
                f"chance agreement {summary['agreement_chance']:.3f}: the datasets' motion is "
                "so alike that agreement cannot tell tokens apart"
            )
        else:
            why = "too few moving pairs per token in two or more datasets to compare"
        return "UNDETERMINED", [why]
    raw = summary["direction_resultant_length"]
    pooled = summary["direction_resultant_length_pooled"]
    chance = summary.get("agreement_chance")
    agree_text = "n/a" if agree is None else f"{agree:.2f}"
    chance_text = "n/a" if chance is None else f"{chance:.2f}"
    null = summary.get("agreement_null", "isotropic")
    reasons = [
        f"direction concentration the tokens add = {r:.2f} (R per token {raw:.2f} against "
        f"{pooled:.2f} for all motion together; 1: every pair of a token moves the same "
        "way, 0: no more than the data as a whole)",
        f"chance-corrected agreement between datasets = {agree_text} ({null} chance "
        f"{chance_text}; 1: all datasets give each token the same direction, 0: no better "
        "than chance)",
        f"NMI(token, direction bin) = {summary.get('direction_nmi') or 0:.2f}; linear probe "
        f"{summary.get('probe_accuracy') or 0:.2f} vs chance {summary.get('probe_chance') or 0:.2f}",
    ]
    if r < inconsistent or (agree is not None and agree < inconsistent):
        return "INCONSISTENT", reasons
    if r >= consistent and agree >= consistent:
        return "CONSISTENT", reasons
    return "PARTIAL", reasons


# --------------------------------------------------------------------------- figures


def plot_compass(
    df: pd.DataFrame,
    ids: np.ndarray,
    n_codes: int,
    motion: str = "flow",
    group: str = "dataset",
    min_count: int = 5,
    min_magnitude: float = 0.5,
    relative: bool = False,
):
    """One arrow per (token, dataset): the mean of the unit motion directions of the
    token's pairs (direction = the token's mean direction, length = its concentration R).

    ``relative=True`` draws the direction (unit length) of that mean minus the dataset's
    mean over all its pairs: what the token adds to the dataset's own average motion, the
    direction whose agreement across datasets the verdict judges (see :func:`analyse`). Pairs moving less than
    ``min_magnitude`` and cells with fewer than ``min_count`` pairs are left out."""
    groups = sorted(df[group].unique())
    colours = colors_for(groups)
    cols = int(np.ceil(np.sqrt(n_codes)))
    rows = int(np.ceil(n_codes / cols))
    fig, axes = new_figure(ncols=cols, nrows=rows, width=7.16, height=1.5 * rows, squeeze=False)
    vec = motion_vectors(df, motion)
    length = np.hypot(vec[:, 0], vec[:, 1])
    moving = np.isfinite(length) & (length >= min_magnitude) & (length > 0)
    unit = np.zeros_like(vec)
    unit[moving] = vec[moving] / length[moving, None] * np.array([1.0, -1.0])  # up is up
    labels = df[group].to_numpy()
    offset = {
        g: unit[moving & (labels == g)].mean(axis=0)
        if relative and (moving & (labels == g)).any()
        else np.zeros(2)
        for g in groups
    }
    for code, ax in enumerate(axes.ravel()):
        ax.set_xlim(-1.1, 1.1)
        ax.set_ylim(-1.1, 1.1)
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
        for spine in ax.spines.values():
            spine.set_visible(False)
        ax.add_patch(Circle((0, 0), 1, fill=False, lw=0.4, color="#999999"))
        if code >= n_codes:
            ax.axis("off")
            continue
        total = 0
        for g in groups:
            sel = (ids == code) & (labels == g) & moving
            total += int(sel.sum())
            if sel.sum() < min_count:
                continue
            x, y = unit[sel].mean(axis=0) - offset[g]
            if relative:  # direction only (the agreement ignores the length), kept visible
                norm = np.hypot(x, y)
                x, y = (x / norm, y / norm) if norm > 0 else (0.0, 0.0)
            ax.annotate(
                "",
                xy=(x, y),
                xytext=(0, 0),
                arrowprops={"arrowstyle": "->", "color": colours[g], "lw": 1.2},
            )
        ax.set_title(f"token {code} (n={total})", fontsize=6)
    handles = [Line2D([], [], color=colours[g], label=g) for g in groups]
    fig.legend(handles=handles, loc="outside lower center", ncol=len(groups), fontsize=6)
    return fig, axes


def plot_flow_scatter(
    df: pd.DataFrame,
    ids: np.ndarray,
    n_codes: int,
    motion: str = "flow",
    group: str = "dataset",
    clip_percentile: float = 99.0,
    seed: int = 0,
):
    """Motion (dx, -dy so up is up) of every pair coloured by token, one panel per dataset.

    Points are drawn in random order, so no token hides under the ones drawn after it; the
    axes of each panel span the ``clip_percentile`` of its |motion| (datasets move by very
    different amounts) and the number of pairs beyond them is written in the panel."""
    vec = motion_vectors(df, motion)
    ok = np.isfinite(vec).all(axis=1)
    groups = sorted(df.loc[ok, group].unique())
    fig, axes = new_figure(
        ncols=max(len(groups), 1),
        width=3.5 * min(max(len(groups), 1), 2),
        height=3.2,
        squeeze=False,
    )
    colours = np.array(category_colors(n_codes), dtype=object)
    order = np.random.default_rng(seed).permutation(len(df))
    for ax, g in zip(axes[0], groups, strict=False):
        sel = order[ok[order] & (df[group].to_numpy()[order] == g)]
        ax.scatter(vec[sel, 0], -vec[sel, 1], s=2, alpha=0.5, c=list(colours[ids[sel]]), lw=0)
        lim = max(float(np.percentile(np.abs(vec[sel]), clip_percentile)) * 1.05, 1e-6)
        outside = int((np.abs(vec[sel]) > lim).any(axis=1).sum())
        ax.set_title(f"{g} ({len(sel)} pairs, {outside} beyond the axes)", fontsize=6)
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
        ax.set_aspect("equal")
        ax.axhline(0, color="#999999", lw=0.4)
        ax.axvline(0, color="#999999", lw=0.4)
        ax.set_xlabel(f"{MOTION_LABELS[motion]}: right")
    axes[0, 0].set_ylabel(f"{MOTION_LABELS[motion]}: up")
    used = [c for c in range(n_codes) if (ids[ok] == c).any()]
    if len(used) <= 32:
        handles = [
            Line2D([], [], ls="", marker="o", ms=3, color=colours[c], label=str(c)) for c in used
        ]
        fig.legend(
            handles=handles,
            title="token",
            loc="outside right center",
            fontsize=5,
            ncol=1 + len(used) // 17,
        )
    return fig, axes


def plot_polar_histograms(hist: np.ndarray):
    """Angular histogram (n_codes, n_bins) per token as small polar bar charts."""
    import matplotlib.pyplot as plt

    n_codes, n_bins = hist.shape
    cols = int(np.ceil(np.sqrt(n_codes)))
    rows = int(np.ceil(n_codes / cols))
    fig = plt.figure(figsize=(7.16, 1.6 * rows))
    theta = np.deg2rad(np.arange(n_bins) * 360 / n_bins)
    colours = category_colors(n_codes)
    axes = []
    for code in range(n_codes):
        ax = fig.add_subplot(rows, cols, code + 1, projection="polar")
        ax.bar(
            theta,
            hist[code],
            width=2 * np.pi / n_bins,
            color=colours[code],
            alpha=0.8,
        )
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"token {code} (n={int(round(hist[code].sum()))})", fontsize=6)
        axes.append(ax)
    return fig, axes


def plot_codebook_usage(counts: np.ndarray):
    fig, ax = new_figure(width=3.5, height=1.8)
    ax.bar(np.arange(len(counts)), counts, color=PALETTE[0])
    ax.set_xlabel("code")
    ax.set_ylabel("frame pairs")
    return fig, ax


def plot_embedding(points: np.ndarray, labels: np.ndarray, title: str, n_codes: int | None = None):
    """2-D embedding (e.g. UMAP) of vectors coloured by integer label (token id); with
    ``n_codes`` token c has the colour it has in the flow scatter and polar histograms."""
    labels = np.asarray(labels, dtype=np.int64)
    n = int(n_codes if n_codes is not None else labels.max() + 1)
    colours = category_colors(n)
    fig, ax = new_figure(width=3.5, height=3.0)
    few = len(points) < 100  # e.g. a codebook: big markers, each labelled with its id
    for lab in np.unique(labels):
        sel = labels == lab
        ax.scatter(
            points[sel, 0],
            points[sel, 1],
            s=30 if few else 4,
            alpha=0.7,
            color=colours[lab],
            label=str(lab),
        )
    if few:
        for (x, y), lab in zip(points, labels, strict=True):
            ax.annotate(str(lab), (x, y), xytext=(3, 3), textcoords="offset points", fontsize=5)
    ax.set_title(title)
    ax.set_xticks([])
    ax.set_yticks([])
    if len(np.unique(labels)) <= 20 and not few:
        fig.legend(title="token", fontsize=5, ncol=2, markerscale=2, loc="outside right upper")
    return fig, ax


def plot_gallery(
    store: DemoStore | None,
    df: pd.DataFrame,
    ids: np.ndarray,
    codes: list[int],
    per_token: int = 3,
    seed: int = 0,
    arrow_scale: float = 3.0,
):
    """Random frame pairs of each token in ``codes``, one row per token: frame t, then
    frame t+k with the pair's mean flow drawn from the image centre (``arrow_scale`` times
    its length, white) when the table has flow. Rows without a frame reference are never
    picked; each pair is captioned with its dataset and step."""
    rng = np.random.default_rng(seed)
    with_frames = has_frames(df)
    flow = motion_vectors(df, "flow") if "flow_dx" in df.columns else None
    # per pair: two image columns and a narrow gap column
    ratios = ([1, 1, 0.15] * per_token)[:-1]
    fig, axes = new_figure(
        ncols=len(ratios),
        nrows=len(codes),
        width=7.16,
        height=1.0 * len(codes) + 0.3,
        squeeze=False,
        gridspec_kw={"width_ratios": ratios, "wspace": 0.02},
    )
    for ax in axes.ravel():
        ax.axis("off")
    for row, code in zip(axes, codes, strict=True):
        members = np.flatnonzero((ids == code) & with_frames)
        picks = (
            rng.choice(members, size=min(per_token, len(members)), replace=False)
            if len(members)
            else []
        )
        pairs = pair_frames(df, picks, store) if len(picks) else ([], [])
        for j, i in enumerate(picks):
            first, second = row[3 * j], row[3 * j + 1]
            first.imshow(pairs[0][j])
            second.imshow(pairs[1][j])
            r = df.iloc[int(i)]
            first.set_title(f"{r['dataset']} t={int(r['t'])}", fontsize=5, loc="left")
            second.set_title(f"t+{int(r['k'])}", fontsize=5, loc="left")
            if flow is not None and np.isfinite(flow[i]).all():
                h, w = pairs[1][j].shape[:2]
                dx, dy = flow[i] * arrow_scale
                second.annotate(
                    "",
                    xy=(w / 2 + dx, h / 2 + dy),
                    xytext=(w / 2, h / 2),
                    arrowprops={"arrowstyle": "->", "color": "white", "lw": 1.0},
                )
        row[0].text(
            -0.08,
            0.5,
            f"token {code}",
            transform=row[0].transAxes,
            rotation=90,
            va="center",
            ha="right",
            fontsize=6,
        )
    return fig, axes


HOVER_COLUMNS = ("sample_id", "dataset", "demo", "t", "k", "task", "instruction")


def plotly_scatter(df: pd.DataFrame, ids: np.ndarray, motion: str = "flow"):
    """Interactive scatter of motion coloured by token; hover shows the pair."""
    import plotly.express as px

    vec = motion_vectors(df, motion)
    data = df.assign(token=np.asarray(ids).astype(str), right=vec[:, 0], up=-vec[:, 1])
    return px.scatter(
        data,
        x="right",
        y="up",
        color="token",
        hover_data=[c for c in HOVER_COLUMNS if c in data.columns],
        labels={"right": f"{MOTION_LABELS[motion]}: right", "up": f"{MOTION_LABELS[motion]}: up"},
        width=600,
        height=500,
    )


def stride_effect(
    store: DemoStore,
    cameras: list[str],
    strides: list[int],
    pairs: int,
    weighting: str = "magnitude",
    seed: int = 0,
    progress: bool = False,
    min_pixels: float = 0.5,
) -> pd.DataFrame:
    """Median angle between mean flow and projected end-effector motion, per stride k and
    camera, on up to ``pairs`` random frame pairs each whose reference moves at least
    ``min_pixels`` (a longer stride moves more pixels, so the flow direction is less noisy;
    FACTS.md measured ~27 deg at k=1, ~20 deg at k=4 against the commanded motion).

    Columns: ``median_error_deg`` against where the hand went (:func:`add_reference`),
    ``median_commanded_deg`` against where the actions told it to go, on the same pairs
    (NaN for layouts without a known action scale), ``pairs``. The reference is computed
    first and flow only for the pairs it keeps, so a camera with no reference (a wrist
    camera, where the hand does not move in its own image) costs nothing and reports
    ``pairs`` 0 and NaN medians."""
    rng = np.random.default_rng(seed)
    rows = []
    for k in strides:
        candidates = [(d, t) for d in store.demos for t in range(store.lengths[d] - k)]
        for camera in cameras:
            picks = rng.choice(len(candidates), size=min(pairs, len(candidates)), replace=False)
            table = pd.DataFrame(
                {
                    "dataset": camera,
                    "demo": [candidates[i][0] for i in picks],
                    "t": [candidates[i][1] for i in picks],
                    "k": k,
                }
            )
            table = add_reference(table, store, commanded=True)
            moving = (np.hypot(table["ref_dx"], table["ref_dy"]) >= min_pixels).to_numpy()
            row = {"k": k, "camera": camera, "median_error_deg": np.nan}
            row |= {"median_commanded_deg": np.nan, "pairs": int(moving.sum())}
            if moving.any():
                table = add_flow(table, store, weighting, progress, rows=moving)
                flow = table.loc[moving, ["flow_dx", "flow_dy"]].to_numpy()
                for col, (x, y) in {
                    "median_error_deg": ("ref_dx", "ref_dy"),
                    "median_commanded_deg": ("cmd_dx", "cmd_dy"),
                }.items():
                    err = angular_error_deg(flow, table.loc[moving, [x, y]].to_numpy())
                    if np.isfinite(err).any():
                        row[col] = float(np.nanmedian(err))
            rows.append(row)
    return pd.DataFrame(rows)


def records(table: pd.DataFrame) -> list[dict]:
    """Rows of a table as dicts with NaN as None, for ``metrics.json`` (finite numbers only)."""
    return [
        {k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in row.items()}
        for row in table.to_dict(orient="records")
    ]


def plot_stride_effect(table: pd.DataFrame):
    """Median angle between mean flow and the hand's motion per stride: solid against where
    the hand went, dashed against where the actions commanded it (when known)."""
    fig, ax = new_figure(width=3.5, height=2.2)
    for camera, part in table.groupby("camera"):
        if part["median_error_deg"].isna().all():
            continue  # no reference motion in this camera
        colour = colors_for([camera])[camera]
        ax.plot(part["k"], part["median_error_deg"], marker="o", color=colour, label=camera)
        if "median_commanded_deg" in part and part["median_commanded_deg"].notna().any():
            ax.plot(
                part["k"],
                part["median_commanded_deg"],
                marker="s",
                ls="--",
                color=colour,
                label=f"{camera}, commanded",
            )
    ax.set_xscale("log", base=2)
    ks = sorted(table["k"].unique())
    ax.set_xticks(ks, [str(k) for k in ks])
    ax.minorticks_off()
    ax.set_xlabel("stride k (frames)")
    ax.set_ylabel("median angle (deg)\nflow vs hand motion")
    ax.legend()
    return fig, ax


def pair_frames(df: pd.DataFrame, rows, store: DemoStore | None) -> tuple[np.ndarray, np.ndarray]:
    """Frames t and t+k, uint8 (len(rows), H, W, 3) each, of the given row positions, in
    that order (from ``store`` or the HDF5 file a row's ``file`` names)."""
    rows = np.asarray(rows, dtype=np.int64)
    if not has_frames(df)[rows].all():
        raise DataError("some rows have no frame reference (demo, t, k); they have no frames")
    mask = np.zeros(len(df), bool)
    mask[rows] = True
    source = {}
    for s, m in _stores(df, store, mask):
        for i in np.flatnonzero(m):
            source[i] = s
    cams, demo = _cameras_of(df), df["demo"].to_numpy()
    t, k = df["t"].to_numpy(), df["k"].to_numpy()
    firsts, lasts = [], []
    for i in rows:
        frames = source[i].frames(demo[i], cams[i], int(t[i]), int(t[i]) + int(k[i]) + 1)
        firsts.append(frames[0])
        lasts.append(frames[-1])
    return np.stack(firsts), np.stack(lasts)


def _sample_rows(df: pd.DataFrame, n: int, seed: int) -> np.ndarray:
    """Up to ``n`` random row positions (sorted) among rows with a frame reference."""
    eligible = np.flatnonzero(has_frames(df))
    if not len(eligible):
        raise DataError("no row of the token table references frames (demo, t, k)")
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(eligible, size=min(n, len(eligible)), replace=False))


def sample_frames(
    store: DemoStore | None, df: pd.DataFrame, n: int, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Frames t and t+k (n, H, W, 3) uint8 of ``n`` random rows, for decoder ablations."""
    return pair_frames(df, _sample_rows(df, n, seed), store)


def latents_sample(
    model,
    store: DemoStore | None,
    df: pd.DataFrame,
    ids: np.ndarray,
    n: int,
    seed: int = 0,
    position: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Pre-quantisation latents (n, code_dim) at token ``position`` of ``n`` random pairs,
    and their analysed ids (``ids``, one per row of ``df``) for colouring an embedding."""
    import torch

    rows = _sample_rows(df, n, seed)
    first, last = pair_frames(df, rows, store)
    with torch.no_grad():
        lat = model.latents(first, last)[:, position].cpu().numpy()
    return lat, np.asarray(ids)[rows]
