"""Geometry tokens of Meta-World frames: metric 3-D point maps from the simulator's depth.

Seed 002 feeds the action expert the features of a frozen 3-D foundation model
(MapAnything: per-pixel metric 3-D points from images), cached because the encoder never
changes. No such pretrained model can be loaded offline here, so the frozen encoder of this
suite is the quantity such a model estimates, taken exact from the simulator: each frame's
metric depth, back-projected with the camera's OpenCV intrinsics and extrinsics to world
coordinates, cut into ``patch``-pixel patches, each patch a token of its points sampled on a
``grid`` x ``grid`` lattice (x, y, z interleaved). With two 128-px cameras, patch 16 and
grid 4: G = 128 tokens of 48 values per frame. A learned encoder would plug in as another
function of the frames with the same (G, D) output.

Demonstrations store RGB only, so their depth comes from replaying them: Meta-World is
deterministic, and the replay resets with the demo's seed and applies its recorded actions;
every replayed state is checked against the recorded one, so a replay that diverges is an
error, not silently wrong geometry. Tokens are cached per demo under the feature cache
(:func:`nblib.paths.cache_dir`), keyed by what determines them.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from nblib.errors import DataError, ParameterError

PATCH = 16  # pixels per patch side
GRID = 4  # points per patch side
MAX_DEPTH = 3.0  # metres; farther pixels (beyond the table and walls) are clipped
ENCODER_VERSION = 1  # bump when the token layout changes: cached tokens are then recomputed


def point_map(depth: np.ndarray, intrinsics: np.ndarray, extrinsics: np.ndarray) -> np.ndarray:
    """(H, W) metric depth along the optical axis → (H, W, 3) world coordinates, with
    OpenCV intrinsics (pixel-index coordinates) and world → camera ``extrinsics``."""
    depth = np.minimum(np.asarray(depth, dtype=np.float64), MAX_DEPTH)
    height, width = depth.shape
    v, u = np.mgrid[0:height, 0:width].astype(np.float64)
    fx, fy = intrinsics[0, 0], intrinsics[1, 1]
    cx, cy = intrinsics[0, 2], intrinsics[1, 2]
    camera = np.stack([(u - cx) * depth / fx, (v - cy) * depth / fy, depth], axis=-1)
    rot, trans = extrinsics[:3, :3].astype(np.float64), extrinsics[:3, 3].astype(np.float64)
    return ((camera - trans) @ rot).astype(np.float32)  # rot^T (p - t), row vectors


def point_tokens(points: np.ndarray, patch: int = PATCH, grid: int = GRID) -> np.ndarray:
    """(H, W, 3) point map → (G, 3 · grid²) tokens, one per ``patch`` x ``patch`` patch in
    row-major order, each the patch's points on a ``grid`` x ``grid`` lattice."""
    height, width, _ = points.shape
    if height % patch or width % patch or patch % grid:
        raise ParameterError(
            f"point_tokens: frames of {height}x{width} px need a patch size dividing both "
            f"(patch={patch}) and a grid dividing the patch (grid={grid})"
        )
    step = patch // grid
    sampled = points[step // 2 :: step, step // 2 :: step]  # (H/step, W/step, 3)
    rows, cols = height // patch, width // patch
    tokens = sampled.reshape(rows, grid, cols, grid, 3).transpose(0, 2, 1, 3, 4)
    return np.ascontiguousarray(tokens.reshape(rows * cols, grid * grid * 3))


def frame_tokens(depths: dict, intrinsics: dict, extrinsics: dict, cameras) -> np.ndarray:
    """One frame's tokens: every camera's, in ``cameras`` order, concatenated → (G, D)."""
    return np.concatenate(
        [point_tokens(point_map(depths[c], intrinsics[c], extrinsics[c])) for c in cameras]
    )


# ----------------------------------------------------------------------------- demos


def cache_key(record: dict, cameras, size: int) -> str:
    digest = hashlib.sha1()
    digest.update(f"{ENCODER_VERSION}/{PATCH}/{GRID}/{MAX_DEPTH}/{record['task']}".encode())
    digest.update(f"/{record['seed']}/{','.join(cameras)}/{size}".encode())
    digest.update(np.ascontiguousarray(record["actions"]).tobytes())
    return digest.hexdigest()[:20]


def replay_tokens(record: dict, cameras, size: int, atol: float = 1e-4) -> np.ndarray:
    """Replay a demo in Meta-World and return its geometry tokens (T, G, D) float32.
    Raises :class:`DataError` when a replayed state departs from the recorded one."""
    os.environ.setdefault("MUJOCO_GL", "egl")
    from nblib.data.metaworld_gen import Cameras, make_env, reset_layout

    env = make_env(record["task"])
    cams = Cameras(env.model, tuple(cameras), size)
    try:
        obs = reset_layout(env, record["seed"])
        intrinsics = {c: cams.intrinsics(c) for c in cameras}
        out = []
        for t, action in enumerate(record["actions"]):
            gap = float(np.abs(obs.astype(np.float32) - record["state"][t]).max())
            if gap > atol:
                raise DataError(
                    f"replay of {record['task']} (seed {record['seed']}) departs from the "
                    f"recorded state at step {t} (max difference {gap:.2e}): the demo was not "
                    "rendered by this Meta-World version, so its depth cannot be reproduced"
                )
            depths = {c: cams.render_depth(env.data, c) for c in cameras}
            extrinsics = {c: cams.extrinsics(env.data, c) for c in cameras}
            out.append(frame_tokens(depths, intrinsics, extrinsics, cameras))
            obs, *_ = env.step(action)
        return np.stack(out)
    finally:
        cams.close()
        env.close()


def geometry_tokens(
    store, demos: list[str] | None = None, cache: str | Path | None = None, progress: bool = True
) -> dict[str, np.ndarray]:
    """Every demo's geometry tokens (T, G, D) for ``store``'s cameras at its frame size,
    from the cache when present, else replayed (and cached). The store must have replay
    records (``store.has("replay_records")``: demos nblib generated)."""
    from tqdm.auto import tqdm

    from nblib.paths import atomic_path, cache_dir

    demos = list(store.demos if demos is None else demos)
    folder = Path(cache) if cache is not None else cache_dir() / "geometry"
    size = int(store.frames(demos[0], store.cameras[0], 0, 1).shape[1]) if demos else 0
    out = {}
    records = store.replay_records(demos)  # a CapabilityError for data nblib did not generate
    for demo in tqdm(demos, desc="geometry tokens", disable=not progress):
        record = records[demo]
        path = folder / f"{cache_key(record, store.cameras, size)}.npy"
        if path.is_file():
            out[demo] = np.load(path)
            continue
        tokens = replay_tokens(record, store.cameras, size)
        folder.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp, open(tmp, "wb") as handle:
            np.save(handle, tokens)
        out[demo] = tokens
    return out
