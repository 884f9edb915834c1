"""Token compass: do discrete latent-action tokens mean the same motion everywhere?

Seed 004's question, as analysis steps on a table of tokenised frame pairs (one row per
pair: ``dataset``, ``demo``, ``t``, ``k``, ``task``, ``instruction`` and the tokens, as
written by :func:`nblib.latent.tokenize_dataset` or loaded by
:func:`nblib.latent.load_token_file`). Motion comes from pixels (mean optical flow of the
pair) or, as the reference, from the end effector's motion projected into the image with
the stored camera parameters. Cameras and tasks of the embedded data play the datasets.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.lines import Line2D
from matplotlib.patches import Circle

from nblib.data.dataset import DemoStore
from nblib.errors import DataError, ParameterError
from nblib.flow import angular_error_deg, flows_for_pairs, projected_motion
from nblib.metrics.tokens import summarize_tokens, token_directions
from nblib.plots import PALETTE, colors_for, new_figure


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
    if not isinstance(position, int) or not 0 <= position < tokens.shape[1]:
        raise ParameterError(
            f"token_position must be 0..{tokens.shape[1] - 1} or 'combined', got {position!r}"
        )
    return tokens[:, position], codebook_size


def add_motion(
    df: pd.DataFrame, store: DemoStore, weighting: str = "magnitude", progress: bool = True
) -> pd.DataFrame:
    """Add ``flow_dx, flow_dy`` (mean optical flow of each pair) and ``ref_dx, ref_dy``
    (end-effector motion projected into that camera) for rows whose ``dataset`` is a
    camera of ``store``. Flows already present (not NaN) are kept, e.g. a user's own."""
    out = df.copy()
    rows = out.index[out["dataset"].isin(set(store.cameras))]
    for col in ("flow_dx", "flow_dy"):
        if col not in out.columns:
            out[col] = np.nan
    todo = rows[out.loc[rows, ["flow_dx", "flow_dy"]].isna().any(axis=1).to_numpy()]
    if len(todo):
        pairs = (
            store.frames(r.demo, r.dataset, int(r.t), int(r.t) + int(r.k) + 1)[[0, -1]]
            for r in out.loc[todo].itertuples()
        )
        flows = flows_for_pairs(pairs, weighting=weighting, progress=progress)
        out.loc[todo, "flow_dx"], out.loc[todo, "flow_dy"] = flows[:, 0], flows[:, 1]
    ref = np.full((len(out), 2), np.nan)
    with_cams = _camera_parameters(store)
    for (demo, camera), part in out.loc[rows].groupby(["demo", "dataset"]):
        eef = store.proprio[demo][:, :3] if store.mapping.name == "metaworld" else None
        if eef is None or camera not in with_cams:
            continue
        K, E = with_cams[camera](demo)
        ref[out.index.get_indexer(part.index)] = projected_motion(
            eef, K, E, part["t"].to_numpy(), int(part["k"].iloc[0])
        )
    out["ref_dx"], out["ref_dy"] = ref[:, 0], ref[:, 1]
    return out


def _camera_parameters(store: DemoStore) -> dict:
    """camera -> (demo -> (K, E[T])) readers for layouts that store camera parameters."""
    from nblib.data.hdf5 import open_h5

    with open_h5(store.path) as f:
        first = f[store.mapping.demo_group][store.demos[0]]
        if "camera" not in first:
            return {}
        names = [c for c in store.cameras if c in first["camera"]]

    def reader(camera):
        def read(demo):
            with open_h5(store.path) as f:
                cam = f[store.mapping.demo_group][demo]["camera"][camera]
                return cam["intrinsics"][()], cam["extrinsics"][()]

        return read

    return {c: reader(c) for c in names}


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


def analyse(
    df: pd.DataFrame,
    ids: np.ndarray,
    n_codes: int,
    motion: str = "flow",
    group: str = "dataset",
    n_bins: int = 8,
    min_magnitude: float = 0.5,
) -> dict:
    """Every token metric (:func:`nblib.metrics.tokens.summarize_tokens`) for one motion source."""
    cols = {"flow": ["flow_dx", "flow_dy"], "reference": ["ref_dx", "ref_dy"]}
    if motion not in cols:
        raise ParameterError(f"motion must be 'flow' or 'reference', got {motion!r}")
    vec = df[cols[motion]].to_numpy()
    keep = np.isfinite(vec).all(axis=1)
    return summarize_tokens(
        ids[keep],
        vec[keep],
        groups=df[group].to_numpy()[keep],
        instructions=df["instruction"].to_numpy()[keep],
        n_codes=n_codes,
        n_bins=n_bins,
        min_magnitude=min_magnitude,
    )


def verdict(
    summary: dict, consistent: float = 0.5, inconsistent: float = 0.2
) -> tuple[str, list[str]]:
    """CONSISTENT / PARTIAL / INCONSISTENT from two numbers: how concentrated each token's
    motion direction is (row-weighted resultant length R) and how much the datasets agree
    on it beyond chance (``agreement_adjusted``)."""
    r, agree = summary.get("direction_resultant_length"), summary.get("agreement_adjusted")
    if r is None or agree is None:
        return "UNDETERMINED", ["too few moving pairs per token in two or more datasets to compare"]
    reasons = [
        f"mean direction concentration R = {r:.2f} (1: every pair of a token moves the same way; random ~ 0)",
        f"chance-corrected agreement between datasets = {agree:.2f} (1: all datasets give each token the same direction; 0: no better than chance)",
        f"NMI(token, direction bin) = {summary.get('direction_nmi', 0):.2f}; linear probe {summary.get('probe_accuracy', 0):.2f} vs chance {summary.get('probe_chance', 0):.2f}",
    ]
    if r >= consistent and agree >= consistent:
        return "CONSISTENT", reasons
    if r < inconsistent or agree < inconsistent:
        return "INCONSISTENT", reasons
    return "PARTIAL", reasons


# --------------------------------------------------------------------------- figures


def plot_compass(
    df: pd.DataFrame,
    ids: np.ndarray,
    n_codes: int,
    motion_cols=("flow_dx", "flow_dy"),
    group: str = "dataset",
    min_count: int = 5,
):
    """One arrow per (token, dataset): mean unit direction scaled by its concentration R."""
    groups = sorted(df[group].unique())
    colours = colors_for(groups)
    cols = int(np.ceil(np.sqrt(n_codes)))
    rows = int(np.ceil(n_codes / cols))
    fig, axes = new_figure(ncols=cols, nrows=rows, width=7.16, height=1.5 * rows, squeeze=False)
    vec = df[list(motion_cols)].to_numpy()
    for code, ax in enumerate(axes.ravel()):
        ax.set_xlim(-1.1, 1.1)
        ax.set_ylim(-1.1, 1.1)
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.add_patch(Circle((0, 0), 1, fill=False, lw=0.4, color="#999999"))
        if code >= n_codes:
            ax.axis("off")
            continue
        total = 0
        for g in groups:
            sel = (ids == code) & (df[group].to_numpy() == g) & np.isfinite(vec).all(axis=1)
            total += int(sel.sum())
            if sel.sum() < min_count:
                continue
            d = token_directions(np.zeros(int(sel.sum()), int), vec[sel], 1, 0.5)
            if not d["count"][0]:
                continue
            angle, r = np.deg2rad(d["mean_angle"][0]), d["resultant_length"][0]
            ax.annotate(
                "",
                xy=(r * np.cos(angle), r * np.sin(angle)),
                xytext=(0, 0),
                arrowprops={"arrowstyle": "->", "color": colours[g], "lw": 1.2},
            )
        ax.set_title(f"token {code} (n={total})", fontsize=6)
    handles = [Line2D([], [], color=colours[g], label=g) for g in groups]
    fig.legend(handles=handles, loc="lower center", ncol=len(groups), fontsize=6)
    return fig, axes


def plot_flow_scatter(
    df: pd.DataFrame, ids: np.ndarray, n_codes: int, motion_cols=("flow_dx", "flow_dy")
):
    """Mean flow (dx, -dy so up is up) of every pair, coloured by token."""
    fig, ax = new_figure(width=3.5, height=3.2)
    vec = df[list(motion_cols)].to_numpy()
    for code in range(n_codes):
        sel = ids == code
        if sel.any():
            ax.scatter(
                vec[sel, 0],
                -vec[sel, 1],
                s=3,
                alpha=0.6,
                color=PALETTE[code % len(PALETTE)],
                marker="os^v"[(code // len(PALETTE)) % 4],
                label=str(code),
            )
    ax.axhline(0, color="#999999", lw=0.4)
    ax.axvline(0, color="#999999", lw=0.4)
    ax.set_xlabel("mean flow dx (px, right)")
    ax.set_ylabel("mean flow -dy (px, up)")
    ax.legend(title="token", fontsize=5, ncol=2, markerscale=2)
    return fig, ax


def plot_polar_histograms(hist: np.ndarray):
    """Angular histogram (n_codes, n_bins) per token as small polar bar charts."""
    import matplotlib.pyplot as plt

    n_codes, n_bins = hist.shape
    cols = int(np.ceil(np.sqrt(n_codes)))
    rows = int(np.ceil(n_codes / cols))
    fig = plt.figure(figsize=(7.16, 1.6 * rows))
    theta = np.deg2rad(np.arange(n_bins) * 360 / n_bins)
    axes = []
    for code in range(n_codes):
        ax = fig.add_subplot(rows, cols, code + 1, projection="polar")
        ax.bar(
            theta,
            hist[code],
            width=2 * np.pi / n_bins,
            color=PALETTE[code % len(PALETTE)],
            alpha=0.8,
        )
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"token {code}", fontsize=6)
        axes.append(ax)
    return fig, axes


def plot_codebook_usage(counts: np.ndarray):
    fig, ax = new_figure(width=3.5, height=1.8)
    ax.bar(np.arange(len(counts)), counts, color=PALETTE[0])
    ax.set_xlabel("code")
    ax.set_ylabel("frame pairs")
    return fig, ax


def plot_embedding(points: np.ndarray, labels: np.ndarray, title: str):
    """2-D embedding (e.g. UMAP) of vectors, coloured by label."""
    fig, ax = new_figure(width=3.5, height=3.0)
    for i, lab in enumerate(np.unique(labels)):
        sel = labels == lab
        ax.scatter(
            points[sel, 0],
            points[sel, 1],
            s=4,
            alpha=0.7,
            color=PALETTE[i % len(PALETTE)],
            label=str(lab),
        )
    ax.set_title(title)
    ax.set_xticks([])
    ax.set_yticks([])
    if len(np.unique(labels)) <= 16:
        ax.legend(fontsize=5, ncol=2, markerscale=2)
    return fig, ax


def plot_gallery(
    store: DemoStore,
    df: pd.DataFrame,
    ids: np.ndarray,
    codes: list[int],
    per_token: int = 3,
    seed: int = 0,
):
    """Random frame pairs per token: frame t over frame t+k, one column per pair."""
    rng = np.random.default_rng(seed)
    fig, axes = new_figure(
        ncols=per_token * 2,
        nrows=len(codes),
        width=7.16,
        height=0.9 * len(codes) + 0.3,
        squeeze=False,
    )
    for row, code in zip(axes, codes, strict=True):
        members = np.flatnonzero(ids == code)
        picks = (
            rng.choice(members, size=min(per_token, len(members)), replace=False)
            if len(members)
            else []
        )
        for j in range(per_token):
            for side in range(2):
                ax = row[2 * j + side]
                ax.axis("off")
                if j < len(picks):
                    r = df.iloc[int(picks[j])]
                    frames = store.frames(
                        r["demo"], r["dataset"], int(r["t"]), int(r["t"]) + int(r["k"]) + 1
                    )
                    ax.imshow(frames[0] if side == 0 else frames[-1])
        row[0].set_title(f"token {code}", fontsize=6, loc="left")
    return fig, axes


def plotly_scatter(df: pd.DataFrame, ids: np.ndarray, motion_cols=("flow_dx", "flow_dy")):
    """Interactive scatter of mean flow coloured by token, hover shows the pair."""
    import plotly.express as px

    data = df.assign(token=ids.astype(str), up=-df[motion_cols[1]], right=df[motion_cols[0]])
    return px.scatter(
        data,
        x="right",
        y="up",
        color="token",
        hover_data=["dataset", "demo", "t", "k", "task", "instruction"],
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
) -> pd.DataFrame:
    """Median angle between mean flow and projected end-effector motion, per stride k and
    camera, on ``pairs`` random frame pairs each (a longer stride moves more pixels, so
    the flow direction is less noisy; FACTS.md measured ~27 deg at k=1, ~20 deg at k=4
    against the commanded motion)."""
    rng = np.random.default_rng(seed)
    rows = []
    for k in strides:
        candidates = [(d, t) for d in store.demos for t in range(store.lengths[d] - k)]
        for camera in cameras:
            picks = rng.choice(len(candidates), size=min(pairs, len(candidates)), replace=False)
            table = pd.DataFrame(
                [
                    {"dataset": camera, "demo": candidates[i][0], "t": candidates[i][1], "k": k}
                    for i in picks
                ]
            )
            stats = flow_reference_agreement(
                add_motion(table, store, weighting, progress=progress)
            )[camera]
            rows.append(
                {
                    "k": k,
                    "camera": camera,
                    "median_error_deg": stats["median_deg"],
                    "pairs": stats["pairs"],
                }
            )
    return pd.DataFrame(rows)


def plot_stride_effect(table: pd.DataFrame):
    fig, ax = new_figure(width=3.5, height=2.2)
    for camera, part in table.groupby("camera"):
        ax.plot(
            part["k"],
            part["median_error_deg"],
            marker="o",
            color=colors_for([camera])[camera],
            label=camera,
        )
    ax.set_xscale("log", base=2)
    ax.set_xlabel("stride k (frames)")
    ax.set_ylabel("median angle error (deg)\nflow vs end-effector motion")
    ax.legend()
    return fig, ax


def sample_frames(
    store: DemoStore, df: pd.DataFrame, n: int, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Frames t and t+k (n, H, W, 3) uint8 of ``n`` random rows, for decoder ablations."""
    rng = np.random.default_rng(seed)
    picks = rng.choice(len(df), size=min(n, len(df)), replace=False)
    firsts, lasts = [], []
    for i in picks:
        r = df.iloc[int(i)]
        frames = store.frames(r["demo"], r["dataset"], int(r["t"]), int(r["t"]) + int(r["k"]) + 1)
        firsts.append(frames[0])
        lasts.append(frames[-1])
    return np.stack(firsts), np.stack(lasts)


def latents_sample(
    model, store: DemoStore, df: pd.DataFrame, n: int, seed: int = 0, position: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Pre-quantisation latents (n, code_dim) at one token position of ``n`` random pairs,
    and the token each was quantised to (for colouring an embedding)."""
    import torch

    rng = np.random.default_rng(seed)
    picks = np.sort(rng.choice(len(df), size=min(n, len(df)), replace=False))
    rows = df.iloc[picks]
    first, last = [], []
    for r in rows.itertuples():
        frames = store.frames(r.demo, r.dataset, int(r.t), int(r.t) + int(r.k) + 1)
        first.append(frames[0])
        last.append(frames[-1])
    with torch.no_grad():
        lat = model.latents(np.stack(first), np.stack(last))[:, position].cpu().numpy()
    return lat, token_matrix(rows)[:, position]
