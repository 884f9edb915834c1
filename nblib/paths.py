"""Where things live (the repository root, the manifests, the data and cache folders), and
how files are written there: atomically, so nobody ever reads half a file."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

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


# ----------------------------------------------------------------------------- atomic writes


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; when the block ends without an error it is
    moved onto ``path`` with ``os.replace``, else deleted.

    A reader (or a crash) sees the old file or the complete new one, never half of one: for
    writers that need a file name (h5py, ``torch.save``, ``np.save``). Parent folders are
    created; the new file gets mode 0644 (results are meant to be shared).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)  # an error (or KeyboardInterrupt) leaves nothing behind


@contextmanager
def atomic_write(path: str | os.PathLike[str], mode: str = "w") -> Iterator[IO]:
    """An open file (``mode`` ``"w"``: UTF-8 text, ``"wb"``: bytes) that replaces ``path``
    atomically when the block ends without an error (see :func:`atomic_path`)."""
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_write: mode must be 'w' or 'wb', got {mode!r}")
    with atomic_path(path) as tmp:
        with open(tmp, mode, **({"encoding": "utf-8"} if mode == "w" else {})) as handle:
            yield handle


def write_text_atomic(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; returns ``path``."""
    with atomic_write(path) as handle:
        handle.write(text)
    return Path(path)


def write_json_atomic(path: str | os.PathLike[str], data) -> Path:
    """Write ``data`` as indented UTF-8 JSON atomically. ``allow_nan=False`` makes a NaN that
    slipped through fail loudly instead of writing invalid JSON."""
    text = json.dumps(data, indent=2, allow_nan=False, ensure_ascii=False) + "\n"
    return write_text_atomic(path, text)


@contextmanager
def held_alone(lock_file: str | os.PathLike[str], busy: str) -> Iterator[None]:
    """Hold the lock file ``lock_file`` for the block, or raise :class:`NotebookError`
    saying ``busy`` at once when another process holds it (two batches or evaluations
    writing one folder)."""
    from filelock import FileLock, Timeout

    from nblib.errors import NotebookError

    lock = FileLock(str(lock_file))
    try:
        lock.acquire(timeout=0)
    except Timeout as error:
        raise NotebookError(busy) from error
    try:
        yield
    finally:
        lock.release()
