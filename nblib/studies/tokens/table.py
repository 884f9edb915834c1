"""The token table every step of notebook 04 passes on: one row per frame pair and the
analysed token id of each row.

The rows (``df``) are a table as :func:`nblib.models.latent.tokenize_dataset` writes and
:func:`nblib.models.latent.load_token_file` reads: ``dataset``, ``demo``, ``t``, ``k``,
``task``, ``instruction``, the tokens, and the motion columns the steps add (mean optical
flow, the projected end-effector motion). Motion is in image convention (+x right, +y
down).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from nblib.errors import DataError, ParameterError
from nblib.models.latent.tokens import token_matrix

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


@dataclass(frozen=True)
class TokenTable:
    """Frame pairs (``df``, one row each) and the analysed token id of each (``ids`` (N,)
    ints in [0, n_codes))."""

    df: pd.DataFrame
    ids: np.ndarray
    n_codes: int

    def __post_init__(self):
        ids = np.asarray(self.ids)
        if ids.shape != (len(self.df),):
            raise ParameterError(
                f"TokenTable: {len(self.df)} rows but ids of shape {ids.shape}; expected one "
                "id per row"
            )
        object.__setattr__(self, "ids", ids)

    @classmethod
    def of(cls, df: pd.DataFrame, position: int | str, codebook_size: int) -> TokenTable:
        """The table with the token at ``position`` (or ``"combined"``) as each row's id."""
        ids, n_codes = token_ids(df, position, codebook_size)
        return cls(df, ids, n_codes)

    def __len__(self) -> int:
        return len(self.df)

    def motion(self, source: str = "flow") -> np.ndarray:
        """(N, 2) motion of each row (see :func:`motion_vectors`)."""
        return motion_vectors(self.df, source)

    def moving(self, source: str, min_magnitude: float) -> np.ndarray:
        """(N,) rows whose motion is known, non-zero and at least ``min_magnitude`` long."""
        vec = self.motion(source)
        length = np.hypot(vec[:, 0], vec[:, 1])
        return np.isfinite(length) & (length >= min_magnitude) & (length > 0)

    def with_rows(self, df: pd.DataFrame) -> TokenTable:
        """The same ids with new columns (``df`` must keep the rows and their order)."""
        if len(df) != len(self.df):
            raise ParameterError(f"TokenTable: {len(df)} rows given for {len(self.df)}")
        return replace(self, df=df)

    def subset(self, rows: np.ndarray) -> TokenTable:
        """The rows ``rows`` (a boolean mask (N,) or indices), ids with them."""
        rows = np.asarray(rows)
        idx = np.flatnonzero(rows) if rows.dtype == bool else rows
        return TokenTable(self.df.iloc[idx].reset_index(drop=True), self.ids[idx], self.n_codes)
