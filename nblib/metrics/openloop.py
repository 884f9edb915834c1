"""Open-loop action errors: first-step and chunk MAE, and MAE relative to the action std.

All errors are in the units of the stored actions (after un-normalising predictions).
``relative`` errors divide each dimension's MAE by that dimension's action std over the
training demos, so a constant predictor of the mean scores about 0.8 (the mean absolute
deviation of a Gaussian is 0.8 std) and a perfect one 0 (seed 001's table).
"""

from __future__ import annotations

import numpy as np

from nblib.errors import ParameterError


def first_step_mae(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    """MAE of the first action of each chunk, per dimension. pred/true (N, H, A) -> (A,)."""
    return np.abs(pred[:, 0] - true[:, 0]).mean(axis=0)


def chunk_mae(pred: np.ndarray, true: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """MAE over every valid step of the chunks, per dimension. mask (N, H) -> (A,)."""
    err = np.abs(pred - true)
    if mask is None:
        return err.reshape(-1, err.shape[-1]).mean(axis=0)
    w = mask.astype(float)[..., None]
    return (err * w).sum(axis=(0, 1)) / np.maximum(w.sum(axis=(0, 1)), 1.0)


def open_loop_errors(
    pred: np.ndarray, true: np.ndarray, mask: np.ndarray | None, action_std: np.ndarray
) -> dict:
    """First-step and chunk MAE (per dim and overall) and MAE/std per dim."""
    if pred.shape != true.shape:
        raise ParameterError(f"predictions {pred.shape} and targets {true.shape} differ in shape")
    std = np.maximum(np.asarray(action_std, dtype=float), 1e-8)
    first, chunk = first_step_mae(pred, true), chunk_mae(pred, true, mask)
    return {
        "first_step_mae": first.tolist(),
        "first_step_mae_mean": float(first.mean()),
        "chunk_mae": chunk.tolist(),
        "chunk_mae_mean": float(chunk.mean()),
        "relative_first_step": (first / std).tolist(),
        "relative_chunk": (chunk / std).tolist(),
        "relative_mean": float((chunk / std).mean()),
        "samples": int(pred.shape[0]),
    }


def relative_error_terms(
    pred: np.ndarray, true: np.ndarray, mask: np.ndarray | None, action_std: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per sample, the two sums whose ratio over all samples is the mean chunk MAE/std
    (``open_loop_errors(...)["relative_mean"]``): the |error|/std summed over the sample's
    valid steps and averaged over dims (N,), and its number of valid steps (N,). A
    bootstrap over samples resamples both together (a ratio estimator)."""
    if pred.shape != true.shape:
        raise ParameterError(f"predictions {pred.shape} and targets {true.shape} differ in shape")
    std = np.maximum(np.asarray(action_std, dtype=float), 1e-8)
    rel = (np.abs(pred - true) / std).mean(axis=-1)  # (N, H)
    w = np.ones(rel.shape) if mask is None else mask.astype(float)
    return (rel * w).sum(axis=1), w.sum(axis=1)
