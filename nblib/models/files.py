"""Model files: one torch file per model, tagged with its format, written atomically."""

from __future__ import annotations

from pathlib import Path

import torch

from nblib.errors import DataError
from nblib.paths import atomic_path


def saved_file(path: str | Path, name: str) -> Path | None:
    """The saved-policy file ``name`` at ``path``: ``path`` itself, ``path/<name>`` or
    ``path/policy/<name>`` (a notebook-01 run folder); None when there is none."""
    path = Path(path).expanduser()
    for candidate in (path, path / name, path / "policy" / name):
        if candidate.is_file() and candidate.name == name:
            return candidate
    return None


def save_tagged(path: str | Path, fmt: str, state: dict) -> Path:
    """``torch.save`` of ``{"format": fmt, **state}`` to ``path``, atomically (tensors and
    plain containers only, so it loads with ``weights_only=True``)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        torch.save({"format": fmt, **state}, tmp)
    return path


def load_tagged(path: str | Path, fmt: str, kind: str) -> dict:
    """The dict saved by :func:`save_tagged` with format ``fmt``; a missing, unreadable or
    other file is a DataError naming it and ``kind`` (what it should have been)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such {kind} file")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle / zip errors of every kind
        raise DataError(f"{path}: not a readable torch file ({exc})") from exc
    if not isinstance(state, dict) or state.get("format") != fmt:
        got = state.get("format") if isinstance(state, dict) else type(state).__name__
        raise DataError(f"{path}: not a {kind} file (format {got!r}, expected {fmt!r})")
    return state
