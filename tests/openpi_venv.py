"""A throwaway venv with the real ``openpi-client`` package (Physical Intelligence's
client for openpi policy servers), to prove ``nblib serve --protocol openpi`` speaks
openpi's protocol: openpi-client 0.1.2 pins numpy < 2, which nblib's venv (numpy 2) cannot
share (see ../shared/FACTS.md). The venv lives in ``.cache/openpi-venv`` (not committed)
and is rebuilt when the pinned requirements change."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from throwaway_venv import venv_python

from nblib.paths import find_repo_root

# openpi-client 0.1.2 imports typing_extensions without declaring it
REQUIREMENTS = ["openpi-client==0.1.2", "typing_extensions"]
VENV = find_repo_root() / ".cache" / "openpi-venv"
PROBE = Path(__file__).with_name("openpi_probe.py")


def openpi_python() -> Path:
    """The venv's Python, creating the venv first (~30 s) when missing or outdated."""
    return venv_python(VENV.name, REQUIREMENTS)


def run_probe(*args: str, timeout: float = 300) -> dict:
    """Run tests/openpi_probe.py in the venv; its JSON report, or an AssertionError with
    its output."""
    result = subprocess.run(
        [str(openpi_python()), str(PROBE), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={"PATH": "/usr/bin:/bin", "HOME": str(VENV)},
    )
    if result.returncode:
        raise AssertionError(
            f"openpi probe failed:\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}"
        )
    return json.loads(result.stdout.strip().splitlines()[-1])
