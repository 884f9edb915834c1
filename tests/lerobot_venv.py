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

import sys
from pathlib import Path

from throwaway_venv import run_in_venv, venv_folder, venv_python

REQUIREMENTS = ["torch==2.13.0", "lerobot-dataset==0.4.4"]
VENV = venv_folder("lerobot-venv")
PROBE = Path(__file__).with_name("lerobot_probe.py")


def lerobot_python() -> Path:
    """The venv's Python, creating the venv first (~1-2 min) when missing or outdated."""
    return venv_python(VENV.name, REQUIREMENTS)


def run_probe(*args: str, timeout: float = 600) -> None:
    """Run tests/lerobot_probe.py in the venv; a failure raises with its output."""
    run_in_venv(
        lerobot_python(),
        PROBE,
        args,
        timeout=timeout,
        what=f"{sys.executable} {PROBE.name} {' '.join(map(str, args))}",
        env={"HF_HUB_OFFLINE": "1"},
    )
