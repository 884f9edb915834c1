"""Normalisation statistics for actions and proprio: computed once, stored as JSON.

Three conventions are in use across VLA code bases, so all are kept:
``mean_std`` (z-score), ``min_max`` and ``q01_q99`` (OpenVLA-style robust bounds), the
latter two mapping to [-1, 1].
"""

from __future__ import annotations

import json
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from nblib.errors import DataError, ParameterError
from nblib.paths import write_json_atomic

MODES = ("mean_std", "min_max", "q01_q99")
_EPS = 1e-6  # floor for std/range so constant dimensions do not divide by zero


@dataclass
class Stats:
    """Per-dimension statistics of one array kind, each a list of length D."""

    mean: list[float]
    std: list[float]
    min: list[float]
    max: list[float]
    q01: list[float]
    q99: list[float]
    count: int

    @classmethod
    def of(cls, rows: np.ndarray) -> Stats:
        """Statistics of ``rows`` (N, D); refuses NaN/Inf rather than averaging them away."""
        rows = np.asarray(rows, dtype=np.float64)
        if rows.ndim != 2 or len(rows) == 0:
            raise DataError(f"statistics need a non-empty (N, D) array, got shape {rows.shape}")
        if not np.isfinite(rows).all():
            bad = np.argwhere(~np.isfinite(rows))[0]
            raise DataError(f"statistics: non-finite value at row {bad[0]}, dim {bad[1]}")
        q01, q99 = np.quantile(rows, [0.01, 0.99], axis=0)
        return cls(
            mean=rows.mean(0).tolist(),
            std=rows.std(0).tolist(),
            min=rows.min(0).tolist(),
            max=rows.max(0).tolist(),
            q01=q01.tolist(),
            q99=q99.tolist(),
            count=len(rows),
        )

    def _bounds(self, mode: str) -> tuple[np.ndarray, np.ndarray]:
        """(offset, scale) so that normalised = (x - offset) / scale."""
        if mode == "mean_std":
            return np.array(self.mean), np.maximum(np.array(self.std), _EPS)
        lo, hi = (self.min, self.max) if mode == "min_max" else (self.q01, self.q99)
        lo, hi = np.array(lo), np.array(hi)
        return (hi + lo) / 2, np.maximum((hi - lo) / 2, _EPS)

    def normalize(self, x: np.ndarray, mode: str) -> np.ndarray:
        _check_mode(mode)
        offset, scale = self._bounds(mode)
        out = (x - offset) / scale
        if mode == "q01_q99":
            out = np.clip(out, -1.0, 1.0)  # outliers beyond the 1% tails are clipped, by design
        return out.astype(np.float32)

    def unnormalize(self, x: np.ndarray, mode: str) -> np.ndarray:
        _check_mode(mode)
        offset, scale = self._bounds(mode)
        return (x * scale + offset).astype(np.float32)


def _check_mode(mode: str) -> None:
    if mode not in MODES:
        raise ParameterError(f"normalization: unknown mode {mode!r}; choose one of {MODES}")


@dataclass
class NormStats:
    """Statistics of actions and proprio over a set of demos (usually the training split)."""

    actions: Stats
    proprio: Stats
    demos: list[str]

    def save(self, path: str | Path) -> None:
        write_json_atomic(path, asdict(self))

    @classmethod
    def load(cls, path: str | Path) -> NormStats:
        data = json.loads(Path(path).read_text())
        return cls(Stats(**data["actions"]), Stats(**data["proprio"]), data["demos"])


def load_norm_stats(store, cache: str | Path | None = None) -> NormStats:
    """Statistics over ``store.demos`` (any :class:`~nblib.data.store.StoreBase`), cached
    in a JSON file, by default next to the data (``store.norm_stats_cache()``).

    The cache is keyed by the data's size and modification time, the mapping and the demo
    list, so statistics of the training split are never confused with those of another
    subset, nor with those of a regenerated file. A cache that cannot be read or written
    (a dataset on read-only storage) is skipped with a warning: the statistics are then
    computed from the data, as they would be without a cache.
    """
    cache = Path(cache) if cache else store.norm_stats_cache()
    try:
        entries = json.loads(cache.read_text()) if cache.exists() else {}
    except (OSError, ValueError) as exc:
        warnings.warn(f"{cache}: unreadable normalisation cache, recomputing ({exc})", stacklevel=2)
        entries = {}
    key = f"{store.stamp()}:{store.mapping.name}:" + ",".join(store.demos)
    if key in entries:
        return NormStats(
            Stats(**entries[key]["actions"]), Stats(**entries[key]["proprio"]), store.demos
        )
    stats = store.norm_stats()
    entries[key] = asdict(stats)
    try:
        write_json_atomic(cache, entries)
    except OSError as exc:
        warnings.warn(f"{cache}: cannot write the normalisation cache ({exc})", stacklevel=2)
    return stats
