"""The frame pairs behind a token table: their frames, optical flow and reference motion.

A token table (:mod:`nblib.models.latent.tokens`) has one
row per pair; a row references its frames with ``demo``, ``t``, ``k`` (and ``file``,
``camera``: its ``dataset`` is the camera when ``camera`` is not set). This module reads
those frames (from the notebook's dataset or the file a row names), fills in the mean
optical flow of each pair (``flow_dx, flow_dy``) and the end effector's motion projected
into the camera (``ref_dx, ref_dy``; ``cmd_dx, cmd_dy`` for where the actions commanded
it), and checks how far flow and reference agree per stride.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from nblib.data.formats import open_like
from nblib.data.store import StoreBase
from nblib.errors import DataError, ParameterError
from nblib.flow import angular_error_deg, commanded_motion, flows_for_pairs, projected_motion


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


def _stores(df: pd.DataFrame, store: StoreBase | None, rows: np.ndarray) -> list:
    """(store, row mask) per HDF5 file the rows reference; rows without a ``file`` use
    ``store``. Other files are opened with ``store``'s key mapping when they have its format
    (else the format's default mapping)."""
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
            # Another file of the same format is read with the same mapping.
            out.append((open_like(name, store), mask))
    merged: dict[int, tuple] = {}  # the same store may come from "" and from its own path
    for s, mask in out:
        prev = merged.get(id(s))
        merged[id(s)] = (s, mask if prev is None else prev[1] | mask)
    for s, mask in merged.values():
        _check_frame_refs(df, s, mask)
    return list(merged.values())


def _check_frame_refs(df: pd.DataFrame, store: StoreBase, mask: np.ndarray) -> None:
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
    df: pd.DataFrame, store: StoreBase | None, commanded: bool = False
) -> pd.DataFrame:
    """Add ``ref_dx, ref_dy``: the end effector's motion from t to t+k projected into the
    row's camera with the stored intrinsics and per-step extrinsics (pixels, +x right,
    +y down). NaN where a row has no frame reference, the layout stores no camera
    parameters or its proprio has no end-effector position.

    ``commanded=True`` also adds ``cmd_dx, cmd_dy``: the motion the actions commanded
    (:func:`nblib.flow.commanded_motion`), for layouts in ``ACTION_SCALE`` (NaN otherwise)."""
    out = df.copy()
    _set_reference(out, _stores(out, store, has_frames(out)), commanded)
    return out


def add_flow(
    df: pd.DataFrame,
    store: StoreBase | None,
    weighting: str = "magnitude",
    progress: bool = True,
    rows: np.ndarray | None = None,
) -> pd.DataFrame:
    """Fill ``flow_dx, flow_dy`` (mean optical flow from frame t to t+k, pixels) of rows that
    reference a frame pair. Flows already present (not NaN) are kept, e.g. a user's own;
    ``rows`` (bool mask) limits the work to those rows."""
    out = df.copy()
    todo = _flow_todo(out, rows)
    _set_flow(out, _stores(out, store, todo), todo, weighting, progress)
    return out


def add_motion(
    df: pd.DataFrame, store: StoreBase | None, weighting: str = "magnitude", progress: bool = True
) -> pd.DataFrame:
    """Both :func:`add_flow` and :func:`add_reference`, opening each frame file once."""
    out = df.copy()
    todo = _flow_todo(out, None)
    sources = _stores(out, store, has_frames(out))
    _set_flow(out, sources, todo, weighting, progress)
    _set_reference(out, sources, commanded=False)
    return out


def _flow_todo(out: pd.DataFrame, rows: np.ndarray | None) -> np.ndarray:
    """Adds missing flow columns (NaN); the rows with frames whose flow is still unknown."""
    for col in ("flow_dx", "flow_dy"):
        if col not in out.columns:
            out[col] = np.nan
    todo = has_frames(out) & out[["flow_dx", "flow_dy"]].isna().any(axis=1).to_numpy()
    return todo if rows is None else todo & np.asarray(rows, bool)


def _set_flow(out: pd.DataFrame, sources: list, todo: np.ndarray, weighting, progress) -> None:
    cams = _cameras_of(out)
    for s, mask in sources:
        idx = np.flatnonzero(mask & todo)
        if not len(idx):
            continue
        demo, t, k = out["demo"].to_numpy(), out["t"].to_numpy(), out["k"].to_numpy()
        unknown = sorted({str(c) for c in cams[idx]} - set(s.mapping.images))
        if unknown:
            raise DataError(
                f"{s.path}: token rows name camera(s) {unknown}, not in mapping "
                f"'{s.mapping.name}' (cameras: {s.mapping.cameras}); set a 'camera' column"
            )
        pairs = (
            s.frames(demo[i], cams[i], int(t[i]), int(t[i]) + int(k[i]) + 1)[[0, -1]] for i in idx
        )
        flows = flows_for_pairs(pairs, weighting=weighting, progress=progress, total=len(idx))
        out.iloc[idx, out.columns.get_loc("flow_dx")] = flows[:, 0]
        out.iloc[idx, out.columns.get_loc("flow_dy")] = flows[:, 1]


def _set_reference(out: pd.DataFrame, sources: list, commanded: bool) -> None:
    ref = np.full((len(out), 2), np.nan)
    cmd = np.full((len(out), 2), np.nan)
    cams = _cameras_of(out)
    for s, mask in sources:
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


def eef_positions(store: StoreBase) -> dict | None:
    """demo -> (T, 3) end-effector positions from the proprio key named ``*eef_pos`` or
    ``*ee_pos`` (metaworld, robomimic, libero, cosmos layouts); None without one."""
    return store.eef_positions() if store.has("eef_positions") else None


def camera_parameters(store: StoreBase) -> dict:
    """(camera, demo) -> (intrinsics (3, 3), extrinsics (T, 4, 4) or (4, 4)) for every demo
    and camera whose calibration the dataset records (the generator's layout does)."""
    return store.camera_calibration() if store.has("camera_calibration") else {}


def stride_effect(
    store: StoreBase,
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
    parts, cells = [], []
    for k in strides:
        candidates = [(d, t) for d in store.demos for t in range(store.lengths[d] - k)]
        for camera in cameras:
            picks = rng.choice(len(candidates), size=min(pairs, len(candidates)), replace=False)
            parts.append(
                pd.DataFrame(
                    {
                        "dataset": camera,
                        "demo": [candidates[i][0] for i in picks],
                        "t": [candidates[i][1] for i in picks],
                        "k": k,
                    }
                )
            )
            cells.append((k, camera))
    # one reference pass and one flow pass over every (k, camera) sample
    table = add_reference(pd.concat(parts, ignore_index=True), store, commanded=True)
    moving = (np.hypot(table["ref_dx"], table["ref_dy"]) >= min_pixels).to_numpy()
    if moving.any():
        table = add_flow(table, store, weighting, progress, rows=moving)
    flow = table[["flow_dx", "flow_dy"]].to_numpy() if "flow_dx" in table else None
    errors = {
        col: angular_error_deg(flow, table[[x, y]].to_numpy()) if flow is not None else None
        for col, (x, y) in {
            "median_error_deg": ("ref_dx", "ref_dy"),
            "median_commanded_deg": ("cmd_dx", "cmd_dy"),
        }.items()
    }
    k_col, cam_col = table["k"].to_numpy(), table["dataset"].to_numpy()
    rows = []
    for k, camera in cells:
        sel = moving & (k_col == k) & (cam_col == camera)
        row = {"k": k, "camera": camera, "median_error_deg": np.nan}
        row |= {"median_commanded_deg": np.nan, "pairs": int(sel.sum())}
        for col, err in errors.items():
            if sel.any() and np.isfinite(err[sel]).any():
                row[col] = float(np.nanmedian(err[sel]))
        rows.append(row)
    return pd.DataFrame(rows)


def records(table: pd.DataFrame) -> list[dict]:
    """Rows of a table as dicts with NaN as None, for ``metrics.json`` (finite numbers only)."""
    return [
        {k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in row.items()}
        for row in table.to_dict(orient="records")
    ]


def pair_frames(df: pd.DataFrame, rows, store: StoreBase | None) -> tuple[np.ndarray, np.ndarray]:
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
    store: StoreBase | None, df: pd.DataFrame, n: int, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Frames t and t+k (n, H, W, 3) uint8 of ``n`` random rows, for decoder ablations."""
    return pair_frames(df, _sample_rows(df, n, seed), store)


def latents_sample(
    model, store: StoreBase | None, table, n: int, seed: int = 0, position: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Pre-quantisation latents (n, code_dim) at token ``position`` of ``n`` random pairs
    of a :class:`~nblib.studies.tokens.table.TokenTable`, and their analysed ids (for
    colouring an embedding)."""
    import torch

    rows = _sample_rows(table.df, n, seed)
    first, last = pair_frames(table.df, rows, store)
    with torch.no_grad():
        lat = model.latents(first, last)[:, position].cpu().numpy()
    return lat, table.ids[rows]
