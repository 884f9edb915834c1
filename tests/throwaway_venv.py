"""Venvs of their own for other people's packages whose pins nblib's venv cannot share
(LeRobot's dataset package, openpi-client): created under ``.cache/<name>`` (not
committed), rebuilt when their pinned requirements change, and a script run by their
Python in a bare environment."""

from __future__ import annotations

import subprocess
import venv
from collections.abc import Iterable, Mapping
from pathlib import Path

from filelock import FileLock

from nblib.paths import find_repo_root


def venv_folder(name: str) -> Path:
    """Where venv ``name`` lives: ``.cache/<name>`` in the checkout."""
    return find_repo_root() / ".cache" / name


def venv_python(name: str, requirements: list[str]) -> Path:
    """The Python of venv ``.cache/<name>`` holding ``requirements``, created first when
    missing or made from other requirements (pip from the machine's index)."""
    folder = venv_folder(name)
    python = folder / "bin" / "python"
    stamp = folder / "requirements.txt"
    wanted = "\n".join(requirements) + "\n"
    folder.parent.mkdir(parents=True, exist_ok=True)
    # Two test runs in one checkout must not build the same venv at once (the second would
    # clear the first's half-made folder); the lock sits beside the folder, which
    # clear=True empties. The one that waited then finds the stamp and reuses the venv.
    with FileLock(str(folder.with_name(name + ".lock"))):
        if python.exists() and stamp.exists() and stamp.read_text() == wanted:
            return python
        venv.EnvBuilder(clear=True, with_pip=True).create(folder)
        pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        result = subprocess.run([*pip, *requirements], capture_output=True, text=True)
        if result.returncode:
            raise RuntimeError(
                f"creating the venv {folder} failed:\n{result.stdout[-3000:]}\n"
                f"{result.stderr[-3000:]}"
            )
        # written last: a build cut short leaves no stamp and is redone next time
        stamp.write_text(wanted)
    return python


def run_in_venv(
    python: Path,
    script: Path,
    args: Iterable[object],
    *,
    timeout: float,
    what: str,
    env: Mapping[str, str] | None = None,
) -> str:
    """Run ``script`` with ``args`` by a venv's ``python`` (from :func:`venv_python`); its
    stdout, or an AssertionError saying ``what`` failed, with the end of its output. The
    environment is bare, so nothing of nblib's venv leaks in: the system's PATH, HOME in
    the venv's folder (pip's and the hub's caches land there, not in the user's home),
    and ``env``."""
    home = python.parent.parent  # <folder>/bin/python
    result = subprocess.run(
        [str(python), str(script), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={"PATH": "/usr/bin:/bin", "HOME": str(home), **(env or {})},
    )
    if result.returncode:
        raise AssertionError(f"{what} failed:\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}")
    return result.stdout
