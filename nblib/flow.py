"""Optical flow between frame pairs, its mean direction, the ground-truth reference, and
every angle and direction helper of the suite.

The question behind this module: does a latent action (or a token) track the direction the
robot hand moves in the image? The visual answer is the *mean optical flow* of a frame pair;
the reference answer is the end effector's motion projected into the same camera.

Conventions
-----------
* Flow fields are ``(H, W, 2)`` float32 ``(dx, dy)`` in pixels, image axes: x to the right,
  y *down* (OpenCV). ``flow[y, x]`` is where pixel ``(x, y)`` of frame a went in frame b.
* Angles (:func:`angle_deg`) use the math convention on the screen: 0° = right, 90° = up
  (i.e. ``-y`` in the image), 180° = left, 270° = down, counter-clockwise, in [0, 360).
* Compass bins (:func:`angle_bins`) split the circle into ``n_bins`` equal sectors,
  bin 0 centred on 0° (right) and numbered counter-clockwise, so with 8 bins:
  0 right, 1 up-right, 2 up, 3 up-left, 4 left, 5 down-left, 6 down, 7 down-right.

Mean flow weightings (:func:`mean_flow`), because the background is mostly static and a
plain mean is dominated by zeros:

* ``"plain"``: mean over all pixels; the right direction but a magnitude shrunk by the
  fraction of pixels that move, and noise from the static background.
* ``"magnitude"`` (default): ``sum(|f| f) / sum(|f|)``, each pixel weighted by how far it
  moved; recovers the motion of a small moving object (the arm).
* ``"threshold"``: mean over the pixels that moved more than ``threshold`` px; the zero
  vector when none did.

Measured on the embedded Meta-World file (corner camera, 300 random pairs per stride,
pairs whose projected hand motion is < 0.5 px left out): the median angle between the
Farneback mean flow and :func:`projected_motion` of the end effector is 12-16° for every
weighting at strides 1, 2, 4 and 8 (magnitude: 15.8, 13.7, 12.5, 13.8°). FACTS.md quotes
~27° / ~20° (stride 1 / 4) against the *commanded* motion, a looser reference.
"""

from __future__ import annotations

import functools
import os
from collections import deque
from collections.abc import Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np

from nblib.errors import ParameterError

__all__ = [
    "FARNEBACK_DEFAULTS",
    "METHODS",
    "WEIGHTINGS",
    "angle_bins",
    "angle_deg",
    "angular_error_deg",
    "commanded_motion",
    "dense_flow",
    "flows_for_pairs",
    "mean_flow",
    "project_points",
    "projected_motion",
    "wrap_degrees",
]

METHODS = ("farneback", "raft")
WEIGHTINGS = ("plain", "magnitude", "threshold")

# cv2.calcOpticalFlowFarneback parameters for 128x128 robot frames. Three pyramid levels
# halve the image down to 32 px, so the several-pixel motions of stride-8 pairs are still
# caught; a 15-px averaging window bridges the textureless surfaces of the arm yet stays
# small against the frame; poly_n=5 with sigma 1.1 is OpenCV's recommended pair. On the
# embedded Meta-World data winsize 9 was worse (+2-6° median angle error), 21, one level,
# poly_n=7 or 5 iterations no better than these. Pass any of these to override.
FARNEBACK_DEFAULTS: dict[str, float | int] = {
    "pyr_scale": 0.5,
    "levels": 3,
    "winsize": 15,
    "iterations": 3,
    "poly_n": 5,
    "poly_sigma": 1.1,
    "flags": 0,
}

_RAFT_HELP = (
    "method='raft' needs torchvision importable AND a local RAFT weights file "
    "(raft_weights='/path/to/raft_large.pth'; nothing is ever downloaded). "
    "Use method='farneback' (the default, OpenCV only) otherwise."
)


# --------------------------------------------------------------------------- dense flow


def _as_gray_u8(frame: np.ndarray, name: str) -> np.ndarray:
    frame = np.asarray(frame)
    if frame.ndim == 3 and frame.shape[-1] == 1:
        frame = frame[..., 0]
    if frame.ndim == 3 and frame.shape[-1] == 3:
        frame = cv2.cvtColor(_as_u8(frame), cv2.COLOR_RGB2GRAY)
    elif frame.ndim != 2:
        raise ParameterError(
            f"{name}: expected an (H, W, 3) RGB or (H, W) gray frame, got shape {frame.shape}"
        )
    return _as_u8(frame)


def _as_u8(frame: np.ndarray) -> np.ndarray:
    if frame.dtype == np.uint8:
        return np.ascontiguousarray(frame)
    frame = frame.astype(np.float32)
    if frame.size and float(np.nanmax(frame)) <= 1.0:  # floats in [0, 1]
        frame = frame * 255.0
    return np.clip(np.rint(frame), 0, 255).astype(np.uint8)


def _check_method(method: str, params: dict) -> dict:
    """Validate ``method`` and its parameters; returns the full parameter dict."""
    if method == "farneback":
        unknown = sorted(set(params) - set(FARNEBACK_DEFAULTS))
        if unknown:
            raise ParameterError(
                f"dense_flow(method='farneback'): unknown parameters {unknown} "
                f"(accepted: {sorted(FARNEBACK_DEFAULTS)})"
            )
        return {**FARNEBACK_DEFAULTS, **params}
    if method == "raft":
        accepted = {"raft_weights", "raft_model", "num_flow_updates", "device"}
        unknown = sorted(set(params) - accepted)
        if unknown:
            raise ParameterError(
                f"dense_flow(method='raft'): unknown parameters {unknown} (accepted: {sorted(accepted)})"
            )
        weights = params.get("raft_weights")
        if weights is None or not Path(weights).is_file():
            raise ParameterError(f"raft_weights={weights!r} is not a local file. {_RAFT_HELP}")
        try:
            import torchvision.models.optical_flow  # noqa: F401
        except Exception as exc:  # a broken torchvision raises more than ImportError
            raise ParameterError(f"torchvision does not import ({exc!r}). {_RAFT_HELP}") from exc
        return {"raft_model": "large", "num_flow_updates": 12, "device": "cpu", **params}
    raise ParameterError(
        f"method: unknown {method!r}; choose one of {METHODS} (default 'farneback')"
    )


def dense_flow(
    frame_a: np.ndarray, frame_b: np.ndarray, method: str = "farneback", **params
) -> np.ndarray:
    """Dense optical flow from ``frame_a`` to ``frame_b`` as (H, W, 2) float32 (dx, dy) px.

    Frames are (H, W, 3) RGB or (H, W) gray, uint8 or float (floats <= 1 are read as
    [0, 1]). ``method="farneback"`` (default) runs ``cv2.calcOpticalFlowFarneback`` on
    grayscale with :data:`FARNEBACK_DEFAULTS`, overridable by keyword. ``method="raft"``
    runs torchvision's RAFT; it needs torchvision and ``raft_weights=`` a local state-dict
    file (``raft_model="large"|"small"``, ``num_flow_updates=12``, ``device="cpu"``);
    otherwise :class:`ParameterError`. Nothing is ever downloaded.
    """
    params = _check_method(method, params)
    a, b = np.asarray(frame_a), np.asarray(frame_b)
    if a.shape[:2] != b.shape[:2]:
        raise ParameterError(f"frame_a and frame_b differ in size: {a.shape[:2]} vs {b.shape[:2]}")
    if method == "raft":
        return _raft_flow(a, b, **params)
    ga, gb = _as_gray_u8(a, "frame_a"), _as_gray_u8(b, "frame_b")
    flow = cv2.calcOpticalFlowFarneback(
        ga,
        gb,
        None,
        float(params["pyr_scale"]),
        int(params["levels"]),
        int(params["winsize"]),
        int(params["iterations"]),
        int(params["poly_n"]),
        float(params["poly_sigma"]),
        int(params["flags"]),
    )
    return flow.astype(np.float32, copy=False)


@functools.lru_cache(maxsize=2)
def _load_raft(weights: str, variant: str, device: str):
    import torch
    from torchvision.models.optical_flow import raft_large, raft_small

    builders = {"large": raft_large, "small": raft_small}
    if variant not in builders:
        raise ParameterError(f"raft_model: unknown {variant!r}; choose 'large' or 'small'")
    model = builders[variant](weights=None, progress=False)
    state = torch.load(weights, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    model.load_state_dict(state)
    return model.eval().to(device)


def _raft_flow(a, b, raft_weights, raft_model, num_flow_updates, device) -> np.ndarray:
    import torch

    def to_tensor(frame):
        frame = _as_u8(frame)
        if frame.ndim == 2:
            frame = np.repeat(frame[..., None], 3, axis=-1)
        return torch.from_numpy(frame).permute(2, 0, 1).float() / 127.5 - 1.0

    model = _load_raft(str(raft_weights), raft_model, device)
    x = torch.stack([to_tensor(a), to_tensor(b)]).to(device)
    h, w = x.shape[-2:]
    ph, pw = (-h) % 8, (-w) % 8  # RAFT needs sizes divisible by 8
    if ph or pw:
        x = torch.nn.functional.pad(x, (0, pw, 0, ph), mode="replicate")
    with torch.inference_mode():
        flows = model(x[:1], x[1:], num_flow_updates=int(num_flow_updates))
    return flows[-1][0, :, :h, :w].permute(1, 2, 0).cpu().numpy().astype(np.float32)


# --------------------------------------------------------------------------- mean flow


def _check_weighting(weighting: str) -> None:
    if weighting not in WEIGHTINGS:
        raise ParameterError(f"weighting: unknown {weighting!r}; choose one of {WEIGHTINGS}")


def mean_flow(flow: np.ndarray, weighting: str = "magnitude", threshold: float = 0.5) -> np.ndarray:
    """One (dx, dy) vector per flow field: (H, W, 2) -> (2,), or (N, H, W, 2) -> (N, 2).

    ``weighting``: ``"plain"`` mean over all pixels; ``"magnitude"`` (default)
    ``sum(|f| f) / sum(|f|)``; ``"threshold"`` mean over pixels with ``|f| > threshold`` px.
    A field with no motion (all zero, or nothing above the threshold) gives the zero vector.
    Returns float64, image axes (y down).
    """
    _check_weighting(weighting)
    flow = np.asarray(flow)
    if flow.ndim not in (3, 4) or flow.shape[-1] != 2:
        raise ParameterError(f"flow: expected (H, W, 2) or (N, H, W, 2), got shape {flow.shape}")
    single = flow.ndim == 3
    f = flow.reshape(1 if single else flow.shape[0], -1, 2).astype(np.float64)
    if weighting == "plain":
        out = f.mean(axis=1)
    else:
        mag = np.hypot(f[..., 0], f[..., 1])
        w = mag if weighting == "magnitude" else (mag > threshold).astype(np.float64)
        total = w.sum(axis=1)
        out = np.einsum("np,npc->nc", w, f) / np.where(total > 0, total, 1.0)[:, None]
    return out[0] if single else out


# --------------------------------------------------------------------------- many pairs


def _resolve_workers(workers: int | None) -> int:
    if workers is None:
        return os.cpu_count() or 1
    if int(workers) < 1:
        raise ParameterError(f"workers: must be >= 1 (or None for all cores), got {workers}")
    return int(workers)


def _run_pairs(pairs, total, weighting, threshold, workers, progress, method, params):
    from tqdm.auto import tqdm

    _check_weighting(weighting)
    _check_method(method, params)  # fail before any work
    workers = 1 if method == "raft" else _resolve_workers(workers)

    def one(pair) -> np.ndarray:
        a, b = pair
        return mean_flow(dense_flow(a, b, method, **params), weighting, threshold)

    out: list[np.ndarray] = []
    bar = tqdm(total=total, disable=not progress, desc=f"{method} flow", unit="pair")
    try:
        if workers == 1:
            for pair in pairs:
                out.append(one(pair))
                bar.update()
        else:
            # A bounded window of futures: results come back in input order and at most
            # 4 * workers frame pairs are held in memory, whatever the number of pairs.
            pending: deque[Future] = deque()
            with ThreadPoolExecutor(workers, thread_name_prefix="flow") as pool:
                try:
                    for pair in pairs:
                        pending.append(pool.submit(one, pair))
                        if len(pending) >= 4 * workers:
                            out.append(pending.popleft().result())
                            bar.update()
                    while pending:
                        out.append(pending.popleft().result())
                        bar.update()
                finally:
                    for fut in pending:
                        fut.cancel()
    finally:
        bar.close()
    return np.asarray(out, dtype=np.float64).reshape(-1, 2)


def flows_for_pairs(
    pairs: Iterable[tuple[np.ndarray, np.ndarray]],
    weighting: str = "magnitude",
    threshold: float = 0.5,
    workers: int | None = None,
    progress: bool = True,
    method: str = "farneback",
    total: int | None = None,
    **flow_params,
) -> np.ndarray:
    """Mean flow (N, 2) of many ``(frame_a, frame_b)`` pairs, in input order.

    Pairs are spread over a thread pool of ``workers`` threads (default: all cores;
    OpenCV releases the GIL, so threads scale without copying frames to processes). The
    iterable is consumed lazily, so a generator reading frames from disk is fine. RAFT
    runs serially (torch threads itself). ``flow_params`` go to :func:`dense_flow`.
    ``total``: the number of pairs of a generator, for the progress bar.
    """
    if total is None and hasattr(pairs, "__len__"):
        total = len(pairs)
    return _run_pairs(pairs, total, weighting, threshold, workers, progress, method, flow_params)


# --------------------------------------------------------------------------- projection


def _extrinsics_per_row(E: np.ndarray, n: int, rows: str) -> np.ndarray:
    """(n, 4, 4) world -> camera poses from one fixed (4, 4) pose or one per row."""
    if E.shape == (4, 4):
        return np.broadcast_to(E, (n, 4, 4))
    if E.shape != (n, 4, 4):
        raise ParameterError(
            f"extrinsics: expected (4, 4) or ({n}, 4, 4) for {n} {rows}, got {E.shape}"
        )
    return E


def project_points(
    points_world: np.ndarray, intrinsics: np.ndarray, extrinsics: np.ndarray
) -> np.ndarray:
    """Pixels (N, 2) of world points (N, 3) seen by a pinhole camera.

    ``extrinsics`` is world -> camera in OpenCV axes (x right, y down, z forward), one
    (4, 4) for all points or (N, 4, 4) one per point; ``pixel = K @ (E @ [p, 1])[:3] / z``.
    Points at or behind the camera (z <= 0) give NaN.
    """
    p = np.asarray(points_world, dtype=np.float64)
    K = np.asarray(intrinsics, dtype=np.float64)
    E = np.asarray(extrinsics, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != 3:
        raise ParameterError(f"points_world: expected (N, 3), got shape {p.shape}")
    if K.shape != (3, 3):
        raise ParameterError(f"intrinsics: expected (3, 3), got shape {K.shape}")
    E = _extrinsics_per_row(E, len(p), "points")
    cam = np.einsum("nij,nj->ni", E[:, :3, :3], p) + E[:, :3, 3]
    uvw = cam @ K.T
    z = uvw[:, 2:3]
    with np.errstate(divide="ignore", invalid="ignore"):
        pix = uvw[:, :2] / z
    pix[cam[:, 2] <= 0] = np.nan
    return pix


def projected_motion(
    eef_pos: np.ndarray,
    intrinsics: np.ndarray,
    extrinsics: np.ndarray,
    t: Sequence[int] | np.ndarray,
    k: int,
) -> np.ndarray:
    """Image-space end-effector displacement (N, 2) px from step t to t+k: the reference.

    ``pixel(eef_pos[t+k], extrinsics[t+k]) - pixel(eef_pos[t], extrinsics[t])``, each
    position projected with the camera pose of its own step (``extrinsics`` (T, 4, 4), or
    one (4, 4) for a fixed camera). Observation t is recorded before action t, so this is
    the motion caused by actions t..t+k-1, the same span as a stride-k frame pair.
    """
    eef = np.asarray(eef_pos, dtype=np.float64)
    E = np.asarray(extrinsics, dtype=np.float64)
    t = np.atleast_1d(np.asarray(t, dtype=np.int64))
    if eef.ndim != 2 or eef.shape[1] != 3:
        raise ParameterError(f"eef_pos: expected (T, 3), got shape {eef.shape}")
    E = _extrinsics_per_row(E, len(eef), "steps")
    if int(k) < 0:
        raise ParameterError(f"k: must be >= 0, got {k}")
    if t.size and (t.min() < 0 or t.max() + k >= len(eef)):
        raise ParameterError(
            f"t + k must lie in [0, {len(eef)}) for k={k}; got t in [{t.min()}, {t.max()}]"
        )
    start = project_points(eef[t], intrinsics, E[t])
    end = project_points(eef[t + k], intrinsics, E[t + k])
    return end - start


def commanded_motion(
    eef_pos: np.ndarray,
    actions: np.ndarray,
    intrinsics: np.ndarray,
    extrinsics: np.ndarray,
    t: Sequence[int] | np.ndarray,
    k: int,
    action_scale: float,
) -> np.ndarray:
    """Image-space displacement (N, 2) px of the *commanded* hand motion from step t over
    k steps: ``pixel(eef[t] + action_scale * sum(clip(actions[t:t+k, :3], -1, 1)))`` minus
    ``pixel(eef[t])``, both seen with the camera pose of step t (so it is meaningful for a
    fixed camera). Meta-World moves its mocap target by ``action * action_scale`` per
    step (``SawyerXYZEnv.action_scale`` = 1/100 m); the hand lags and is blocked by
    contacts, so this is a looser reference than :func:`projected_motion`."""
    eef = np.asarray(eef_pos, dtype=np.float64)
    acts = np.asarray(actions, dtype=np.float64)
    if acts.ndim != 2 or acts.shape[1] < 3 or len(acts) != len(eef):
        raise ParameterError(
            f"actions: expected ({len(eef)}, >=3) xyz deltas first, got shape {acts.shape}"
        )
    t = np.atleast_1d(np.asarray(t, dtype=np.int64))
    E = np.asarray(extrinsics, dtype=np.float64)
    E = _extrinsics_per_row(E, len(eef), "steps")
    if t.size and (t.min() < 0 or t.max() + k > len(eef)):
        raise ParameterError(
            f"t + k must lie in [0, {len(eef)}] for k={k}; got t in [{t.min()}, {t.max()}]"
        )
    csum = np.concatenate([np.zeros((1, 3)), np.cumsum(np.clip(acts[:, :3], -1, 1), axis=0)])
    target = eef[t] + action_scale * (csum[t + k] - csum[t])
    return project_points(target, intrinsics, E[t]) - project_points(eef[t], intrinsics, E[t])


# --------------------------------------------------------------------------- angles


def _vectors(v: np.ndarray, name: str) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    if v.shape[-1:] != (2,):
        raise ParameterError(f"{name}: expected (..., 2) vectors (dx, dy), got shape {v.shape}")
    return v


def wrap_degrees(angles) -> np.ndarray:
    """Angles (degrees) -> [0, 360). ``np.mod`` can return exactly 360.0 for tiny negatives."""
    wrapped = np.mod(angles, 360.0)
    return np.where(wrapped >= 360.0, 0.0, wrapped)


def angle_deg(vectors: np.ndarray) -> np.ndarray:
    """Direction of image-axis vectors (N, 2) -> (N,) degrees in [0, 360).

    Image y points down, so the angle is ``atan2(-dy, dx)``: 0° right, 90° up, 180° left,
    270° down. The zero vector gives 0°; mask static vectors yourself (or use
    :func:`angular_error_deg`, which gives NaN for them).
    """
    v = _vectors(vectors, "vectors")
    return wrap_degrees(np.degrees(np.arctan2(-v[..., 1], v[..., 0])))


def angle_bins(angles, n_bins: int = 8) -> np.ndarray:
    """Compass bin (N,) int of angles (N,) degrees: ``n_bins`` equal sectors, bin k centred
    on k * 360 / n_bins, counter-clockwise (with 8: 0 right, 1 up-right, 2 up, ..., 6 down,
    7 down-right)."""
    if not (isinstance(n_bins, (int, np.integer)) and not isinstance(n_bins, bool) and n_bins >= 1):
        raise ParameterError(f"n_bins must be a positive integer, got {n_bins!r}")
    width = 360.0 / n_bins
    shifted = np.mod(np.asarray(angles, dtype=float) + width / 2, 360.0)
    return np.floor(shifted / width).astype(np.int64) % n_bins  # % catches shifted == 360.0


def angular_error_deg(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Absolute angle between direction vectors a and b (N, 2) -> (N,) in [0, 180].

    Wraps around (350° vs 10° is 20°). NaN where either vector is zero or not finite,
    since a static vector has no direction; use ``np.nanmedian`` to summarise.
    """
    a, b = _vectors(a, "a"), _vectors(b, "b")
    diff = np.mod(angle_deg(a) - angle_deg(b) + 180.0, 360.0) - 180.0
    err = np.abs(diff)
    bad = (np.hypot(a[..., 0], a[..., 1]) == 0) | (np.hypot(b[..., 0], b[..., 1]) == 0)
    bad |= ~np.isfinite(a).all(axis=-1) | ~np.isfinite(b).all(axis=-1)
    return np.where(bad, np.nan, err)
