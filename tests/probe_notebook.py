"""A tiny parameterised notebook for the batch tests (not a test module): it finishes with
a PASS verdict and its parameters as metrics, or raises when ``fail`` is set."""

from __future__ import annotations

from pathlib import Path

import nbformat

PARAMS = """\
x = 1  # a number
tag = "a"  # a label
seed = 0  # a seed
fail = False  # raise in the body
pause = 0.0  # seconds to wait before finishing
"""

BODY = """\
import os
import time

from nblib.run import report
from nblib.verdict import Verdict

time.sleep(pause)
if fail:
    raise RuntimeError(f"asked to fail (x={x})")
metrics = {"x": x, "twice": 2 * x, "seed": seed, "gpu": os.environ.get("CUDA_VISIBLE_DEVICES")}
report.finish("probe", Verdict("PASS", ["ran"], {"x": x}), metrics=metrics)
"""


def write_probe(folder: Path) -> Path:
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell(PARAMS)
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(BODY)]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    path = Path(folder) / "probe.ipynb"
    nbformat.write(nb, path)
    return path


def write_grid(folder: Path, runs: list[dict], **extra) -> Path:
    import yaml

    path = Path(folder) / "grid.yaml"
    path.write_text(yaml.safe_dump({"runs": runs, **extra}, sort_keys=False))
    return path
