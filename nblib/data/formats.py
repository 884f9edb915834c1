"""The one place that tells dataset formats apart: a folder is a LeRobot dataset, a file an
HDF5 demo file. :func:`open_store` opens either as a store, :func:`check_dataset` checks
either; everything above works on stores (:mod:`nblib.data.store`) and never asks which
format it has.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nblib.data.hdf5 import DemoStore
from nblib.data.hdf5_check import check_hdf5
from nblib.data.lerobot import LeRobotStore
from nblib.data.lerobot_check import check_lerobot
from nblib.data.mapping import KeyMapping
from nblib.data.store import StoreBase
from nblib.data.summary import DatasetSummary
from nblib.errors import ParameterError

# The key mapping each format is read with unless told otherwise.
DEFAULT_MAPPING = {"lerobot": "lerobot", "hdf5": "metaworld"}


def dataset_format(path: str | Path) -> str:
    """``"lerobot"`` for a folder (LeRobot datasets are folders), else ``"hdf5"``."""
    return "lerobot" if Path(path).is_dir() else "hdf5"


def is_lerobot_folder(path: str | Path) -> bool:
    return dataset_format(path) == "lerobot"


def open_store(
    path: str | Path,
    mapping: str | KeyMapping | None = None,
    demos: list[str] | None = None,
    cameras: list[str] | None = None,
) -> StoreBase:
    """The store for ``path``: a LeRobot folder (v3.0, v2.1, v2.0; mapping default
    ``lerobot``) or an HDF5 file (mapping default ``metaworld``)."""
    fmt = dataset_format(path)
    store = LeRobotStore if fmt == "lerobot" else DemoStore
    return store(path, mapping=mapping or DEFAULT_MAPPING[fmt], demos=demos, cameras=cameras)


def open_like(path: str | Path, store: StoreBase | None) -> StoreBase:
    """``path`` read the way ``store`` reads its own data: with ``store``'s key mapping when
    ``path`` has the same format, else with its format's default mapping."""
    same = store is not None and store.mapping.format == dataset_format(path)
    return open_store(path, mapping=store.mapping if same else None)


def check_dataset(
    path: str | Path, mapping: str | Path | KeyMapping | None = None, horizon: int | None = None
) -> DatasetSummary:
    """Validate the dataset at ``path``; raise DataError at the first problem, naming the
    file, key or episode and the step. A file is checked as HDF5 demos by
    :func:`~nblib.data.hdf5_check.check_hdf5` (default mapping ``metaworld``), a folder as
    a LeRobot dataset by :func:`~nblib.data.lerobot_check.check_lerobot` (default mapping
    ``lerobot``). ``horizon`` (the action-chunk length, if given) must fit in every demo."""
    if horizon is not None and (not isinstance(horizon, int | np.integer) or horizon < 1):
        raise ParameterError(f"horizon: need a positive number of steps, got {horizon!r}")
    fmt = dataset_format(path)
    check = check_lerobot if fmt == "lerobot" else check_hdf5
    return check(Path(path), mapping=mapping or DEFAULT_MAPPING[fmt], horizon=horizon)
