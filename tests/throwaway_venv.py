"""Venvs of their own for other people's packages whose pins nblib's venv cannot share
(LeRobot's dataset package, openpi-client): created under ``.cache/<name>`` (not
committed) and rebuilt when their pinned requirements change."""

from __future__ import annotations

import subprocess
import venv
from pathlib import Path

from nblib.paths import find_repo_root


def venv_python(name: str, requirements: list[str]) -> Path:
    """The Python of venv ``.cache/<name>`` holding ``requirements``, created first when
    missing or made from other requirements (pip from the machine's index)."""
    folder = find_repo_root() / ".cache" / name
    python = folder / "bin" / "python"
    stamp = folder / "requirements.txt"
    wanted = "\n".join(requirements) + "\n"
    if python.exists() and stamp.exists() and stamp.read_text() == wanted:
        return python
    venv.EnvBuilder(clear=True, with_pip=True).create(folder)
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    result = subprocess.run([*pip, *requirements], capture_output=True, text=True)
    if result.returncode:
        raise RuntimeError(
            f"creating the venv {folder} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )
    stamp.write_text(wanted)
    return python
