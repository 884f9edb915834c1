"""Token tables: one row per frame pair with its tokens and what is known of its motion.

The format ``tokenize_dataset`` writes and users export from their own latent-action
checkpoints (Parquet, NPZ or CSV, read by :func:`load_token_file`): ``sample_id``,
``dataset``, the tokens (a ``tokens`` list or ``token_0..token_{L-1}`` columns), and at
least one motion source: frame references (``file, demo, t, k``, optionally ``camera``),
precomputed mean flow (``flow_dx, flow_dy``) or actions (``action_dx, action_dy``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from nblib.errors import DataError

TOKEN_COLUMNS = (
    "sample_id",
    "dataset",
    "file",
    "demo",
    "t",
    "k",
    "camera",
    "task",
    "instruction",
    "tokens",
    "flow_dx",
    "flow_dy",
    "action_dx",
    "action_dy",
)
FRAME_COLUMNS = ("file", "demo", "t", "k")
MOTION_GROUPS = {
    "frame references": FRAME_COLUMNS,
    "flow": ("flow_dx", "flow_dy"),
    "actions": ("action_dx", "action_dy"),
}


# ----------------------------------------------------------------------------- token tables


def token_table(cols: dict, tokens: np.ndarray) -> pd.DataFrame:
    """A DataFrame with TOKEN_COLUMNS (missing ones NaN/None), then token_0..token_{L-1}."""
    df = pd.DataFrame(cols)
    df["tokens"] = [list(map(int, row)) for row in tokens]
    for i in range(tokens.shape[1]):
        df[f"token_{i}"] = tokens[:, i].astype(np.int64)
    for name in TOKEN_COLUMNS:
        if name not in df:
            df[name] = (
                np.nan if name.startswith(("flow_", "action_")) or name in ("t", "k") else None
            )
    order = list(TOKEN_COLUMNS) + [f"token_{i}" for i in range(tokens.shape[1])]
    return df[order + [c for c in df.columns if c not in order]]


def load_token_file(path):
    """Read a token table exported from any LAQ checkpoint; same columns as ``tokenize_dataset``.

    Formats (by suffix): ``.parquet``, ``.npz`` (one array per column), ``.csv``.

    Required columns:
      - ``sample_id``: unique id of the frame pair (str or int).
      - ``dataset``: which dataset / embodiment / camera the pair comes from (str).
      - tokens, one of: ``tokens`` holding a list/array of L ints per row (Parquet; in NPZ a
        (N, L) int array), ``token_0 .. token_{L-1}`` int columns (any format), or in CSV a
        space-separated string such as ``"3 7 2 1"``.

    And at least one of these groups (all columns of the group):
      - frame references ``file``, ``demo``, ``t``, ``k`` (optionally ``camera``): the pair is
        frames t and t+k of that demo in that HDF5 file, so flow can be computed from it;
      - precomputed motion ``flow_dx``, ``flow_dy`` (mean optical flow, pixels, +x right, +y down);
      - actions ``action_dx``, ``action_dy`` (commanded motion in the robot's frame).

    NPZ: ``np.savez`` takes ``file`` as its own argument, so store that column as ``file_``
    (read back as ``file``); strings as unicode arrays (``allow_pickle`` is off).

    Any other columns are kept. Missing optional columns become NaN/None. Raises DataError
    naming the file, the missing column(s) and the columns present.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such token file")
    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            df = pd.read_parquet(path)
        elif suffix == ".csv":
            df = pd.read_csv(path)
        elif suffix == ".npz":
            with np.load(path, allow_pickle=False) as npz:
                arrays = {k: npz[k] for k in npz.files}
            if "file_" in arrays and "file" not in arrays:  # np.savez reserves ``file``
                arrays["file"] = arrays.pop("file_")
            if "tokens" in arrays and arrays["tokens"].ndim == 2:
                arrays["tokens"] = list(arrays["tokens"])
            lengths = {k: len(v) for k, v in arrays.items()}
            if len(set(lengths.values())) > 1:
                raise DataError(f"{path}: NPZ arrays differ in length: {lengths}")
            df = pd.DataFrame(arrays)
        else:
            raise DataError(
                f"{path}: unknown token file type {suffix!r}; use .parquet, .npz or .csv"
            )
    except DataError:
        raise
    except Exception as exc:
        raise DataError(f"{path}: could not read as {suffix[1:]} ({exc})") from exc

    present = list(df.columns)
    for name in ("sample_id", "dataset"):
        if name not in df:
            raise DataError(f"{path}: missing required column {name!r}; columns present: {present}")
    tokens = _read_tokens(df, path, present)
    if not any(all(c in df for c in group) for group in MOTION_GROUPS.values()):
        wanted = "; ".join(f"{name} {list(cols)}" for name, cols in MOTION_GROUPS.items())
        raise DataError(
            f"{path}: needs at least one column group of: {wanted}; columns present: {present}"
        )
    if df["sample_id"].duplicated().any():
        dup = df["sample_id"][df["sample_id"].duplicated()].iloc[0]
        raise DataError(f"{path}: sample_id {dup!r} appears more than once")
    df = df.drop(columns=[c for c in df.columns if c == "tokens" or _is_token_col(c)])
    df["dataset"] = df["dataset"].astype(str)
    return token_table({c: df[c].to_numpy() for c in df.columns}, tokens)


def _is_token_col(name) -> bool:
    return isinstance(name, str) and name.startswith("token_") and name[6:].isdigit()


def _read_tokens(df, path: Path, present: list) -> np.ndarray:
    """(N, L) int64 tokens from a ``tokens`` column or ``token_i`` columns."""
    cols = sorted((c for c in df.columns if _is_token_col(c)), key=lambda c: int(c[6:]))
    if "tokens" in df:
        rows = [
            np.asarray(str(v).split() if isinstance(v, str) else v, dtype=np.float64).ravel()
            for v in df["tokens"]
        ]
        lengths = {len(r) for r in rows}
        if len(lengths) > 1:
            raise DataError(f"{path}: column 'tokens' holds sequences of lengths {sorted(lengths)}")
        width = lengths.pop() if lengths else 0
        values = np.stack(rows) if rows else np.zeros((0, width))
    elif cols:
        if [int(c[6:]) for c in cols] != list(range(len(cols))):
            raise DataError(f"{path}: token columns {cols} are not token_0..token_{len(cols) - 1}")
        values = df[cols].to_numpy(dtype=np.float64)
    else:
        raise DataError(
            f"{path}: missing required column 'tokens' (or token_0..token_{{L-1}}); "
            f"columns present: {present}"
        )
    if values.size and (
        not np.isfinite(values).all() or (values != np.round(values)).any() or values.min() < 0
    ):
        raise DataError(f"{path}: tokens must be non-negative integers")
    return values.astype(np.int64)


def token_matrix(df: pd.DataFrame) -> np.ndarray:
    """(N, L) int token sequences of a token table, from its ``token_0..`` columns or its
    ``tokens`` list column."""
    cols = sorted((c for c in df.columns if _is_token_col(c)), key=lambda c: int(c[6:]))
    if cols:
        return df[cols].to_numpy(dtype=np.int64)
    if "tokens" in df.columns:
        return np.stack([np.asarray(t, dtype=np.int64) for t in df["tokens"]])
    raise DataError(
        f"token table has no 'tokens' or 'token_<i>' columns (columns: {list(df.columns)})"
    )
