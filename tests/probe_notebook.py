"""Tiny parameterised notebooks for the batch tests (not a test module).

- probe: finishes with a PASS verdict and its parameters as metrics, or raises when
  ``fail`` is set.
- stepper: "trains" step by step, each step depending on all earlier ones, with a
  checkpoint in ``<run folder>/checkpoints/`` every ``checkpoint_every`` steps; with
  ``resume`` a rerun into the same folder continues from it (the ``checkpoint_every`` /
  ``resume`` contract of the training notebooks), and its metrics say where it resumed.
"""

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


STEPPER_PARAMS = """\
steps = 10  # training steps
step_seconds = 0.2  # how long one step takes
checkpoint_every = 1  # steps between checkpoints, 0: none
resume = True  # continue from the run folder's latest checkpoint
tag = "a"  # a label
"""

STEPPER_BODY = """\
import json
import time

from nblib.paths import write_text_atomic
from nblib.run import report
from nblib.verdict import Verdict

latest = report.run_dir("stepper") / "checkpoints" / "latest.json"
step, state, resumed_from = 0, 1, None
if resume and latest.is_file():
    saved = json.loads(latest.read_text())
    step, state, resumed_from = saved["step"], saved["state"], saved["step"]
while step < steps:
    time.sleep(step_seconds)
    state = (state * 48271 + step) % 2147483647  # depends on every earlier step
    step += 1
    if checkpoint_every and step % checkpoint_every == 0:
        latest.parent.mkdir(exist_ok=True)
        write_text_atomic(latest, json.dumps({"step": step, "state": state}))
metrics = {"state": state, "steps": step, "resumed_from_step": resumed_from}
report.finish("stepper", Verdict("PASS", ["trained"], {"steps": step}), metrics=metrics)
"""


def _write(folder: Path, name: str, params: str, body: str) -> Path:
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell(params)
    cell.metadata["tags"] = ["parameters"]
    nb.cells = [cell, nbformat.v4.new_code_cell(body)]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    path = Path(folder) / name
    nbformat.write(nb, path)
    return path


def write_probe(folder: Path) -> Path:
    return _write(folder, "probe.ipynb", PARAMS, BODY)


def write_stepper(folder: Path) -> Path:
    return _write(folder, "stepper.ipynb", STEPPER_PARAMS, STEPPER_BODY)


def stepper_state(steps: int) -> int:
    """The stepper's final state after ``steps`` uninterrupted steps."""
    state = 1
    for step in range(steps):
        state = (state * 48271 + step) % 2147483647
    return state


def write_grid(folder: Path, runs: list[dict], **extra) -> Path:
    import yaml

    path = Path(folder) / "grid.yaml"
    path.write_text(yaml.safe_dump({"runs": runs, **extra}, sort_keys=False))
    return path
