"""A throwaway venv with LeRobot's dataset package, to prove nblib's LeRobot folders are
LeRobot's: ``lerobot-dataset`` pins huggingface-hub < 0.36, which the transformers in
nblib's venv cannot share (see ../shared/FACTS.md), so it gets a venv of its own.

The venv lives in ``.cache/lerobot-venv`` (not committed) and is rebuilt when the pinned
requirements change: CPU torch from the machine's local wheel and lerobot-dataset. LeRobot
decodes video with torchcodec or torchvision; both ship on PyPI as CUDA builds that do not
load beside CPU torch (torchcodec needs libtorch_cuda.so), and the CPU builds' index
(download.pytorch.org) is not reachable here, so tests/lerobot_probe.py swaps in a PyAV
decoder with LeRobot's own nearest-timestamp rule and tolerance (see there).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from throwaway_venv import venv_python

from nblib.paths import find_repo_root

REQUIREMENTS = ["torch==2.13.0", "lerobot-dataset==0.4.4"]
VENV = find_repo_root() / ".cache" / "lerobot-venv"
PROBE = Path(__file__).with_name("lerobot_probe.py")


def lerobot_python() -> Path:
    """The venv's Python, creating the venv first (~1-2 min) when missing or outdated."""
    return venv_python(VENV.name, REQUIREMENTS)


def run_probe(*args: str, timeout: float = 600) -> None:
    """Run tests/lerobot_probe.py in the venv; a failure raises with its output."""
    result = subprocess.run(
        [str(lerobot_python()), str(PROBE), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={"PATH": "/usr/bin:/bin", "HOME": str(VENV), "HF_HUB_OFFLINE": "1"},
    )
    if result.returncode:
        raise AssertionError(
            f"{sys.executable} {PROBE.name} {' '.join(map(str, args))} failed:\n"
            f"{result.stdout[-3000:]}\n{result.stderr[-5000:]}"
        )
