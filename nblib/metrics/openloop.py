"""Open-loop action errors and the overfit verdict.

All errors are in the units of the stored actions (after un-normalising predictions).
``relative`` errors divide each dimension's MAE by that dimension's action std over the
training demos, so a constant predictor of the mean scores about 0.8 (the mean absolute
deviation of a Gaussian is 0.8 std) and a perfect one 0 (seed 001's table).
"""

from __future__ import annotations

from dataclasses import dataclass, field

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


# Mean chunk MAE/std at or below which a head "overfits". Flow matching samples from noise,
# so even a well-fit flow head keeps some spread: its bar is higher than regression's.
DEFAULT_THRESHOLDS = {
    "regression": {"pass": 0.15, "partial": 0.35},
    "flow": {"pass": 0.25, "partial": 0.45},
}


@dataclass
class Verdict:
    verdict: str  # PASS / PARTIAL / FAIL
    reasons: list[str] = field(default_factory=list)


def overfit_verdict(train_errors: dict, head: str, thresholds: dict | None = None) -> Verdict:
    """Judge an overfit run by its action error on the training samples.

    PASS: mean relative chunk error <= ``pass``; PARTIAL: <= ``partial``; else FAIL. The
    loss is deliberately not used: a flow-matching loss measures a velocity error at random
    interpolation times, and stays high even when the sampled actions are right (seed 001).
    """
    if head not in DEFAULT_THRESHOLDS:
        raise ParameterError(f"head must be one of {sorted(DEFAULT_THRESHOLDS)}, got {head!r}")
    thresholds = thresholds or {}
    limits = {**DEFAULT_THRESHOLDS[head], **thresholds}
    if "partial" not in thresholds:  # a raised PASS bar lifts the default PARTIAL bar with it
        limits["partial"] = max(limits["partial"], limits["pass"])
    if not limits["pass"] <= limits["partial"]:
        raise ParameterError(
            f"thresholds: pass ({limits['pass']}) must be <= partial ({limits['partial']})"
        )
    rel = train_errors["relative_mean"]
    worst = int(np.argmax(train_errors["relative_chunk"]))
    detail = (
        f"mean chunk MAE/std on the training demos = {rel:.3f} "
        f"(worst dim {worst}: {train_errors['relative_chunk'][worst]:.3f})"
    )
    if rel <= limits["pass"]:
        return Verdict("PASS", [f"{detail} <= {limits['pass']}: the pipeline can fit these demos"])
    if rel <= limits["partial"]:
        return Verdict(
            "PARTIAL",
            [
                f"{detail} is between {limits['pass']} and {limits['partial']}: train longer or check the inputs"
            ],
        )
    return Verdict(
        "FAIL",
        [
            f"{detail} > {limits['partial']}: the pipeline cannot fit these demos; check that inputs differ between samples and reach the head"
        ],
    )
