"""A throwaway venv with the real ``openpi-client`` package (Physical Intelligence's
client for openpi policy servers), to prove ``nblib serve --protocol openpi`` speaks
openpi's protocol: openpi-client 0.1.2 pins numpy < 2, which nblib's venv (numpy 2) cannot
share (see ../shared/FACTS.md). The venv lives in ``.cache/openpi-venv`` (not committed)
and is rebuilt when the pinned requirements change."""

from __future__ import annotations

import json
from pathlib import Path

from throwaway_venv import run_in_venv, venv_folder, venv_python

# openpi-client 0.1.2 imports typing_extensions without declaring it
REQUIREMENTS = ["openpi-client==0.1.2", "typing_extensions"]
VENV = venv_folder("openpi-venv")
PROBE = Path(__file__).with_name("openpi_probe.py")


def openpi_python() -> Path:
    """The venv's Python, creating the venv first (~30 s) when missing or outdated."""
    return venv_python(VENV.name, REQUIREMENTS)


def run_probe(*args: str, timeout: float = 300) -> dict:
    """Run tests/openpi_probe.py in the venv; its JSON report, or an AssertionError with
    its output."""
    out = run_in_venv(openpi_python(), PROBE, args, timeout=timeout, what="openpi probe")
    return json.loads(out.strip().splitlines()[-1])
