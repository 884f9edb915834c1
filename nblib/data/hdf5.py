"""Opening demo files: natural demo order and one clear error for unreadable files."""

from __future__ import annotations

import re
from pathlib import Path

from nblib.errors import DataError


def natural_key(name: str) -> tuple:
    """Sort key putting demo_2 before demo_10."""
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name))


def open_h5(path: str | Path, rdcc_nbytes: int | None = None):
    """Open an HDF5 file read-only, turning h5py's OSError into a DataError naming it."""
    import h5py

    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: file does not exist")
    kwargs = {} if rdcc_nbytes is None else {"rdcc_nbytes": rdcc_nbytes}
    try:
        return h5py.File(path, "r", **kwargs)
    except OSError as err:
        raise DataError(f"{path}: not a readable HDF5 file (truncated or corrupt?): {err}") from err


def demo_names(file, group: str, path: str | Path = "") -> list[str]:
    """Demo group names under ``group`` in natural order; a DataError if it is missing."""
    if group not in file:
        raise DataError(
            f"{path or file.filename}: no group '{group}' (top-level keys: {sorted(file.keys())})"
        )
    return sorted(file[group].keys(), key=natural_key)
