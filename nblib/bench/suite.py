"""``nblib bench suite``: the default suite's wall time against its 8-minute target.

Without ``--fresh``: ``nblib run-all`` in this checkout (set-up and data already there),
each notebook's seconds and verdict. With ``--fresh``: what a newcomer's ``make suite``
costs on a clone of this checkout's commit, phase by phase (the venv and its packages,
rendering the demos, the notebooks), each a JSON line, then the total against the target.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from nblib.bench.common import machine, ratio
from nblib.errors import NblibError

SUITE_TARGET_S = 480  # a fresh clone's `make suite` on the 2-core CPU (DEVELOPERS.md)


def _notebooks(folder: Path) -> dict:
    out = {}
    for metrics in sorted(folder.glob("*/metrics.json")):
        record = json.loads(metrics.read_text(encoding="utf-8"))
        out[metrics.parent.name] = {
            "seconds": record.get("seconds"),
            "verdict": record.get("verdict"),
        }
    return out


def bench_suite(
    out: str | None = None, items: int | None = None, fresh: bool = False
) -> Iterator[dict]:
    """The default suite's wall time (see the module docstring); ``ratio`` = target /
    measured: >= 1 meets it."""
    if fresh:
        yield from _fresh_suite(out)
        return
    from nblib.paths import repo_root
    from nblib.run.runner import default_workers, run_all

    with tempfile.TemporaryDirectory(prefix="nblib-suite-") as tmp:
        folder = Path(out or tmp)
        start = time.perf_counter()
        failed = None
        try:
            run_all(repo_root() / "notebooks", folder, progress=False)
        except NblibError as error:  # the timing still counts; the failure is reported
            failed = str(error).splitlines()[0]
        seconds = time.perf_counter() - start
        notebooks = _notebooks(folder)
    yield {
        "bench": "suite",
        "figure": "default_suite_seconds",
        "seconds": round(seconds, 2),
        "target_s": SUITE_TARGET_S,
        "ratio": ratio(SUITE_TARGET_S, seconds, 2),
        "workers": default_workers(),
        "notebooks": notebooks,
        "failed": failed,
        **machine(),
    }


# The phases of `make suite` (tools/nb.sh suite), each a command run in the clone.
PHASES = (
    ("setup", ["bash", "tools/nb.sh", "setup"]),
    ("data", [".venv/bin/nblib", "data", "ensure"]),
    ("notebooks", [".venv/bin/nblib", "run-all", "--out", "runs"]),
)


def _fresh_suite(out: str | None) -> Iterator[dict]:
    """Clone this checkout's commit into a temporary folder (``out`` keeps it) and time
    every phase of ``make suite`` there, with the environment ``tools/nb.sh`` sets."""
    from nblib.paths import repo_root

    root = repo_root()
    commit = subprocess.run(
        ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    tmp = tempfile.mkdtemp(prefix="nblib-fresh-")
    clone = Path(out) if out else Path(tmp) / "clone"
    subprocess.run(["git", "clone", "-q", str(root), str(clone)], check=True)
    subprocess.run(["git", "-C", str(clone), "checkout", "-q", commit], check=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NBLIB_", "VIRTUAL_ENV"))}
    env |= {"MUJOCO_GL": "egl", "PYOPENGL_PLATFORM": "egl", "HF_HUB_OFFLINE": "1"}
    env |= {"TRANSFORMERS_OFFLINE": "1", "MPLBACKEND": "Agg"}
    env["NUMBA_CACHE_DIR"] = str(clone / ".cache" / "numba")
    total, failed = 0.0, None
    for name, command in PHASES:
        start = time.perf_counter()
        done = subprocess.run(command, cwd=clone, env=env, capture_output=True, text=True)
        seconds = time.perf_counter() - start
        total += seconds
        record = {"bench": "suite", "figure": f"fresh_{name}_seconds", "seconds": round(seconds, 1)}
        if name == "notebooks":
            record["notebooks"] = _notebooks(clone / "runs")
        if done.returncode:
            failed = f"{name}: exit {done.returncode}: {(done.stderr or done.stdout)[-400:]}"
        yield record
        if failed:
            break
    yield {
        "bench": "suite",
        "figure": "fresh_suite_seconds",
        "commit": commit[:12],
        "seconds": round(total, 1),
        "target_s": SUITE_TARGET_S,
        "ratio": ratio(SUITE_TARGET_S, total, 2),
        "failed": failed,
        **machine(),
    }
