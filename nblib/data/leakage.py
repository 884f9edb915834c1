"""Leakage report: identical or near-identical frames shared by train and val episodes.

A validation set that shares frames with training (same scene, same arm pose) measures
memorisation, not generalisation (seed 004). Frames are compared as small grayscale
thumbnails: ``exact`` pairs have identical bytes, ``near`` pairs an RMS difference below
``threshold`` (in 0..255 grey levels) between 32x32 thumbnails. The default 1.0 sits below
the ~1.2 RMS noise of 6-bit colour quantisation, so a "near" frame differs from its train
twin by little more than storage noise. The distribution of nearest-train distances is
reported too: in a single simulated scene many frames are close without being duplicates.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np

from nblib.data.store import StoreBase


@dataclass
class LeakageReport:
    camera: str
    threshold: float
    thumb: int
    val_frames: int
    exact: int  # val frames whose bytes equal a train frame
    near: int  # val frames within `threshold` of some train frame (includes exact)
    per_val_demo: dict[str, float] = field(default_factory=dict)  # fraction of near frames
    nn_quantiles: dict[str, float] = field(default_factory=dict)  # of nearest-train RMS distance
    examples: list[dict] = field(default_factory=list)  # closest pairs, for display
    nn_rms: list[float] = field(default_factory=list)  # per val frame: RMS to nearest train

    @property
    def near_fraction(self) -> float:
        return self.near / self.val_frames if self.val_frames else 0.0

    def summary(self) -> dict:
        return {
            "camera": self.camera,
            "val_frames": self.val_frames,
            "exact_duplicates": self.exact,
            "near_duplicates": self.near,
            "near_fraction": round(self.near_fraction, 4),
            "threshold": self.threshold,
            "nn_rms_median": self.nn_quantiles.get("q50"),
        }


def _thumbnails(store: StoreBase, demos: list[str], camera: str, size: int):
    """(N, size*size) float32 grayscale thumbnails, byte digests and (demo, t) per row."""
    import cv2

    thumbs, digests, where = [], [], []
    for d in demos:
        frames = store.frames(d, camera, 0, store.lengths[d])
        for t, frame in enumerate(frames):
            grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
            thumbs.append(cv2.resize(grey, (size, size), interpolation=cv2.INTER_AREA).ravel())
            digests.append(hashlib.blake2b(frame.tobytes(), digest_size=16).digest())
            where.append((d, t))
    return np.asarray(thumbs, dtype=np.float32), digests, where


def leakage_report(
    store: StoreBase,
    train: list[str],
    val: list[str],
    camera: str | None = None,
    threshold: float = 1.0,
    thumb: int = 32,
    n_examples: int = 6,
) -> LeakageReport:
    """Compare every val frame with every train frame of one camera."""
    from sklearn.neighbors import NearestNeighbors

    camera = camera or store.cameras[0]
    tr, tr_dig, tr_where = _thumbnails(store, train, camera, thumb)
    va, va_dig, va_where = _thumbnails(store, val, camera, thumb)
    if len(va) == 0 or len(tr) == 0:
        return LeakageReport(camera, threshold, thumb, len(va), 0, 0)
    exact_set = set(tr_dig)
    exact = np.array([d in exact_set for d in va_dig])
    nn = NearestNeighbors(n_neighbors=1).fit(tr)
    dist, idx = nn.kneighbors(va)
    # Euclidean distance over size*size pixels -> RMS grey-level difference.
    rms = dist[:, 0] / np.sqrt(tr.shape[1])
    near = (rms < threshold) | exact
    per_demo: dict[str, list[bool]] = {}
    for (d, _), flag in zip(va_where, near, strict=True):
        per_demo.setdefault(d, []).append(bool(flag))
    order = np.argsort(rms)[:n_examples]
    examples = [
        {
            "val_demo": va_where[i][0],
            "val_t": va_where[i][1],
            "train_demo": tr_where[idx[i, 0]][0],
            "train_t": tr_where[idx[i, 0]][1],
            "rms_diff": float(rms[i]),
        }
        for i in order
    ]
    return LeakageReport(
        camera=camera,
        threshold=threshold,
        thumb=thumb,
        val_frames=len(va),
        exact=int(exact.sum()),
        near=int(near.sum()),
        per_val_demo={d: float(np.mean(v)) for d, v in per_demo.items()},
        examples=examples,
        nn_rms=[float(v) for v in rms],
        nn_quantiles={
            f"q{int(q * 100):02d}": float(v)
            for q, v in zip(
                (0.0, 0.1, 0.5, 0.9, 1.0), np.quantile(rms, [0, 0.1, 0.5, 0.9, 1]), strict=True
            )
        },
    )
