"""Where things live: the repository root, the manifests, the default data folder."""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent


def repo_root() -> Path:
    """The checkout holding this package (the folder with pyproject.toml), else the cwd.

    An installed (non-editable) nblib has no checkout next to it; the cwd is then the
    best guess for where notebooks, manifests and data live.
    """
    candidate = PACKAGE_DIR.parent
    if (candidate / "pyproject.toml").exists() and (candidate / "data_manifests").is_dir():
        return candidate
    return Path.cwd()


def manifests_dir() -> Path:
    return Path(os.environ.get("NBLIB_MANIFESTS", repo_root() / "data_manifests"))


def data_dir() -> Path:
    """Folder for generated datasets (not committed); NBLIB_DATA overrides it."""
    return Path(os.environ.get("NBLIB_DATA", repo_root() / "data"))
