"""Where things live: the repository root, the manifests, the default data folder."""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent


def find_repo_root(start: str | os.PathLike[str] | None = None) -> Path | None:
    """The first folder at or above ``start`` (default: cwd) holding a ``pyproject.toml``
    next to an ``nblib`` folder, or None."""
    here = Path(start if start is not None else Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "pyproject.toml").is_file() and (folder / "nblib").is_dir():
            return folder
    return None


def repo_root() -> Path:
    """The checkout holding this package, else the checkout around the cwd, else the cwd.

    An installed (non-editable) nblib has no checkout next to it; the cwd is then the
    best guess for where notebooks, manifests and data live.
    """
    return find_repo_root(PACKAGE_DIR) or find_repo_root() or Path.cwd()


def manifests_dir() -> Path:
    return Path(os.environ.get("NBLIB_MANIFESTS", repo_root() / "data_manifests"))


def data_dir() -> Path:
    """Folder for generated datasets (not committed); NBLIB_DATA overrides it."""
    return Path(os.environ.get("NBLIB_DATA", repo_root() / "data"))


def cache_dir() -> Path:
    """Folder of the frozen-feature cache (not committed); NBLIB_CACHE overrides it."""
    return Path(os.environ.get("NBLIB_CACHE", repo_root() / ".cache" / "features"))
